//! Translating expressions and literals, with column qualifiers resolved
//! against the statement's table and nesting bounded by `MAX_EXPR_DEPTH`.

use super::*;

// ---------------------------------------------------------------------------
// Expressions
// ---------------------------------------------------------------------------

/// The table a statement works on, for resolving column qualifiers.
#[derive(Debug, Default)]
pub(super) struct Scope {
    /// The table's real name.
    pub(super) table: Option<String>,
    /// Its alias, which hides the real name as a qualifier.
    pub(super) alias: Option<String>,
}

impl Scope {
    pub(super) fn table(name: &str) -> Scope {
        Scope {
            table: Some(name.to_owned()),
            alias: None,
        }
    }

    pub(super) fn table_as(name: &str, alias: Option<&str>) -> Scope {
        Scope {
            table: Some(name.to_owned()),
            alias: alias.map(str::to_owned),
        }
    }

    /// Drops a qualifier that names this scope's table (by its alias if it
    /// has one, else by its name); keeps any other for the executor to reject.
    pub(super) fn qualifier(&self, q: String) -> Option<String> {
        let visible = self.alias.as_ref().or(self.table.as_ref());
        if visible == Some(&q) { None } else { Some(q) }
    }

    pub(super) fn expr(&self, e: sql::Expr) -> Result<Expr> {
        self.expr_at(Box::new(e), 0)
    }

    pub(super) fn opt_expr(&self, e: Option<sql::Expr>) -> Result<Option<Expr>> {
        e.map(|e| self.expr(e)).transpose()
    }

    pub(super) fn returning(&self, items: Option<Vec<sql::SelectItem>>) -> Result<Vec<SelectItem>> {
        items
            .unwrap_or_default()
            .into_iter()
            .map(|i| self.select_item(i))
            .collect()
    }

    pub(super) fn select_item(&self, item: sql::SelectItem) -> Result<SelectItem> {
        match item {
            sql::SelectItem::UnnamedExpr(e) => Ok(SelectItem::Expr {
                expr: self.expr(e)?,
                alias: None,
            }),
            sql::SelectItem::ExprWithAlias { expr, alias } => Ok(SelectItem::Expr {
                expr: self.expr(expr)?,
                alias: Some(ident(alias)),
            }),
            sql::SelectItem::Wildcard(options) => {
                let plain = options.opt_ilike.is_none()
                    && options.opt_exclude.is_none()
                    && options.opt_except.is_none()
                    && options.opt_replace.is_none()
                    && options.opt_rename.is_none()
                    && options.opt_alias.is_none();
                refuse(!plain, "this wildcard option")?;
                Ok(SelectItem::Wildcard)
            }
            sql::SelectItem::QualifiedWildcard(kind, _) => match kind {
                sql::SelectItemQualifiedWildcardKind::ObjectName(name) => {
                    Ok(SelectItem::QualifiedWildcard(relation_name(name)?))
                }
                _ => Err(unsupported("this wildcard")),
            },
            sql::SelectItem::ExprWithAliases { .. } => Err(unsupported("multiple aliases")),
        }
    }

    pub(super) fn assignment(&self, a: sql::Assignment) -> Result<(String, Expr)> {
        let column = match a.target {
            sql::AssignmentTarget::ColumnName(name) => column_name(name)?,
            sql::AssignmentTarget::Tuple(_) => return Err(unsupported("multi-column assignment")),
        };
        Ok((column, self.expr(a.value)?))
    }

    pub(super) fn order_by(&self, o: sql::OrderBy) -> Result<Vec<OrderBy>> {
        refuse(o.interpolate.is_some(), "INTERPOLATE")?;
        match o.kind {
            sql::OrderByKind::Expressions(terms) => {
                terms.into_iter().map(|t| self.order_term(t)).collect()
            }
            sql::OrderByKind::All(_) => Err(unsupported("ORDER BY ALL")),
        }
    }

    pub(super) fn order_term(&self, term: sql::OrderByExpr) -> Result<OrderBy> {
        refuse(term.with_fill.is_some(), "WITH FILL")?;
        let desc = match term.options.sort {
            None | Some(sql::OrderBySort::Asc) => false,
            Some(sql::OrderBySort::Desc) => true,
            Some(sql::OrderBySort::Using(_)) => return Err(unsupported("ORDER BY ... USING")),
        };
        Ok(OrderBy {
            expr: self.expr(term.expr)?,
            desc,
            nulls_first: term.options.nulls_first,
        })
    }

    /// LIMIT and OFFSET; `LIMIT ALL` is no limit.
    pub(super) fn limit(&self, clause: sql::LimitClause) -> Result<(Option<Expr>, Option<Expr>)> {
        match clause {
            sql::LimitClause::LimitOffset {
                limit,
                offset,
                limit_by,
            } => {
                refuse(!limit_by.is_empty(), "LIMIT BY")?;
                Ok((
                    self.opt_expr(limit)?,
                    self.opt_expr(offset.map(|o| o.value))?,
                ))
            }
            sql::LimitClause::OffsetCommaLimit { .. } => Err(unsupported("LIMIT offset, count")),
        }
    }

    /// Translates a child expression one level deeper.
    pub(super) fn sub(&self, e: Box<sql::Expr>, depth: usize) -> Result<Box<Expr>> {
        self.expr_at(e, depth + 1).map(Box::new)
    }

    /// Translates an expression at nesting level `depth`, refusing depth
    /// beyond [`MAX_EXPR_DEPTH`]. This is the recursion the input controls:
    /// sqlparser bounds its own recursion, but parses operator chains
    /// (`a + b + ...`, `a::int::text`, `a IS NULL IS NULL`) iteratively into
    /// arbitrarily deep trees. Those chainable forms are handled here, with
    /// small bindings, so each level costs little stack even unoptimized.
    pub(super) fn expr_at(&self, e: Box<sql::Expr>, depth: usize) -> Result<Expr> {
        if depth > MAX_EXPR_DEPTH {
            return Err(too_deep());
        }
        use sql::Expr as E;
        let ilike = matches!(*e, E::ILike { .. });
        match *e {
            E::BinaryOp { left, op, right } => self.binary(left, &op, right, depth),
            E::Cast {
                kind,
                expr,
                data_type,
                format,
            } => self.cast(kind, expr, &data_type, format.is_some(), depth),
            E::IsNull(e) => self.is_null(e, false, depth),
            E::IsNotNull(e) => self.is_null(e, true, depth),
            E::Like {
                negated,
                any,
                expr,
                pattern,
                escape_char,
            }
            | E::ILike {
                negated,
                any,
                expr,
                pattern,
                escape_char,
            } => {
                let flags = LikeFlags {
                    negated,
                    any,
                    escape: escape_char.is_some(),
                    ci: ilike,
                };
                self.like(expr, pattern, flags, depth)
            }
            E::In {
                expr,
                target,
                negated,
                global,
            } => self.in_list(expr, target, negated, global, depth),
            E::Between {
                expr,
                negated,
                low,
                high,
            } => self.between(expr, [low, high], negated, depth),
            _ => self.prefix_expr(e, depth),
        }
    }

    /// The other expressions: leaves, and forms whose nesting sqlparser's
    /// recursion limit already bounds.
    pub(super) fn prefix_expr(&self, e: Box<sql::Expr>, depth: usize) -> Result<Expr> {
        use sql::Expr as E;
        match *e {
            E::Identifier(id) => self.column(vec![id]),
            E::CompoundIdentifier(ids) => self.column(ids),
            E::Value(v) => value_expr(v.value),
            E::Nested(inner) => self.sub(inner, depth).map(|b| *b),
            E::UnaryOp { op, expr } => self.unary(op, expr, depth),
            E::TypedString(ts) => typed_string(ts),
            E::Function(f) => self.function(f, depth),
            E::Case {
                operand,
                conditions,
                else_result,
                ..
            } => self.case(operand, conditions, else_result, depth),
            E::Substring {
                expr,
                substring_from,
                substring_for,
                ..
            } => self.substring(expr, substring_from, substring_for, depth),
            E::Ceil { expr, field } => self.rounding("ceil", expr, field, depth),
            E::Subquery(q) => Ok(Expr::Subquery(Box::new(query(*q)?))),
            E::Exists { subquery, negated } => Ok(Expr::Exists {
                query: Box::new(query(*subquery)?),
                negated,
            }),
            E::Floor { expr, field } => self.rounding("floor", expr, field, depth),
            E::Extract { field, expr, .. } => {
                let field = Expr::Literal(Value::Text(field.to_string().to_lowercase()));
                Ok(function_call(
                    "date_part",
                    vec![field, *self.sub(expr, depth)?],
                ))
            }
            // POSITION(a IN b) is strpos(b, a).
            E::Position { expr, r#in } => Ok(function_call(
                "strpos",
                vec![*self.sub(r#in, depth)?, *self.sub(expr, depth)?],
            )),
            E::Trim {
                trim_where,
                trim_what,
                expr,
                trim_characters,
            } => {
                refuse(trim_characters.is_some(), "TRIM with a character list")?;
                let name = match trim_where {
                    None | Some(sql::TrimWhereField::Both) => "btrim",
                    Some(sql::TrimWhereField::Leading) => "ltrim",
                    Some(sql::TrimWhereField::Trailing) => "rtrim",
                };
                let mut args = vec![*self.sub(expr, depth)?];
                if let Some(what) = trim_what {
                    args.push(*self.sub(what, depth)?);
                }
                Ok(function_call(name, args))
            }
            other => Err(unsupported(expr_name(&other))),
        }
    }

    pub(super) fn binary(
        &self,
        left: Box<sql::Expr>,
        op: &sql::BinaryOperator,
        right: Box<sql::Expr>,
        depth: usize,
    ) -> Result<Expr> {
        let op = binary_op(op)?;
        let left = self.sub(left, depth)?;
        Ok(Expr::Binary {
            op,
            left,
            right: self.sub(right, depth)?,
        })
    }

    pub(super) fn is_null(&self, e: Box<sql::Expr>, negated: bool, depth: usize) -> Result<Expr> {
        Ok(Expr::IsNull {
            expr: self.sub(e, depth)?,
            negated,
        })
    }

    pub(super) fn between(
        &self,
        expr: Box<sql::Expr>,
        [low, high]: [Box<sql::Expr>; 2],
        negated: bool,
        depth: usize,
    ) -> Result<Expr> {
        let expr = self.sub(expr, depth)?;
        let low = self.sub(low, depth)?;
        Ok(Expr::Between {
            expr,
            low,
            high: self.sub(high, depth)?,
            negated,
        })
    }

    pub(super) fn cast(
        &self,
        kind: sql::CastKind,
        expr: Box<sql::Expr>,
        to: &sql::DataType,
        has_format: bool,
        depth: usize,
    ) -> Result<Expr> {
        let standard = matches!(kind, sql::CastKind::Cast | sql::CastKind::DoubleColon);
        refuse(!standard, "TRY_CAST")?;
        refuse(has_format, "CAST ... FORMAT")?;
        let to = cast_type(to)?;
        Ok(Expr::Cast {
            expr: self.sub(expr, depth)?,
            to,
        })
    }

    pub(super) fn substring(
        &self,
        expr: Box<sql::Expr>,
        from: Option<Box<sql::Expr>>,
        count: Option<Box<sql::Expr>>,
        depth: usize,
    ) -> Result<Expr> {
        let args = [Some(expr), from, count].into_iter().flatten().map(|e| *e);
        self.call("substring", args, depth)
    }

    /// A column reference: `c`, `t.c` or `public.t.c`.
    pub(super) fn column(&self, ids: Vec<sql::Ident>) -> Result<Expr> {
        if let [id] = ids.as_slice()
            && id.quote_style.is_none()
            && id.value.eq_ignore_ascii_case("default")
        {
            return Err(unsupported("DEFAULT in an expression"));
        }
        let mut parts: Vec<String> = ids.into_iter().map(ident).collect();
        let name = parts
            .pop()
            .ok_or_else(|| invalid("empty column reference"))?;
        let table = match parts.len() {
            0 => None,
            1 => parts.pop(),
            2 if parts[0] == "public" => parts.pop(),
            _ => return Err(unsupported("a column reference with this many qualifiers")),
        };
        Ok(Expr::Column {
            table: table.and_then(|t| self.qualifier(t)),
            name,
        })
    }

    pub(super) fn unary(
        &self,
        op: sql::UnaryOperator,
        operand: Box<sql::Expr>,
        depth: usize,
    ) -> Result<Expr> {
        match op {
            sql::UnaryOperator::Plus => self.sub(operand, depth).map(|b| *b),
            sql::UnaryOperator::Minus => match *operand {
                sql::Expr::Value(sql::ValueWithSpan {
                    value: sql::Value::Number(n, _),
                    ..
                }) => Ok(Expr::Literal(number(&n, true)?)),
                other => Ok(Expr::Negate(self.sub(Box::new(other), depth)?)),
            },
            sql::UnaryOperator::Not => Ok(Expr::Not(self.sub(operand, depth)?)),
            other => Err(unsupported(format!("operator {other}"))),
        }
    }

    pub(super) fn like(
        &self,
        expr: Box<sql::Expr>,
        pattern: Box<sql::Expr>,
        flags: LikeFlags,
        depth: usize,
    ) -> Result<Expr> {
        refuse(flags.any, "LIKE ANY")?;
        refuse(flags.escape, "LIKE ... ESCAPE")?;
        let expr = self.sub(expr, depth)?;
        Ok(Expr::Like {
            expr,
            pattern: self.sub(pattern, depth)?,
            negated: flags.negated,
            case_insensitive: flags.ci,
        })
    }

    pub(super) fn in_list(
        &self,
        expr: Box<sql::Expr>,
        target: sql::InTarget,
        negated: bool,
        global: bool,
        depth: usize,
    ) -> Result<Expr> {
        refuse(global, "GLOBAL IN")?;
        let list = match target {
            sql::InTarget::List(list) => list,
            sql::InTarget::Subquery(q) => {
                return Ok(Expr::InSubquery {
                    expr: self.sub(expr, depth)?,
                    query: Box::new(query(*q)?),
                    negated,
                });
            }
            _ => return Err(unsupported("this IN form")),
        };
        if list.is_empty() {
            return Err(invalid("IN needs at least one value"));
        }
        let expr = self.sub(expr, depth)?;
        let list = list
            .into_iter()
            .map(|e| self.expr_at(Box::new(e), depth + 1))
            .collect::<Result<_>>()?;
        Ok(Expr::InList {
            expr,
            list,
            negated,
        })
    }

    pub(super) fn function(&self, f: sql::Function, depth: usize) -> Result<Expr> {
        refuse(f.over.is_some(), "window function")?;
        refuse(f.filter.is_some(), "FILTER")?;
        refuse(!f.within_group.is_empty(), "WITHIN GROUP")?;
        refuse(f.null_treatment.is_some(), "IGNORE/RESPECT NULLS")?;
        let plain = !f.uses_odbc_syntax && matches!(f.parameters, sql::FunctionArguments::None);
        refuse(!plain, "this function call syntax")?;
        let name = function_name(f.name)?;
        let list = match f.args {
            sql::FunctionArguments::None => return self.call(&name, [], depth),
            sql::FunctionArguments::Subquery(_) => return Err(unsupported("subquery")),
            sql::FunctionArguments::List(list) => list,
        };
        let distinct = list.duplicate_treatment == Some(sql::DuplicateTreatment::Distinct);
        refuse(
            !list.clauses.is_empty(),
            "ORDER BY/LIMIT in function arguments",
        )?;
        if let [sql::FunctionArg::Unnamed(sql::FunctionArgExpr::Wildcard)] = list.args.as_slice() {
            refuse(distinct, "DISTINCT *")?;
            return Ok(Expr::Function {
                name,
                args: vec![],
                star: true,
                distinct: false,
            });
        }
        let args = list
            .args
            .into_iter()
            .map(function_arg)
            .collect::<Result<Vec<_>>>()?;
        let mut call = self.call(&name, args, depth)?;
        if let Expr::Function { distinct: d, .. } = &mut call {
            *d = distinct;
        }
        Ok(call)
    }

    /// `name(args)` from already unwrapped sqlparser arguments.
    pub(super) fn call(
        &self,
        name: &str,
        args: impl IntoIterator<Item = sql::Expr>,
        depth: usize,
    ) -> Result<Expr> {
        let args = args
            .into_iter()
            .map(|a| self.expr_at(Box::new(a), depth + 1))
            .collect::<Result<_>>()?;
        Ok(function_call(name, args))
    }

    /// `ceil(x)` / `floor(x)`, which sqlparser parses specially.
    pub(super) fn rounding(
        &self,
        name: &str,
        expr: Box<sql::Expr>,
        field: sql::CeilFloorKind,
        depth: usize,
    ) -> Result<Expr> {
        match field {
            sql::CeilFloorKind::DateTimeField(sql::DateTimeField::NoDateTime) => {
                self.call(name, [*expr], depth)
            }
            _ => Err(unsupported(format!("{name} with a second argument"))),
        }
    }

    pub(super) fn case(
        &self,
        operand: Option<Box<sql::Expr>>,
        conditions: Vec<sql::CaseWhen>,
        else_result: Option<Box<sql::Expr>>,
        depth: usize,
    ) -> Result<Expr> {
        let branches = conditions
            .into_iter()
            .map(|w| {
                Ok((
                    self.expr_at(Box::new(w.condition), depth + 1)?,
                    self.expr_at(Box::new(w.result), depth + 1)?,
                ))
            })
            .collect::<Result<_>>()?;
        Ok(Expr::Case {
            operand: operand.map(|o| self.sub(o, depth)).transpose()?,
            branches,
            otherwise: else_result.map(|e| self.sub(e, depth)).transpose()?,
        })
    }
}

/// A plain call of a scalar function.
pub(super) fn function_call(name: &str, args: Vec<Expr>) -> Expr {
    Expr::Function {
        name: name.to_owned(),
        args,
        star: false,
        distinct: false,
    }
}

/// The modifiers of a LIKE / ILIKE.
pub(super) struct LikeFlags {
    negated: bool,
    any: bool,
    escape: bool,
    /// ILIKE.
    ci: bool,
}

pub(super) fn function_arg(arg: sql::FunctionArg) -> Result<sql::Expr> {
    match arg {
        sql::FunctionArg::Unnamed(sql::FunctionArgExpr::Expr(e)) => Ok(e),
        sql::FunctionArg::Unnamed(_) => Err(unsupported("* among function arguments")),
        _ => Err(unsupported("named function arguments")),
    }
}

/// `DATE '2024-01-01'` and the like: a cast of a text literal.
pub(super) fn typed_string(ts: sql::TypedString) -> Result<Expr> {
    refuse(ts.uses_odbc_syntax, "ODBC literal syntax")?;
    match literal(ts.value.value)? {
        text @ Value::Text(_) => Ok(Expr::Cast {
            expr: Box::new(Expr::Literal(text)),
            to: cast_type(&ts.data_type)?,
        }),
        _ => Err(invalid("a typed literal needs a string")),
    }
}

pub(super) fn binary_op(op: &sql::BinaryOperator) -> Result<BinaryOp> {
    use sql::BinaryOperator as B;
    Ok(match op {
        B::Plus => BinaryOp::Add,
        B::Minus => BinaryOp::Sub,
        B::Multiply => BinaryOp::Mul,
        B::Divide => BinaryOp::Div,
        B::Modulo => BinaryOp::Mod,
        B::Eq => BinaryOp::Eq,
        B::NotEq => BinaryOp::NotEq,
        B::Lt => BinaryOp::Lt,
        B::LtEq => BinaryOp::LtEq,
        B::Gt => BinaryOp::Gt,
        B::GtEq => BinaryOp::GtEq,
        B::And => BinaryOp::And,
        B::Or => BinaryOp::Or,
        B::StringConcat => BinaryOp::Concat,
        B::PGRegexMatch => BinaryOp::Regex {
            case_insensitive: false,
            negated: false,
        },
        B::PGRegexIMatch => BinaryOp::Regex {
            case_insensitive: true,
            negated: false,
        },
        B::PGRegexNotMatch => BinaryOp::Regex {
            case_insensitive: false,
            negated: true,
        },
        B::PGRegexNotIMatch => BinaryOp::Regex {
            case_insensitive: true,
            negated: true,
        },
        other => return Err(unsupported(format!("operator {other}"))),
    })
}

/// A name for an expression tiers refuses (without formatting it).
pub(super) fn expr_name(e: &sql::Expr) -> &'static str {
    use sql::Expr as E;
    match e {
        E::Subquery(_) | E::Exists { .. } => "subquery",
        E::IsTrue(_) | E::IsNotTrue(_) | E::IsFalse(_) | E::IsNotFalse(_) => "IS [NOT] TRUE/FALSE",
        E::IsUnknown(_) | E::IsNotUnknown(_) => "IS [NOT] UNKNOWN",
        E::IsDistinctFrom(..) | E::IsNotDistinctFrom(..) => "IS [NOT] DISTINCT FROM",
        E::SimilarTo { .. } | E::RLike { .. } => "regular expression matching",
        E::AnyOp { .. } | E::AllOp { .. } => "ANY/ALL",
        E::AtTimeZone { .. } => "AT TIME ZONE",
        E::Extract { .. } => "EXTRACT",
        E::Position { .. } => "POSITION",
        E::Trim { .. } => "TRIM",
        E::Overlay { .. } => "OVERLAY",
        E::Collate { .. } => "COLLATE",
        E::Interval(_) => "INTERVAL",
        E::Array(_) => "ARRAY",
        E::Tuple(_) => "row constructor",
        E::CompoundFieldAccess { .. } | E::JsonAccess { .. } => "subscript or field access",
        E::Wildcard(_) | E::QualifiedWildcard(..) => "* in an expression",
        _ => "this expression",
    }
}

// ---------------------------------------------------------------------------
// Literals
// ---------------------------------------------------------------------------

pub(super) fn literal(v: sql::Value) -> Result<Value> {
    use sql::Value as V;
    match v {
        V::Number(text, _) => number(&text, false),
        V::SingleQuotedString(s)
        | V::EscapedStringLiteral(s)
        | V::UnicodeStringLiteral(s)
        | V::NationalStringLiteral(s) => Ok(Value::Text(s)),
        V::DollarQuotedString(s) => Ok(Value::Text(s.value)),
        V::Boolean(b) => Ok(Value::Bool(b)),
        V::Null => Ok(Value::Null),
        V::Placeholder(p) => Err(parameter_literal(&p)),
        V::HexStringLiteral(_) => Err(unsupported("bit-string literal")),
        _ => Err(unsupported("this kind of literal")),
    }
}

/// A literal or a `$n` placeholder.
pub(super) fn value_expr(v: sql::Value) -> Result<Expr> {
    match v {
        sql::Value::Placeholder(p) => Ok(Expr::Parameter(parameter(&p)?)),
        other => Ok(Expr::Literal(literal(other)?)),
    }
}

/// The error for a placeholder where only a constant may stand (typed
/// literals such as `DATE $1` never parse that way, but stay safe).
pub(super) fn parameter_literal(p: &str) -> SqlError {
    match parameter(p) {
        Ok(_) => invalid(format!("parameter {p} is not allowed here")),
        Err(e) => e,
    }
}

/// `$n` with `1 <= n <= 65535`.
pub(super) fn parameter(p: &str) -> Result<usize> {
    let digits = p.strip_prefix('$').unwrap_or_default();
    let n = if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        digits.parse::<usize>().ok()
    } else {
        None
    };
    match n {
        Some(n @ 1..=MAX_PARAMETER) => Ok(n),
        _ => Err(invalid(format!("invalid parameter reference {p}"))),
    }
}

/// A numeric literal: `Int` when written as an integer that fits `i64`,
/// otherwise `Numeric` (as in PostgreSQL), or `Float` beyond what
/// `numeric` holds. Accepts `_` separators and `0x`/`0o`/`0b` integers.
pub(super) fn number(text: &str, negative: bool) -> Result<Value> {
    // The common case, a plain integer of up to 18 digits (always within
    // i64), without the general path's allocations.
    if (1..=18).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_digit()) {
        let magnitude = text.bytes().fold(0i64, |n, b| n * 10 + i64::from(b - b'0'));
        return Ok(Value::Int(if negative { -magnitude } else { magnitude }));
    }
    let cleaned: String = text.chars().filter(|&c| c != '_').collect();
    let sign = if negative { "-" } else { "" };
    if let Some((radix, digits)) = radix_prefix(&cleaned) {
        return radix_integer(text, &format!("{sign}{digits}"), radix);
    }
    let signed = format!("{sign}{cleaned}");
    if cleaned.bytes().all(|b| b.is_ascii_digit())
        && let Ok(i) = signed.parse::<i64>()
    {
        return Ok(Value::Int(i));
    }
    if let Ok(d) = crate::value::parse_numeric(&signed) {
        return Ok(Value::Numeric(d));
    }
    match signed.parse::<f64>() {
        Ok(f) if f.is_finite() => Ok(Value::Float(f)),
        Ok(_) => Err(out_of_range(text)),
        Err(_) => Err(invalid(format!("invalid number \"{text}\""))),
    }
}

pub(super) fn radix_prefix(text: &str) -> Option<(u32, &str)> {
    let (prefix, digits) = text.split_at_checked(2)?;
    match prefix {
        "0x" | "0X" => Some((16, digits)),
        "0o" | "0O" => Some((8, digits)),
        "0b" | "0B" => Some((2, digits)),
        _ => None,
    }
}

pub(super) fn radix_integer(text: &str, signed_digits: &str, radix: u32) -> Result<Value> {
    let valid = signed_digits
        .trim_start_matches('-')
        .chars()
        .all(|c| c.is_digit(radix));
    if !valid || signed_digits.trim_start_matches('-').is_empty() {
        return Err(invalid(format!("invalid number \"{text}\"")));
    }
    i64::from_str_radix(signed_digits, radix)
        .map(Value::Int)
        .map_err(|_| out_of_range(text))
}

pub(super) fn out_of_range(text: &str) -> SqlError {
    SqlError::new(
        sqlstate::NUMERIC_VALUE_OUT_OF_RANGE,
        format!("\"{text}\" is out of range for type double precision"),
    )
}

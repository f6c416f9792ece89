//! Binding expressions: names resolved to positions in the frames (outer
//! queries' columns included), subqueries planned, and each expression's
//! static type, which also types the statement's parameters.

use super::*;

impl Planner<'_> {
    /// Binds names to positions and plans subqueries.
    pub fn bind(&self, e: &Expr, frame: &Frame<'_>, env: &Env<'_>) -> Result<Expr> {
        let b = |x: &Expr| self.bind(x, frame, env).map(Box::new);
        Ok(match e {
            Expr::Column { table, name } => resolve(frame, table.as_deref(), name)?.0,
            Expr::Literal(_) | Expr::Bound(_) | Expr::Outer { .. } | Expr::SubPlan(_) => e.clone(),
            Expr::Parameter(_) => {
                self.note_params_seen(e);
                e.clone()
            }
            Expr::Binary { op, left, right } => {
                let (l, r) = (b(left)?, b(right)?);
                self.hint_pair(*op, &l, &r, frame);
                let small = |t: DataType| matches!(t, DataType::Int2 | DataType::Int4);
                let int4_arithmetic = matches!(
                    op,
                    BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul | BinaryOp::Div | BinaryOp::Mod
                ) && small(self.type_of(&l, frame))
                    && small(self.type_of(&r, frame));
                let e = Expr::Binary {
                    op: *op,
                    left: l,
                    right: r,
                };
                if int4_arithmetic {
                    // integer op integer is an integer in PostgreSQL: it
                    // overflows at 32 bits (22003), not 64.
                    Expr::Cast {
                        expr: Box::new(e),
                        to: DataType::Int4,
                    }
                } else {
                    e
                }
            }
            Expr::Not(x) => {
                let x = b(x)?;
                if let Expr::Parameter(n) = *x {
                    self.note_param(n, DataType::Bool);
                }
                Expr::Not(x)
            }
            Expr::Negate(x) => Expr::Negate(b(x)?),
            Expr::IsNull { expr, negated } => Expr::IsNull {
                expr: b(expr)?,
                negated: *negated,
            },
            Expr::Like {
                expr,
                pattern,
                negated,
                case_insensitive,
            } => {
                let (x, p) = (b(expr)?, b(pattern)?);
                for side in [&x, &p] {
                    if let Expr::Parameter(n) = **side {
                        self.note_param(n, DataType::Text);
                    }
                }
                Expr::Like {
                    expr: x,
                    pattern: p,
                    negated: *negated,
                    case_insensitive: *case_insensitive,
                }
            }
            Expr::InList {
                expr,
                list,
                negated,
            } => {
                let x = b(expr)?;
                let list = list
                    .iter()
                    .map(|i| {
                        let i = self.bind(i, frame, env)?;
                        self.hint_pair(BinaryOp::Eq, &x, &i, frame);
                        Ok(i)
                    })
                    .collect::<Result<_>>()?;
                Expr::InList {
                    expr: x,
                    list,
                    negated: *negated,
                }
            }
            Expr::Between {
                expr,
                low,
                high,
                negated,
            } => {
                let (x, l, h) = (b(expr)?, b(low)?, b(high)?);
                self.hint_pair(BinaryOp::GtEq, &x, &l, frame);
                self.hint_pair(BinaryOp::LtEq, &x, &h, frame);
                Expr::Between {
                    expr: x,
                    low: l,
                    high: h,
                    negated: *negated,
                }
            }
            Expr::Cast { expr, to } => {
                let x = b(expr)?;
                if let Expr::Parameter(n) = *x {
                    self.note_param(n, *to);
                }
                Expr::Cast { expr: x, to: *to }
            }
            Expr::Function {
                name,
                args,
                star,
                distinct,
            } => Expr::Function {
                name: name.clone(),
                args: args
                    .iter()
                    .map(|a| self.bind(a, frame, env))
                    .collect::<Result<_>>()?,
                star: *star,
                distinct: *distinct,
            },
            Expr::Case {
                operand,
                branches,
                otherwise,
            } => Expr::Case {
                operand: operand.as_ref().map(|o| b(o)).transpose()?,
                branches: branches
                    .iter()
                    .map(|(w, t)| Ok((self.bind(w, frame, env)?, self.bind(t, frame, env)?)))
                    .collect::<Result<_>>()?,
                otherwise: otherwise.as_ref().map(|o| b(o)).transpose()?,
            },
            Expr::Subquery(q) => self.subquery(q, SubKind::Scalar, frame, env, true)?,
            Expr::Exists { query, negated } => self.subquery(
                query,
                SubKind::Exists { negated: *negated },
                frame,
                env,
                false,
            )?,
            Expr::InSubquery {
                expr,
                query,
                negated,
            } => {
                let x = self.bind(expr, frame, env)?;
                self.subquery(
                    query,
                    SubKind::In {
                        expr: x,
                        negated: *negated,
                    },
                    frame,
                    env,
                    true,
                )?
            }
        })
    }

    fn subquery(
        &self,
        q: &Query,
        kind: SubKind,
        frame: &Frame<'_>,
        env: &Env<'_>,
        one_column: bool,
    ) -> Result<Expr> {
        let inner_env = Env {
            outer: Some(frame),
            ctes: env.ctes.clone(),
        };
        let plan = self.query(q, &inner_env)?;
        if one_column && plan.schema.len() != 1 {
            return Err(syntax("subquery must return only one column"));
        }
        let mut correlated = false;
        super::super::access::visit_plan_exprs(&plan, 0, &mut |e, nesting| {
            if outer_escapes(e, nesting) {
                correlated = true;
            }
        });
        let id = self.next_sub.get();
        self.next_sub.set(id + 1);
        if let SubKind::In { expr, .. } = &kind
            && let Expr::Parameter(n) = expr
        {
            self.note_param(*n, plan.schema[0].data_type);
        }
        Ok(subplan_expr(SubPlan {
            id,
            kind,
            plan,
            correlated,
        }))
    }

    /// Tells a parameter compared with a typed expression that type.
    fn hint_pair(&self, op: BinaryOp, l: &Expr, r: &Expr, frame: &Frame<'_>) {
        let hint = match op {
            BinaryOp::And | BinaryOp::Or => Some(DataType::Bool),
            BinaryOp::Concat => Some(DataType::Text),
            _ => None,
        };
        for (p, other) in [(l, r), (r, l)] {
            if let Expr::Parameter(n) = p {
                match hint {
                    Some(t) => self.note_param(*n, t),
                    None if !matches!(other, Expr::Parameter(_)) => {
                        let t = self.type_of(other, frame);
                        if !(matches!(other, Expr::Literal(Value::Text(_)))) {
                            self.note_param(*n, t);
                        }
                    }
                    None => {}
                }
            }
        }
    }

    /// The static type of a bound expression.
    pub fn type_of(&self, e: &Expr, frame: &Frame<'_>) -> DataType {
        let t = |x: &Expr| self.type_of(x, frame);
        match e {
            Expr::Bound(i) => frame.fields.get(*i).map_or(DataType::Text, |f| f.data_type),
            Expr::Outer { depth, index } => {
                let mut f = Some(frame);
                for _ in 0..*depth {
                    f = f.and_then(|f| f.parent);
                }
                f.and_then(|f| f.fields.get(*index))
                    .map_or(DataType::Text, |f| f.data_type)
            }
            Expr::SubPlan(sub) => match sub.kind {
                SubKind::Scalar => sub.plan.schema[0].data_type,
                _ => DataType::Bool,
            },
            Expr::Parameter(n) => self
                .params
                .borrow()
                .get(n.wrapping_sub(1))
                .copied()
                .flatten()
                .unwrap_or(DataType::Text),
            Expr::Function { name, args, .. } => {
                if expr::is_aggregate(name) {
                    let call = AggCall {
                        name: name.clone(),
                        args: args.clone(),
                        distinct: false,
                    };
                    return self.aggregate_type(&call, frame);
                }
                crate::exec::type_of_function(name, &args.iter().map(t).collect::<Vec<_>>())
            }
            other => crate::exec::type_of_with(other, &t),
        }
    }

    pub(super) fn aggregate_type(&self, a: &AggCall, frame: &Frame<'_>) -> DataType {
        let arg = a.args.first().map(|x| self.type_of(x, frame));
        match a.name.as_str() {
            "count" => DataType::Int8,
            "avg" => match arg {
                Some(DataType::Float4 | DataType::Float8) => DataType::Float8,
                _ => DataType::Numeric(None),
            },
            "sum" => match arg {
                Some(DataType::Float4 | DataType::Float8) => DataType::Float8,
                Some(DataType::Numeric(_)) => DataType::Numeric(None),
                _ => DataType::Int8,
            },
            "bool_and" | "bool_or" | "every" => DataType::Bool,
            "string_agg" => DataType::Text,
            _ => arg.unwrap_or(DataType::Text),
        }
    }
}

/// Finds a column by name in the frames, innermost first.
fn resolve(frame: &Frame<'_>, table: Option<&str>, name: &str) -> Result<(Expr, DataType)> {
    let mut depth = 0;
    let mut current = Some(frame);
    let mut table_seen = false;
    while let Some(f) = current {
        let mut found = None;
        for (i, field) in f.fields.iter().enumerate() {
            let table_ok = match table {
                None => !field.hidden,
                Some(t) => field.table.as_deref() == Some(t),
            };
            if table.is_some() && table_ok {
                table_seen = true;
            }
            if table_ok && field.name == name {
                if found.is_some() {
                    return Err(SqlError::new(
                        "42702",
                        format!("column reference \"{name}\" is ambiguous"),
                    ));
                }
                found = Some((i, field.data_type));
            }
        }
        if let Some((i, ty)) = found {
            let e = if depth == 0 {
                Expr::Bound(i)
            } else {
                Expr::Outer { depth, index: i }
            };
            return Ok((e, ty));
        }
        depth += 1;
        current = f.parent;
    }
    match table {
        Some(t) if !table_seen => Err(SqlError::new(
            sqlstate::UNDEFINED_TABLE,
            format!("missing FROM-clause entry for table \"{t}\""),
        )),
        Some(t) => Err(SqlError::new(
            sqlstate::UNDEFINED_COLUMN,
            format!("column {t}.{name} does not exist"),
        )),
        None => Err(SqlError::new(
            sqlstate::UNDEFINED_COLUMN,
            format!("column \"{name}\" does not exist"),
        )),
    }
}

/// Whether an `Outer` reference inside `nesting` subquery levels reaches
/// beyond the subquery being planned.
fn outer_escapes(e: &Expr, nesting: usize) -> bool {
    matches!(e, Expr::Outer { depth, .. } if *depth > nesting)
}

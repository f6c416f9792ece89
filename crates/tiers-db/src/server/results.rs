//! A statement's result on the wire: the row description (with each
//! column's text or binary format, as the client's Bind asked), the data
//! rows encoded as they are sent, and the command tag.

use std::sync::Arc;

use futures::stream;
use pgwire::api::portal::Format;
use pgwire::api::results::{DataRowEncoder, FieldFormat, FieldInfo, QueryResponse, Response, Tag};
use pgwire::error::PgWireResult;
use tiers_sql::SqlError;
use tiers_sql::exec::{Column, QueryResult};

use super::{user_error, wire_error};
use crate::wire;

pub(super) fn fields(columns: &[Column], format: Option<&Format>) -> Vec<FieldInfo> {
    columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            FieldInfo::new(
                c.name.clone(),
                None,
                None,
                wire::pg_type(c.data_type),
                format_of(format, i),
            )
        })
        .collect()
}

/// The format of result column `i`: text without codes, one code for
/// all, else one code per column (counted by [`check_result_formats`];
/// pgwire's own lookup indexes past the end of a short list).
pub(super) fn format_of(format: Option<&Format>, i: usize) -> FieldFormat {
    match format {
        Some(Format::Individual(codes)) => codes
            .get(i)
            .map_or(FieldFormat::Text, |c| FieldFormat::from(*c)),
        Some(f) => f.format_for(i),
        None => FieldFormat::Text,
    }
}

/// A Bind's result format codes must be none, one, or one per column
/// (08P01, as PostgreSQL answers).
pub(super) fn check_result_formats(format: &Format, columns: usize) -> PgWireResult<()> {
    if let Format::Individual(codes) = format
        && codes.len() != columns
    {
        return Err(user_error(&SqlError::new(
            tiers_sql::error::sqlstate::PROTOCOL_VIOLATION,
            format!(
                "bind message has {} result formats but the query has {columns} columns",
                codes.len()
            ),
        )));
    }
    Ok(())
}

pub(super) fn command_tag(tag: &str) -> Tag {
    let words: Vec<&str> = tag.split(' ').collect();
    match words.as_slice() {
        ["INSERT", oid, rows] => Tag::new("INSERT")
            .with_oid(oid.parse().unwrap_or(0))
            .with_rows(rows.parse().unwrap_or(0)),
        [verb, rows] if rows.parse::<usize>().is_ok() => {
            Tag::new(verb).with_rows(rows.parse().unwrap_or(0))
        }
        _ => Tag::new(tag),
    }
}

/// The protocol response for one statement's result.
pub(super) fn response(result: Result<QueryResult, SqlError>, format: Option<&Format>) -> Response {
    let r = match result {
        Err(e) => return Response::Error(wire_error(&e)),
        Ok(r) => r,
    };
    match r.tag.as_str() {
        "BEGIN" => return Response::TransactionStart(Tag::new("BEGIN")),
        "COMMIT" | "ROLLBACK" => return Response::TransactionEnd(Tag::new(&r.tag)),
        _ => {}
    }
    if r.columns.is_empty() && !r.tag.starts_with("SELECT") {
        return Response::Execution(command_tag(&r.tag));
    }
    let schema = Arc::new(fields(&r.columns, format));
    let mut encoder = DataRowEncoder::new(schema.clone());
    let types: Vec<_> = r.columns.iter().map(|c| c.data_type).collect();
    let fields = schema.clone();
    // Encoded as they are sent, each row's values freed as it goes: a
    // result is held once, not once as values and again as messages.
    let rows = r.rows.into_iter().map(move |row| {
        for (i, v) in row.iter().enumerate() {
            let field = &fields[i];
            if field.format() == FieldFormat::Binary {
                let bytes = if v.is_null() {
                    None
                } else {
                    wire::to_binary(v, types[i]).ok()
                };
                encoder.encode_field_with_type_and_format(
                    &bytes,
                    field.datatype(),
                    FieldFormat::Binary,
                    &Default::default(),
                )?;
            } else {
                let text = (!v.is_null()).then(|| v.to_text());
                encoder.encode_field_with_type_and_format(
                    &text,
                    field.datatype(),
                    FieldFormat::Text,
                    &Default::default(),
                )?;
            }
        }
        Ok(encoder.take_row())
    });
    Response::Query(QueryResponse::new(schema, stream::iter(rows)))
}

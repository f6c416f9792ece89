//! COPY over the wire: `COPY ... TO STDOUT` as CopyData messages, and
//! `COPY ... FROM STDIN` collecting the client's CopyData until CopyDone,
//! then inserting it as one statement.

use super::*;

/// Rows of a `COPY ... TO STDOUT` as CopyData messages.
pub(super) fn copy_out_response(r: QueryResult, options: &tiers_sql::ast::CopyOptions) -> Response {
    let mut lines = Vec::with_capacity(r.rows.len() + 1);
    if options.csv && options.header {
        let names: Vec<String> = r.columns.iter().map(|c| c.name.clone()).collect();
        lines.push(tiers_sql::copy::encode_header(&names, options));
    }
    for row in &r.rows {
        lines.push(tiers_sql::copy::encode_row(row, options));
    }
    let columns = r.columns.len();
    let data = lines
        .into_iter()
        .map(|l| Ok(CopyData::new(Bytes::from(l.into_bytes()))));
    Response::CopyOut(CopyResponse::new(0, columns, stream::iter(data)))
}

pub(super) fn is_copy_result(r: &QueryResult) -> bool {
    r.tag.starts_with("COPY")
}

/// The most COPY FROM STDIN data held for one statement.
const MAX_COPY_BYTES: usize = 1 << 30;

/// A COPY FROM STDIN waiting for its data.
pub(super) struct CopyIn {
    copy: Box<tiers_sql::ast::Copy>,
    data: Vec<u8>,
}

impl Backend {
    pub(super) fn start_copy_in(&self, copy: Box<tiers_sql::ast::Copy>) -> Response {
        let columns = match &copy.source {
            tiers_sql::ast::CopySource::Table { columns, .. } => columns.len(),
            tiers_sql::ast::CopySource::Query(_) => 0,
        };
        *self.copy_in.lock().expect("copy state") = Some(CopyIn {
            copy,
            data: Vec::new(),
        });
        Response::CopyIn(CopyResponse::new(0, columns, stream::empty()))
    }
}

#[async_trait]
impl CopyHandler for Backend {
    async fn on_copy_data<C>(&self, _client: &mut C, copy_data: CopyData) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let mut state = self.copy_in.lock().expect("copy state");
        let Some(copy) = state.as_mut() else {
            return Err(user_error(&SqlError::new(
                "08P01",
                "CopyData without a COPY FROM STDIN in progress",
            )));
        };
        if copy.data.len() + copy_data.data.len() > MAX_COPY_BYTES {
            *state = None;
            return Err(user_error(&SqlError::new(
                "54000",
                format!(
                    "COPY data over {} MiB in one statement; split it into several COPY statements",
                    MAX_COPY_BYTES >> 20
                ),
            )));
        }
        copy.data.extend_from_slice(&copy_data.data);
        Ok(())
    }

    async fn on_copy_done<C>(&self, client: &mut C, _done: CopyDone) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let Some(CopyIn { mut copy, data }) = self.copy_in.lock().expect("copy state").take()
        else {
            return Err(user_error(&SqlError::new(
                "08P01",
                "CopyDone without a COPY FROM STDIN in progress",
            )));
        };
        let text = String::from_utf8(data)
            .map_err(|_| user_error(&SqlError::new("22021", "COPY data is not valid UTF-8")))?;
        copy.payload = Some(text);
        let mut results = self
            .run(vec![Statement::Copy(copy)].into(), Vec::new(), None)
            .await;
        match results.pop() {
            Some(Ok(r)) => {
                client
                    .send(PgWireBackendMessage::CommandComplete(
                        command_tag(&r.tag).into(),
                    ))
                    .await?;
                Ok(())
            }
            Some(Err(e)) => Err(user_error(&e)),
            None => Ok(()),
        }
    }

    async fn on_copy_fail<C>(&self, _client: &mut C, fail: CopyFail) -> PgWireError
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        self.copy_in.lock().expect("copy state").take();
        user_error(&SqlError::new(
            "57014",
            format!("COPY from stdin failed: {}", fail.message),
        ))
    }
}

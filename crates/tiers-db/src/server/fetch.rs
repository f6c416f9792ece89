//! The row limit of an Execute message, made safe to hand to pgwire.
//!
//! pgwire's portal fetch reserves room for the whole limit before it reads
//! a row: one Execute asking for a billion rows reserved 32 GB and aborted
//! the process (found by the `pgwire` fuzzer), and a negative limit, which
//! PostgreSQL reads as "all rows", overflowed the reservation. A portal's rows
//! are already in memory when they are fetched (results are materialised), so
//! the number left is known: a limit that covers them all is the same request
//! as "all rows" (0), and a limit below it reserves less than what is already
//! held. The server's answer is exactly PostgreSQL's either way.
//!
//! A portal that has not run yet is run here first, so that its row count is
//! known before the limit is passed on; the response waits in
//! [`Backend::prerun`] for pgwire's `do_query`, which takes it instead of running
//! the statement a second time.

use pgwire::api::portal::PortalExecutionState;
use pgwire::api::results::QueryResponse;

use super::*;

/// A response computed for a portal before pgwire asked for it.
pub(super) struct Prerun {
    portal: String,
    response: Response,
}

impl Backend {
    /// The row limit to pass on for `message`: its own when that is below the
    /// rows the portal holds, else 0 (all of them).
    pub(super) async fn bounded_max_rows<C>(
        &self,
        client: &mut C,
        message: &Execute,
    ) -> PgWireResult<i32>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Prepared>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if message.max_rows <= 0 {
            return Ok(0);
        }
        let requested = message.max_rows as usize;
        // pgwire refuses an Execute out of turn before it runs anything;
        // nothing may run here either.
        if !matches!(
            client.state(),
            pgwire::api::PgWireConnectionState::ReadyForQuery
        ) {
            return Ok(0);
        }
        let name = message.name.as_deref().unwrap_or(DEFAULT_NAME);
        let Some(Entry::Value(portal)) = client.portal_store().get_portal(name) else {
            return Ok(0); // an empty or unknown portal fetches nothing
        };
        let state = portal.state();
        let mut state = state.lock().await;
        let held = match &mut *state {
            PortalExecutionState::Suspended(response) => rows_left(response),
            PortalExecutionState::Finished => return Ok(0),
            PortalExecutionState::Initial => {
                drop(state);
                let mut response =
                    ExtendedQueryHandler::do_query(self, client, portal.as_ref(), 0).await?;
                let held = match &mut response {
                    Response::Query(query) => rows_left(query),
                    _ => 0, // no rows are fetched from any other response
                };
                *self.prerun.lock().expect("prerun") = Some(Prerun {
                    portal: name.to_owned(),
                    response,
                });
                held
            }
        };
        Ok(if requested >= held {
            0
        } else {
            message.max_rows
        })
    }

    /// The response [`Backend::bounded_max_rows`] computed for `portal`, if any.
    pub(super) fn take_prerun(&self, portal: &str) -> Option<Response> {
        let mut slot = self.prerun.lock().expect("prerun");
        match slot.take() {
            Some(p) if p.portal == portal => Some(p.response),
            other => {
                *slot = other;
                None
            }
        }
    }
}

/// How many rows a suspended portal still holds: its stream iterates a
/// materialised result, so the bound is exact. A stream that could not say
/// would count as unbounded, and its limit is passed on as it came.
fn rows_left(response: &mut QueryResponse) -> usize {
    let (_, upper) = futures::Stream::size_hint(response.data_rows());
    upper.unwrap_or(usize::MAX)
}

//! Extended-protocol replies go out at Sync (or Flush), in one write.
//!
//! pgwire flushes the socket after ParseComplete, a Describe's reply and an
//! Execute's CommandComplete, so a prepared statement's round trip (Bind,
//! Describe, Execute, Sync) took three writes, each a TCP segment and a
//! wakeup of the client, which then found its reply incomplete. PostgreSQL
//! answers the whole exchange with one write at Sync, as the protocol
//! allows: a server need not flush before Sync or Flush. [`Deferred`] wraps
//! the connection for those handlers and makes their flushes no-ops; the
//! connection's own buffer bound still writes large results out as they grow.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::Sink;
use pgwire::api::{ClientInfo, ClientPortalStore, PgWireConnectionState, SessionExtensions};
use pgwire::messages::startup::SecretKey;
use pgwire::messages::{PgWireBackendMessage, ProtocolVersion};
use rustls_pki_types::CertificateDer;

/// A connection whose flushes wait for Sync (see the module).
pub(super) struct Deferred<'a, C>(pub &'a mut C);

impl<C: ClientInfo> ClientInfo for Deferred<'_, C> {
    fn socket_addr(&self) -> SocketAddr {
        self.0.socket_addr()
    }
    fn is_secure(&self) -> bool {
        self.0.is_secure()
    }
    fn protocol_version(&self) -> ProtocolVersion {
        self.0.protocol_version()
    }
    fn set_protocol_version(&mut self, version: ProtocolVersion) {
        self.0.set_protocol_version(version)
    }
    fn pid_and_secret_key(&self) -> (i32, SecretKey) {
        self.0.pid_and_secret_key()
    }
    fn set_pid_and_secret_key(&mut self, pid: i32, secret_key: SecretKey) {
        self.0.set_pid_and_secret_key(pid, secret_key)
    }
    fn state(&self) -> PgWireConnectionState {
        self.0.state()
    }
    fn set_state(&mut self, new_state: PgWireConnectionState) {
        self.0.set_state(new_state)
    }
    fn transaction_status(&self) -> pgwire::messages::response::TransactionStatus {
        self.0.transaction_status()
    }
    fn set_transaction_status(
        &mut self,
        new_status: pgwire::messages::response::TransactionStatus,
    ) {
        self.0.set_transaction_status(new_status)
    }
    fn metadata(&self) -> &HashMap<String, String> {
        self.0.metadata()
    }
    fn metadata_mut(&mut self) -> &mut HashMap<String, String> {
        self.0.metadata_mut()
    }
    fn session_extensions(&self) -> &SessionExtensions {
        self.0.session_extensions()
    }
    fn sni_server_name(&self) -> Option<&str> {
        self.0.sni_server_name()
    }
    fn client_certificates<'a>(&self) -> Option<&[CertificateDer<'a>]> {
        self.0.client_certificates()
    }
}

impl<C: ClientPortalStore> ClientPortalStore for Deferred<'_, C> {
    type PortalStore = C::PortalStore;

    fn portal_store(&self) -> &Self::PortalStore {
        self.0.portal_store()
    }
}

impl<C> Sink<PgWireBackendMessage> for Deferred<'_, C>
where
    C: Sink<PgWireBackendMessage> + Unpin,
{
    type Error = C::Error;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), C::Error>> {
        Pin::new(&mut *self.0).poll_ready(cx)
    }

    fn start_send(mut self: Pin<&mut Self>, item: PgWireBackendMessage) -> Result<(), C::Error> {
        Pin::new(&mut *self.0).start_send(item)
    }

    /// Written at Sync or Flush instead.
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Result<(), C::Error>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), C::Error>> {
        Pin::new(&mut *self.0).poll_close(cx)
    }
}

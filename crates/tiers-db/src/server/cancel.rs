//! Cancel requests: every session's interrupt flag, registered under the
//! backend pid and secret key its client was given.

use super::*;

/// Running sessions by backend pid, for cancel requests: the secret key
/// the client was given, and the session's interrupt flag.
#[derive(Default)]
pub(super) struct Cancels {
    pub(super) map: Mutex<HashMap<i32, (Bytes, Arc<AtomicBool>)>>,
}

/// Unregisters a session from [`Cancels`] when its connection ends.
struct CancelRegistration {
    pid: i32,
    cancels: Arc<Cancels>,
}

impl Drop for CancelRegistration {
    fn drop(&mut self) {
        self.cancels
            .map
            .lock()
            .expect("cancel registry")
            .remove(&self.pid);
    }
}

#[async_trait]
impl CancelHandler for Cancels {
    async fn on_cancel_request(&self, request: CancelRequest) {
        let map = self.map.lock().expect("cancel registry");
        if let Some((key, flag)) = map.get(&request.pid)
            && *key == request.secret_key.to_bytes()
        {
            flag.store(true, AtomicOrdering::Relaxed);
        }
    }
}

/// Hands out backend pids and cancel keys, and registers each session's
/// interrupt flag under them for cancel requests.
pub(super) struct RegisteringKeys {
    pub(super) shared: Arc<Shared>,
    pub(super) interrupt: Arc<AtomicBool>,
}

impl PidSecretKeyGenerator for RegisteringKeys {
    fn generate(&self, client: &dyn ClientInfo) -> (i32, pgwire::messages::startup::SecretKey) {
        let (pid, key) = self.shared.pids.generate(client);
        self.shared
            .cancels
            .map
            .lock()
            .expect("cancel registry")
            .insert(pid, (key.to_bytes(), self.interrupt.clone()));
        client.session_extensions().insert(CancelRegistration {
            pid,
            cancels: self.shared.cancels.clone(),
        });
        (pid, key)
    }
}

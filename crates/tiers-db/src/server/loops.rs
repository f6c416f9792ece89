//! Connection event loops: each client connection lives on one of a few
//! single-threaded runtimes, one per thread, as nginx's workers own their
//! connections. A connection's messages, its point reads and its short
//! writes then run on the thread that polled its socket, and no worker
//! wakes another to share its queue: on a small machine those cross-thread
//! wake-ups (a futex call and a context switch each) cost as much as the
//! statements themselves. Work that may block still goes to a blocking pool
//! (see `dispatch`), so a loop only ever runs short steps.

use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::runtime::Handle;
use tokio::sync::oneshot;

/// The loops, and the round-robin choice among them.
pub(super) struct ConnectionLoops {
    handles: Vec<Handle>,
    /// Dropping these ends the loops (and the connections still on them).
    _stops: Vec<oneshot::Sender<()>>,
    next: AtomicUsize,
}

impl ConnectionLoops {
    /// Starts `count` loops (at least one), each on its own thread.
    pub(super) fn start(count: usize) -> std::io::Result<ConnectionLoops> {
        let mut handles = Vec::new();
        let mut stops = Vec::new();
        for i in 0..count.max(1) {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .thread_name("tiers-db-blocking")
                .build()?;
            let (stop, stopped) = oneshot::channel::<()>();
            handles.push(runtime.handle().clone());
            std::thread::Builder::new()
                .name(format!("tiers-db-loop-{i}"))
                .spawn(move || {
                    runtime.block_on(async {
                        let _ = stopped.await;
                    });
                    // A statement still running on the blocking pool must
                    // not hold up the thread's end.
                    runtime.shutdown_background();
                })?;
            stops.push(stop);
        }
        Ok(ConnectionLoops {
            handles,
            _stops: stops,
            next: AtomicUsize::new(0),
        })
    }

    /// The loop the next connection goes to.
    pub(super) fn pick(&self) -> &Handle {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.handles.len();
        &self.handles[i]
    }
}

/// How many loops a server starts by default: one per CPU.
pub(super) fn default_count() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

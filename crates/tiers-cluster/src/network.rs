//! The cluster transport: Raft RPCs as length-prefixed postcard frames
//! over TCP (a 4-byte little-endian length, then the message), one request
//! at a time per connection, each bounded by openraft's RPC deadline.
//!
//! A snapshot goes on a connection of its own: a request frame with its
//! metadata, then the file in chunk frames of [`SNAPSHOT_CHUNK`] bytes, then
//! an empty frame; the receiver writes it to a temporary file, checks it
//! whole ([`tiers_storage::verify_snapshot`]) and only then installs it, so
//! a transfer cut short or damaged is refused and sent again.
//!
//! [`Faults`] is the fault layer: a node cut off from a peer neither sends
//! to it nor answers it, which is a network partition as both sides see
//! it. Tests and `tiers chaos partition` use it, since the machines this
//! runs on have no netem and no iptables.

use std::collections::HashSet;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use openraft::RaftNetworkV2;
use openraft::error::{NetworkError, RPCError, ReplicationClosed, StreamingError, Unreachable};
use openraft::network::{RPCOption, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, TransferLeaderRequest,
    TransferLeaderResponse, VoteRequest, VoteResponse,
};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::state_machine::{Snapshot, SnapshotData, SnapshotFile, SnapshotMeta, Snapshots};
use crate::{NodeAddr, Raft, TypeConfig, Vote, decode, encode};

/// The largest frame accepted (an append of many big commit records).
pub const MAX_FRAME: usize = 1 << 30;
/// The size of a snapshot's chunk frames.
pub const SNAPSHOT_CHUNK: usize = 1 << 20;
/// How long one snapshot chunk may take to send or arrive before the
/// transfer is given up (and retried by the leader).
pub const SNAPSHOT_CHUNK_TIMEOUT: Duration = Duration::from_secs(10);

/// Which peers this node is cut off from.
#[derive(Debug, Default)]
pub struct Faults {
    cut: Mutex<HashSet<u64>>,
}

impl Faults {
    /// Cuts this node off from `peer` (both directions), or heals that.
    pub fn set_cut(&self, peer: u64, cut: bool) {
        let mut c = self.cut.lock().expect("faults");
        if cut {
            c.insert(peer);
        } else {
            c.remove(&peer);
        }
    }

    /// Heals every cut.
    pub fn heal_all(&self) {
        self.cut.lock().expect("faults").clear();
    }

    /// Whether this node is cut off from `peer`.
    pub fn is_cut(&self, peer: u64) -> bool {
        self.cut.lock().expect("faults").contains(&peer)
    }
}

#[derive(Serialize, Deserialize)]
enum Request {
    Append(AppendEntriesRequest<TypeConfig>),
    Vote(VoteRequest<TypeConfig>),
    PreVote(VoteRequest<TypeConfig>),
    TransferLeader(TransferLeaderRequest<TypeConfig>),
    /// A snapshot follows in chunk frames, then an empty frame.
    Snapshot {
        vote: Vote,
        meta: SnapshotMeta,
    },
}

#[derive(Serialize, Deserialize)]
enum Response {
    Append(Result<AppendEntriesResponse<TypeConfig>, String>),
    Vote(Result<VoteResponse<TypeConfig>, String>),
    TransferLeader(Result<TransferLeaderResponse<TypeConfig>, String>),
    Snapshot(Result<SnapshotResponse<TypeConfig>, String>),
    /// The receiver is cut off from the sender.
    Cut,
}

#[derive(Serialize, Deserialize)]
struct Envelope {
    from: u64,
    request: Request,
}

async fn write_frame(stream: &mut TcpStream, body: &[u8]) -> std::io::Result<()> {
    let len = u32::try_from(body.len()).map_err(std::io::Error::other)?;
    stream.write_all(&len.to_le_bytes()).await?;
    stream.write_all(body).await?;
    stream.flush().await
}

async fn read_frame(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    stream.read_exact(&mut len).await?;
    let len = u32::from_le_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(std::io::Error::other(format!(
            "a {len}-byte cluster frame is over the {MAX_FRAME}-byte limit"
        )));
    }
    let mut body = vec![0u8; len];
    stream.read_exact(&mut body).await?;
    Ok(body)
}

/// Answers the cluster RPCs of peers on `listener` until the task is
/// dropped; snapshots received are written into `snapshots`' directory.
pub async fn serve(
    listener: TcpListener,
    raft: Raft,
    faults: Arc<Faults>,
    snapshots: Arc<Snapshots>,
) {
    // Connections end with the server: a stopped node must not go on
    // answering (for a Raft that is no more) on connections peers keep.
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            Some(_) = connections.join_next() => continue,
        };
        let Ok((mut stream, _)) = accepted else {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let (raft, faults, snapshots) = (raft.clone(), faults.clone(), snapshots.clone());
        connections.spawn(async move {
            while let Ok(body) = read_frame(&mut stream).await {
                let Ok(env) = decode::<Envelope>(&body) else {
                    return; // not a peer speaking this protocol
                };
                let cut = faults.is_cut(env.from);
                let response = match env.request {
                    _ if cut => Response::Cut,
                    Request::Snapshot { vote, meta } => {
                        let received = receive_snapshot(&mut stream, &raft, &snapshots, vote, meta);
                        match received.await {
                            Ok(r) => r,
                            Err(_) => return, // the transfer broke off: the sender retries
                        }
                    }
                    request => dispatch(&raft, request).await,
                };
                let Ok(out) = encode(&response) else { return };
                if write_frame(&mut stream, &out).await.is_err() {
                    return;
                }
            }
        });
    }
}

/// Removes a temporary file when dropped (a received snapshot that was
/// not installed; an installed one was renamed away already).
struct TempFile(std::path::PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Receives a snapshot's chunks into a temporary file, checks it whole and
/// installs it. An I/O error on the connection ends the transfer (the
/// sender retries); a damaged file is answered with the reason.
async fn receive_snapshot(
    stream: &mut TcpStream,
    raft: &Raft,
    snapshots: &Snapshots,
    vote: Vote,
    meta: SnapshotMeta,
) -> std::io::Result<Response> {
    use std::io::Write;
    let temp = TempFile(snapshots.temp_path());
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&temp.0)?;
    loop {
        let chunk = tokio::time::timeout(SNAPSHOT_CHUNK_TIMEOUT, read_frame(stream))
            .await
            .map_err(|_| std::io::Error::other("a snapshot chunk did not arrive in time"))??;
        if chunk.is_empty() {
            break;
        }
        tokio::task::block_in_place(|| file.write_all(&chunk))?;
    }
    tokio::task::block_in_place(|| file.sync_all())?;
    let checked = {
        let file = std::fs::File::open(&temp.0)?;
        tokio::task::spawn_blocking(move || {
            tiers_storage::verify_snapshot(&mut std::io::BufReader::new(file))
        })
        .await
        .map_err(std::io::Error::other)?
    };
    if let Err(e) = checked {
        return Ok(Response::Snapshot(Err(format!(
            "the snapshot arrived damaged and was not installed: {e}"
        ))));
    }
    let snapshot = Snapshot {
        meta,
        snapshot: SnapshotFile {
            path: temp.0.clone(),
            file,
        },
    };
    let installed = raft.install_full_snapshot(vote, snapshot).await;
    Ok(Response::Snapshot(installed.map_err(|e| e.to_string())))
}

async fn dispatch(raft: &Raft, request: Request) -> Response {
    let text = |e: &dyn std::fmt::Display| e.to_string();
    match request {
        Request::Append(r) => Response::Append(raft.append_entries(r).await.map_err(|e| text(&e))),
        Request::Vote(r) => Response::Vote(raft.vote(r).await.map_err(|e| text(&e))),
        Request::PreVote(r) => Response::Vote(raft.pre_vote(r).await.map_err(|e| text(&e))),
        Request::TransferLeader(r) => {
            Response::TransferLeader(raft.handle_transfer_leader(r).await.map_err(|e| text(&e)))
        }
        Request::Snapshot { .. } => Response::Snapshot(Err("a snapshot needs its chunks".into())),
    }
}

/// Makes connections to peers.
#[derive(Clone)]
pub struct Network {
    /// This node's id (sent with every request).
    pub id: u64,
    /// The fault layer.
    pub faults: Arc<Faults>,
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Peer;

    async fn new_client(&mut self, target: u64, node: &NodeAddr) -> Peer {
        Peer {
            from: self.id,
            target,
            addr: node.raft.clone(),
            stream: None,
            faults: self.faults.clone(),
        }
    }
}

/// A connection to one peer.
pub struct Peer {
    from: u64,
    target: u64,
    addr: String,
    stream: Option<TcpStream>,
    faults: Arc<Faults>,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Failure(String);

impl Peer {
    async fn call<E: std::error::Error>(
        &mut self,
        request: Request,
        option: &RPCOption,
    ) -> Result<Response, RPCError<TypeConfig, E>> {
        let unreachable = |why: String| RPCError::Unreachable(Unreachable::new(&Failure(why)));
        if self.faults.is_cut(self.target) {
            return Err(unreachable(format!("cut off from node {}", self.target)));
        }
        let body = encode(&Envelope {
            from: self.from,
            request,
        })
        .map_err(|e| RPCError::Network(NetworkError::new(&Failure(e.to_string()))))?;
        let deadline = option.hard_ttl();
        let attempt = async {
            if self.stream.is_none() {
                let stream = TcpStream::connect(&self.addr)
                    .await
                    .map_err(|e| unreachable(format!("connecting to {}: {e}", self.addr)))?;
                let _ = stream.set_nodelay(true);
                self.stream = Some(stream);
            }
            let stream = self.stream.as_mut().expect("connected");
            let network = |e: std::io::Error| {
                RPCError::Network(NetworkError::new(&Failure(format!("{}: {e}", self.addr))))
            };
            write_frame(stream, &body).await.map_err(network)?;
            let reply = read_frame(stream).await.map_err(network)?;
            decode::<Response>(&reply)
                .map_err(|e| RPCError::Network(NetworkError::new(&Failure(e.to_string()))))
        };
        let result = match tokio::time::timeout(deadline, attempt).await {
            Ok(r) => r,
            Err(_) => Err(unreachable(format!(
                "node {} did not answer within {deadline:?}",
                self.target
            ))),
        };
        match result {
            Ok(Response::Cut) => {
                self.stream = None;
                Err(unreachable(format!(
                    "node {} is cut off from us",
                    self.target
                )))
            }
            Ok(r) => Ok(r),
            Err(e) => {
                self.stream = None;
                Err(e)
            }
        }
    }
}

fn remote<E: std::error::Error>(why: String) -> RPCError<TypeConfig, E> {
    RPCError::Network(NetworkError::new(&Failure(why)))
}

impl RaftNetworkV2<TypeConfig> for Peer {
    type SnapshotData = SnapshotData;

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<TypeConfig>, RPCError<TypeConfig>> {
        match self.call(Request::Append(rpc), &option).await? {
            Response::Append(r) => r.map_err(remote),
            _ => Err(remote("a reply of the wrong kind".into())),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        match self.call(Request::Vote(rpc), &option).await? {
            Response::Vote(r) => r.map_err(remote),
            _ => Err(remote("a reply of the wrong kind".into())),
        }
    }

    async fn pre_vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        match self.call(Request::PreVote(rpc), &option).await? {
            Response::Vote(r) => r.map_err(remote),
            _ => Err(remote("a reply of the wrong kind".into())),
        }
    }

    async fn transfer_leader(
        &mut self,
        req: TransferLeaderRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<TransferLeaderResponse<TypeConfig>, RPCError<TypeConfig>> {
        match self.call(Request::TransferLeader(req), &option).await? {
            Response::TransferLeader(r) => r.map_err(remote),
            _ => Err(remote("a reply of the wrong kind".into())),
        }
    }

    async fn full_snapshot(
        &mut self,
        vote: Vote,
        snapshot: Snapshot,
        cancel: impl Future<Output = ReplicationClosed> + Send + 'static,
        _option: RPCOption,
    ) -> Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>> {
        let unreachable =
            |why: String| StreamingError::Unreachable(Unreachable::new(&Failure(why)));
        if self.faults.is_cut(self.target) {
            return Err(unreachable(format!("cut off from node {}", self.target)));
        }
        let transfer = send_snapshot(&self.addr, self.from, vote, snapshot);
        tokio::select! {
            closed = cancel => Err(StreamingError::Closed(closed)),
            sent = transfer => match sent {
                Ok(Response::Snapshot(Ok(r))) => Ok(r),
                Ok(Response::Snapshot(Err(why))) => Err(StreamingError::Network(NetworkError::new(
                    &Failure(format!("node {} refused the snapshot: {why}", self.target)),
                ))),
                Ok(Response::Cut) => Err(unreachable(format!("node {} is cut off from us", self.target))),
                Ok(_) => Err(unreachable("a reply of the wrong kind".into())),
                Err(e) => Err(unreachable(format!(
                    "sending the snapshot to {}: {e}",
                    self.addr
                ))),
            },
        }
    }
}

/// Streams `snapshot` to the peer at `addr` on a connection of its own and
/// returns its answer.
async fn send_snapshot(
    addr: &str,
    from: u64,
    vote: Vote,
    snapshot: Snapshot,
) -> std::io::Result<Response> {
    let timed = |what: &'static str| move |_| std::io::Error::other(format!("{what} timed out"));
    let mut stream = tokio::time::timeout(SNAPSHOT_CHUNK_TIMEOUT, TcpStream::connect(addr))
        .await
        .map_err(timed("connecting"))??;
    let _ = stream.set_nodelay(true);
    let head = encode(&Envelope {
        from,
        request: Request::Snapshot {
            vote,
            meta: snapshot.meta,
        },
    })
    .map_err(std::io::Error::other)?;
    write_frame(&mut stream, &head).await?;
    use std::io::Read;
    let mut file = snapshot.snapshot.file;
    let mut chunk = vec![0u8; SNAPSHOT_CHUNK];
    loop {
        let n = tokio::task::block_in_place(|| file.read(&mut chunk))?;
        tokio::time::timeout(
            SNAPSHOT_CHUNK_TIMEOUT,
            write_frame(&mut stream, &chunk[..n]),
        )
        .await
        .map_err(timed("sending a snapshot chunk"))??;
        if n == 0 {
            break;
        }
    }
    // Checking and installing a large snapshot takes a while.
    let reply = tokio::time::timeout(SNAPSHOT_CHUNK_TIMEOUT * 30, read_frame(&mut stream))
        .await
        .map_err(timed("waiting for the snapshot to be installed"))??;
    decode::<Response>(&reply).map_err(std::io::Error::other)
}

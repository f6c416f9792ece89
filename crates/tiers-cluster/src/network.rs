//! The cluster transport: Raft RPCs as length-prefixed postcard frames
//! over TCP (a 4-byte little-endian length, then the message), one request
//! at a time per connection, each bounded by openraft's RPC deadline.
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

use crate::state_machine::SnapshotData;
use crate::{NodeAddr, Raft, TypeConfig, Vote, decode, encode};

/// The largest frame accepted (an append of many big commit records).
pub const MAX_FRAME: usize = 1 << 30;

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
}

#[derive(Serialize, Deserialize)]
enum Response {
    Append(Result<AppendEntriesResponse<TypeConfig>, String>),
    Vote(Result<VoteResponse<TypeConfig>, String>),
    TransferLeader(Result<TransferLeaderResponse<TypeConfig>, String>),
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

/// Answers the cluster RPCs of peers on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, raft: Raft, faults: Arc<Faults>) {
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let (raft, faults) = (raft.clone(), faults.clone());
        tokio::spawn(async move {
            while let Ok(body) = read_frame(&mut stream).await {
                let Ok(env) = decode::<Envelope>(&body) else {
                    return; // not a peer speaking this protocol
                };
                let response = if faults.is_cut(env.from) {
                    Response::Cut
                } else {
                    dispatch(&raft, env.request).await
                };
                let Ok(out) = encode(&response) else { return };
                if write_frame(&mut stream, &out).await.is_err() {
                    return;
                }
            }
        });
    }
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
        _vote: Vote,
        _snapshot: openraft::alias::SnapshotOf<TypeConfig, SnapshotData>,
        _cancel: impl Future<Output = ReplicationClosed> + Send + 'static,
        _option: RPCOption,
    ) -> Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>> {
        // The state machine never builds a snapshot yet (the whole log is
        // kept), so there is none to send.
        Err(StreamingError::Unreachable(Unreachable::new(&Failure(
            "snapshots are not sent yet: peers catch up from the log".into(),
        ))))
    }
}

//! The data node's `Node` gRPC service: routed writes, accepted only by the shard's leader under
//! a valid lease and at the route's version. Whoever embeds it is told of every accepted write
//! (the node-agent logs it; the simulation records it for its oracle).

use std::sync::{Arc, Mutex};

use tonic::{Request, Response, Status};

use super::node::NodeClock;
use super::ShardHost;
use crate::core::{Instant, ShardId, Version};
use crate::proto;

/// Called for every accepted write, under the host lock: the write is inside the lease it was
/// checked against.
pub type OnWrite = Box<dyn Fn(ShardId, Version, Instant) + Send + Sync>;

pub struct WriteService {
    host: Arc<Mutex<ShardHost>>,
    clock: NodeClock,
    on_write: OnWrite,
}

impl WriteService {
    /// Wrap it in `proto::node_server::NodeServer` to serve it.
    pub fn new(host: Arc<Mutex<ShardHost>>, clock: NodeClock, on_write: OnWrite) -> WriteService {
        WriteService { host, clock, on_write }
    }
}

#[tonic::async_trait]
impl proto::node_server::Node for WriteService {
    async fn write(
        &self,
        request: Request<proto::WriteRequest>,
    ) -> Result<Response<proto::WriteResponse>, Status> {
        let w = request.into_inner();
        let (shard, version) = (ShardId(w.shard), Version(w.version));
        let now = self.clock.now();
        let host = self.host.lock().expect("host lock");
        host.check_write(shard, version, now).map_err(Status::failed_precondition)?;
        (self.on_write)(shard, version, now);
        Ok(Response::new(proto::WriteResponse {}))
    }
}

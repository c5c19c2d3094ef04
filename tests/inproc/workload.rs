//! The workload: a client that creates the cluster, then issues DDL and routed writes, and
//! records every acknowledgement it gets (the history the durability check holds meta to).

use std::collections::{BTreeMap, VecDeque};

use rand_chacha::rand_core::RngCore;
use rand_chacha::ChaCha8Rng;
use shardmeta::check::AckLog;
use shardmeta::core::model::Topology;
use shardmeta::core::*;

pub const CLUSTER: &str = "sim";
/// The first cluster created gets id 1.
pub const CLUSTER_ID: ClusterId = ClusterId(1);
const TABLE_NAMES: u64 = 40;

pub struct Client {
    pub meta: usize,
    next_id: u64,
    pub outstanding: BTreeMap<RequestId, (Request, Instant)>,
    /// Operator requests, sent before anything else and again until meta answers them.
    operator: VecDeque<Request>,
    /// Acknowledged creates and drops whose effect is certain: what S2 holds meta to.
    pub acks: AckLog,
    /// Acknowledged creates that a drop with unknown outcome may have removed, by that drop.
    contested: BTreeMap<RequestId, (String, Vec<(TableId, String)>)>,
    /// Sub-tables of acknowledged partitioned tables.
    subs: BTreeMap<TableId, Vec<TableId>>,
    pub cluster_ready: bool,
    pub writes_accepted: u64,
    pub writes_rejected: u64,
    pub timeouts: u64,
}

/// What the client wants sent.
pub enum Send {
    Meta(usize, RequestId, Request),
    /// A routed write to the leader endpoint a route named.
    Node(String, ShardId, Version),
}

impl Client {
    pub fn new() -> Client {
        Client {
            meta: 0,
            next_id: 1,
            outstanding: BTreeMap::new(),
            operator: VecDeque::new(),
            acks: AckLog::default(),
            contested: BTreeMap::new(),
            subs: BTreeMap::new(),
            cluster_ready: false,
            writes_accepted: 0,
            writes_rejected: 0,
            timeouts: 0,
        }
    }

    fn request(&mut self, now: Instant, req: Request) -> Send {
        let id = RequestId(self.next_id);
        self.next_id += 1;
        if let Request::DropTable { name, .. } = &req {
            self.contest(id, name);
        }
        self.outstanding.insert(id, (req.clone(), now));
        Send::Meta(self.meta, id, req)
    }

    /// One step of the workload.
    pub fn tick(
        &mut self,
        rng: &mut ChaCha8Rng,
        now: Instant,
        metas: usize,
        give_up_after: Duration,
        spec: &ClusterSpec,
    ) -> Option<Send> {
        // A request given up on keeps whatever it contested: its outcome is unknown for ever.
        let stale: Vec<RequestId> = self
            .outstanding
            .iter()
            .filter(|(_, (_, t))| now > *t + give_up_after)
            .map(|(id, _)| *id)
            .collect();
        for id in stale {
            if let Some((req @ (Request::DrainNode { .. } | Request::SetPlacement { .. }), _)) =
                self.outstanding.remove(&id)
            {
                self.operator.push_back(req);
            }
            self.timeouts += 1;
            self.meta = (self.meta + 1) % metas;
        }
        if self.outstanding.len() >= 4 {
            return None;
        }
        if !self.cluster_ready {
            if self.outstanding.values().any(|(r, _)| matches!(r, Request::CreateCluster(_))) {
                return None;
            }
            return Some(self.request(now, Request::CreateCluster(spec.clone())));
        }
        if let Some(req) = self.operator.pop_front() {
            return Some(self.request(now, req));
        }
        let name = format!("t{}", rng.next_u64() % TABLE_NAMES);
        let roll = rng.next_u64() % 10;
        let req = match roll {
            0..=4 => {
                let mut options = std::collections::BTreeMap::new();
                options.insert("ttl".to_owned(), format!("{}d", rng.next_u64() % 30));
                let partition = rng
                    .next_u64()
                    .is_multiple_of(8)
                    .then(|| PartitionSpec { partition_count: 3, encoded: vec![1, 2] });
                Request::CreateTable(CreateTable {
                    cluster: CLUSTER.into(),
                    schema: "public".into(),
                    name,
                    encoded_schema: vec![7; (rng.next_u64() % 64) as usize],
                    options,
                    if_not_exists: rng.next_u64().is_multiple_of(2),
                    partition,
                })
            }
            5..=6 => Request::DropTable { cluster: CLUSTER.into(), schema: "public".into(), name },
            7 => Request::AlterTable(AlterTable {
                cluster: CLUSTER.into(),
                schema: "public".into(),
                name,
                // Often stale: compare-and-set refusals are part of the mix.
                expected_version: 1 + (rng.next_u64() % 3) as u32,
                encoded_schema: Some(vec![8; (rng.next_u64() % 64) as usize]),
                options: None,
            }),
            _ => Request::RouteTables {
                cluster: CLUSTER.into(),
                schema: "public".into(),
                tables: vec![name],
            },
        };
        Some(self.request(now, req))
    }

    /// Queues an operator request.
    pub fn operate(&mut self, req: Request) {
        self.operator.push_back(req);
    }

    /// A drop of `name` is on its way: until its outcome is known, the acknowledged creates of
    /// that name are not held against meta.
    fn contest(&mut self, drop: RequestId, name: &str) {
        let ids: Vec<TableId> =
            self.acks.created.iter().filter(|(_, n)| *n == name).map(|(&(_, t), _)| t).collect();
        let mut taken = Vec::new();
        for t in ids {
            for sub in std::iter::once(t).chain(self.subs.get(&t).into_iter().flatten().copied()) {
                if let Some(n) = self.acks.created.remove(&(CLUSTER_ID, sub)) {
                    taken.push((sub, n));
                }
            }
        }
        self.contested.insert(drop, (name.to_owned(), taken));
    }

    /// The drop's outcome is known: what it did not drop is held against meta again.
    fn settle(&mut self, drop: RequestId, dropped: Option<TableId>) {
        let dropped_ids: Vec<TableId> = dropped
            .into_iter()
            .flat_map(|t| {
                std::iter::once(t).chain(self.subs.get(&t).into_iter().flatten().copied())
            })
            .collect();
        for id in &dropped_ids {
            self.acks.dropped.insert((CLUSTER_ID, *id));
        }
        let (name, taken) = self.contested.remove(&drop).unwrap_or_default();
        for (t, table) in taken.into_iter().filter(|(t, _)| !dropped_ids.contains(t)) {
            // Another drop of the name still in flight may remove it yet (seed 1592665624: a
            // drop answered NotFound gave back a create that the next drop then removed).
            match self.contested.values_mut().find(|(n, _)| *n == name) {
                Some((_, other)) => other.push((t, table)),
                None => {
                    self.acks.created.insert((CLUSTER_ID, t), table);
                }
            }
        }
    }

    pub fn on_reply(
        &mut self,
        id: RequestId,
        result: Result<Response, MetaError>,
        metas: usize,
    ) -> Option<Send> {
        let (req, _) = self.outstanding.remove(&id)?;
        if matches!(req, Request::DropTable { .. }) {
            match &result {
                Ok(Response::TableDropped { id: t }) => self.settle(id, Some(*t)),
                Err(MetaError::NotFound(_)) => self.settle(id, None),
                _ => {} // unknown outcome: stays contested
            }
        }
        match (req, result) {
            // Refused for good (a static cluster, too few nodes left) or done; anything else is retried.
            (
                Request::DrainNode { .. } | Request::SetPlacement { .. },
                Ok(_) | Err(MetaError::FailedPrecondition(_) | MetaError::NotFound(_)),
            ) => {}
            (req @ (Request::DrainNode { .. } | Request::SetPlacement { .. }), Err(e)) => {
                self.operator.push_back(req);
                if e == MetaError::NotLeader {
                    self.meta = (self.meta + 1) % metas;
                }
            }
            (Request::CreateCluster(_), Ok(Response::Cluster(info))) => {
                assert_eq!(info.id, CLUSTER_ID, "the simulation creates one cluster");
                self.cluster_ready = true;
            }
            (Request::CreateCluster(_), Err(MetaError::AlreadyExists(_))) => {
                self.cluster_ready = true
            }
            (_, Ok(Response::TableCreated { table, created: true })) => {
                if self.acks.dropped.contains(&(CLUSTER_ID, table.id)) {
                    // The drop's reply overtook this one: the sub-tables went with their parent.
                    self.acks.dropped.extend(table.sub_tables.iter().map(|&sub| (CLUSTER_ID, sub)));
                }
                let mut names = vec![(table.id, table.name.clone())];
                names.extend(
                    table
                        .sub_tables
                        .iter()
                        .enumerate()
                        .map(|(i, sub)| (*sub, format!("__{}_{i}", table.name))),
                );
                // A drop of this name whose outcome is not known may already have removed it.
                match self.contested.values_mut().find(|(n, _)| *n == table.name) {
                    Some((_, taken)) => taken.extend(names),
                    None => names.into_iter().for_each(|(t, n)| {
                        self.acks.created.insert((CLUSTER_ID, t), n);
                    }),
                }
                if !table.sub_tables.is_empty() {
                    self.subs.insert(table.id, table.sub_tables.clone());
                }
            }
            (_, Ok(Response::TableAltered(t))) => {
                let version = self.acks.altered.entry((CLUSTER_ID, t.info.id)).or_default();
                *version = (*version).max(t.version);
            }
            (_, Ok(Response::Routes { routes, .. })) => {
                let r = routes.into_iter().next()?;
                let leader = r.leader?;
                return Some(Send::Node(leader.endpoint, r.shard, r.version));
            }
            (_, Err(MetaError::NotLeader)) => self.meta = (self.meta + 1) % metas,
            _ => {}
        }
        None
    }
}

pub fn cluster_spec(shards: u32, followers: u32, topology: Topology) -> ClusterSpec {
    ClusterSpec {
        name: CLUSTER.into(),
        shard_count: shards,
        followers_per_shard: followers,
        topology,
        min_nodes: 2,
    }
}

//! Translation between the gRPC API and the core's types. Malformed messages become
//! `INVALID_ARGUMENT` with a message that says which field is wrong.

use tonic::Status;

use crate::core::error::quoted;
use crate::core::model::{Label, Topology};
use crate::core::*;
use crate::proto;

#[cfg(feature = "server")]
pub mod json;
mod requests;
mod scheduling;
pub use requests::CoreRequest;
pub use scheduling::*;

/// One gRPC status per error kind (see the table at the top of `proto/shardmeta.proto`).
/// The longest status message sent. Messages quote inputs only through `error::quoted`, so
/// none should come near this; the cap keeps a refusal readable even if one does (gRPC clients
/// drop a status trailer over 8-16 KiB and report a metadata error instead).
pub const STATUS_MESSAGE_BYTES_MAX: usize = 1_024;

pub fn status(e: MetaError) -> Status {
    let mut msg = e.to_string();
    if msg.len() > STATUS_MESSAGE_BYTES_MAX {
        msg = format!("{}... (cut)", crate::core::error::prefix(&msg, STATUS_MESSAGE_BYTES_MAX));
    }
    match e {
        MetaError::InvalidArgument(_) => Status::invalid_argument(msg),
        MetaError::NotFound(_) => Status::not_found(msg),
        MetaError::AlreadyExists(_) => Status::already_exists(msg),
        MetaError::FailedPrecondition(_) => Status::failed_precondition(msg),
        MetaError::NotLeader | MetaError::Unavailable(_) => Status::unavailable(msg),
        MetaError::DeadlineExceeded => Status::deadline_exceeded(msg),
        MetaError::ResourceExhausted(_) => Status::resource_exhausted(msg),
        MetaError::Aborted(_) => Status::aborted(msg),
    }
}

fn cluster_of(header: &Option<proto::RequestHeader>) -> Result<String, Status> {
    match header {
        Some(h) if !h.cluster.is_empty() => Ok(h.cluster.clone()),
        _ => {
            Err(Status::invalid_argument("the request names no cluster (header.cluster is empty)"))
        }
    }
}

fn role(r: i32, what: &str) -> Result<Role, Status> {
    match proto::ShardRole::try_from(r) {
        Ok(proto::ShardRole::Leader) => Ok(Role::Leader),
        Ok(proto::ShardRole::Follower) => Ok(Role::Follower),
        _ => Err(Status::invalid_argument(format!(
            "{what}: shard role {r} is neither leader nor follower"
        ))),
    }
}

fn proto_role(r: Role) -> i32 {
    match r {
        Role::Leader => proto::ShardRole::Leader as i32,
        Role::Follower => proto::ShardRole::Follower as i32,
    }
}

/// Load values from a node, clamped into range; counts what had to change.
#[derive(Default)]
struct Clamped(u32);

impl Clamped {
    fn value(&mut self, x: f64) -> f64 {
        let (v, ok) = validate::load_value(x);
        self.0 += !ok as u32;
        v
    }

    fn count(&mut self, x: u64) -> u64 {
        self.value(x as f64) as u64
    }

    /// A capacity: a load value at most [`validate::CAPACITY_MAX`].
    fn capacity(&mut self, x: f64) -> f64 {
        let v = self.value(x);
        self.0 += (v > validate::CAPACITY_MAX) as u32;
        v.min(validate::CAPACITY_MAX)
    }

    /// A duration in µs: above [`validate::MICROS_MAX`] (10 minutes) it is clamped.
    fn micros(&mut self, x: u32) -> u32 {
        self.0 += (x > validate::MICROS_MAX) as u32;
        x.min(validate::MICROS_MAX)
    }

    fn shard(&mut self, s: &proto::ShardReport, tables: &mut Vec<TableLoad>) -> ShardLoad {
        let Some(l) = &s.stats else {
            return ShardLoad { write_units: self.value(s.load), ..Default::default() };
        };
        for t in l.top_tables.iter().take(TOP_TABLES_PER_SHARD) {
            let (read_units, write_units) =
                (self.value(t.read_units_per_sec), self.value(t.write_units_per_sec));
            tables.push(TableLoad {
                shard: ShardId(s.id),
                table: TableId(t.table_id),
                read_units,
                write_units,
            });
        }
        ShardLoad {
            read_units: self.value(l.read_units_per_sec),
            write_units: self.value(l.write_units_per_sec),
            cpu_ms: self.value(l.cpu_ms_per_sec),
            bytes: self.count(l.approximate_bytes),
            rows: self.count(l.approximate_rows),
        }
    }
}

/// A heartbeat from a node. Load values out of range are clamped and counted in
/// `load_rejections` rather than refused: a heartbeat also renews leases, and refusing it for
/// a bad statistic would fail the node's shards over.
pub fn heartbeat(req: proto::HeartbeatRequest) -> Result<Heartbeat, Status> {
    let stats = req.stats.unwrap_or_default();
    let mut clamped = Clamped::default();
    let mut tables = Vec::new();
    let shards = req
        .shards
        .iter()
        .map(|s| {
            Ok(ShardReport {
                id: ShardId(s.id),
                role: role(s.role, &format!("shard report {}", s.id))?,
                version: Version(s.version),
                status: if s.status == proto::ShardStatus::Ready as i32 {
                    ReplicaStatus::Ready
                } else {
                    ReplicaStatus::Opening
                },
                load: clamped.shard(s, &mut tables),
                lag: s.lagging.then_some(s.lag_entries),
            })
        })
        .collect::<Result<Vec<_>, Status>>()?;
    let stats = NodeStats {
        cpu: clamped.value(stats.cpu),
        load: clamped.value(stats.load),
        read_units: clamped.count(stats.read_units),
        write_units: clamped.count(stats.write_units),
        table_count: stats.table_count,
        shard_count: stats.shard_count,
        read_bytes_per_sec: clamped.count(stats.read_bytes_per_sec),
        write_bytes_per_sec: clamped.count(stats.write_bytes_per_sec),
        capacity: clamped.capacity(stats.capacity),
        stats_sample: stats.stats_sample,
        heartbeat_rtt_us: clamped.micros(stats.heartbeat_rtt_us),
        request_latency_us: clamped.micros(stats.request_latency_us),
        disk_capacity_bytes: clamped.count(stats.disk_capacity_bytes),
        disk_used_bytes: clamped.count(stats.disk_used_bytes),
    };
    Ok(Heartbeat {
        cluster: cluster_of(&req.header)?,
        node: req.node_name,
        endpoint: req.endpoint,
        zone: req.zone,
        // By key, each once: the map is ordered.
        labels: req.labels.into_iter().map(|(key, value)| Label { key, value }).collect(),
        incarnation: req.incarnation,
        seq: req.seq,
        stats,
        shards,
        tables,
        load_rejections: clamped.0,
        leaving: req.leaving,
    })
}

pub fn node_message(m: &NodeMessage) -> proto::HeartbeatResponse {
    proto::HeartbeatResponse {
        term: m.term.0,
        epoch: m.epoch.0,
        lease: m.lease.as_ref().map(|g| proto::LeaseGrant {
            seq: g.seq,
            duration_ms: g.duration_ms as u32,
            revoked: g.revoked.iter().map(|s| s.0).collect(),
        }),
        commands: m.commands.iter().map(command).collect(),
        redirect: String::new(),
        redirect_term: 0,
        heartbeat_interval_ms: m.heartbeat_interval_ms as u32,
    }
}

fn command(c: &ShardCommand) -> proto::ShardCommand {
    use proto::shard_command::Kind;
    let kind = match &c.kind {
        CommandKind::Open { role, tables } => Kind::Open(proto::OpenShard {
            role: proto_role(*role),
            table_ids: tables.iter().map(|t| t.0).collect(),
        }),
        CommandKind::Close => Kind::Close(proto::CloseShard {}),
        CommandKind::ChangeRole { role } => {
            Kind::ChangeRole(proto::ChangeRole { role: proto_role(*role) })
        }
        CommandKind::CreateTable { table } => {
            Kind::CreateTable(proto::CreateTableOnShard { table_id: table.0 })
        }
        CommandKind::DropTable { tables } => {
            let (first, more) = tables.split_first().expect("a drop names a table");
            Kind::DropTable(proto::DropTableOnShard {
                table_id: first.0,
                more_table_ids: more.iter().map(|t| t.0).collect(),
            })
        }
        CommandKind::AlterTable { table, table_version } => {
            Kind::AlterTable(proto::AlterTableOnShard {
                table_id: table.0,
                table_version: *table_version,
            })
        }
    };
    proto::ShardCommand { shard: c.shard.0, version: c.version.0, term: c.term.0, kind: Some(kind) }
}

/// The node side: a heartbeat response back into the core's message type.
pub fn from_node_message(r: &proto::HeartbeatResponse) -> Result<NodeMessage, Status> {
    use proto::shard_command::Kind;
    let commands = r
        .commands
        .iter()
        .map(|c| {
            let kind = match c
                .kind
                .as_ref()
                .ok_or_else(|| Status::invalid_argument("a shard command without a kind"))?
            {
                Kind::Open(o) => CommandKind::Open {
                    role: role(o.role, "open")?,
                    tables: o.table_ids.iter().map(|&t| TableId(t)).collect(),
                },
                Kind::Close(_) => CommandKind::Close,
                Kind::ChangeRole(o) => {
                    CommandKind::ChangeRole { role: role(o.role, "change role")? }
                }
                Kind::CreateTable(o) => CommandKind::CreateTable { table: TableId(o.table_id) },
                Kind::DropTable(o) => CommandKind::DropTable {
                    tables: std::iter::once(o.table_id)
                        .chain(o.more_table_ids.iter().copied())
                        .map(TableId)
                        .collect(),
                },
                Kind::AlterTable(o) => CommandKind::AlterTable {
                    table: TableId(o.table_id),
                    table_version: o.table_version,
                },
            };
            Ok(ShardCommand {
                shard: ShardId(c.shard),
                version: Version(c.version),
                term: Term(c.term),
                kind,
            })
        })
        .collect::<Result<Vec<_>, Status>>()?;
    Ok(NodeMessage {
        term: Term(r.term),
        epoch: Epoch(r.epoch),
        lease: r.lease.as_ref().map(|g| LeaseGrant {
            seq: g.seq,
            duration_ms: g.duration_ms as u64,
            revoked: g.revoked.iter().map(|&s| ShardId(s)).collect(),
        }),
        commands,
        heartbeat_interval_ms: r.heartbeat_interval_ms as u64,
    })
}

pub fn topology(t: i32) -> Result<Topology, Status> {
    match proto::TopologyMode::try_from(t) {
        Ok(proto::TopologyMode::Dynamic) | Ok(proto::TopologyMode::Unspecified) => {
            Ok(Topology::Dynamic)
        }
        Ok(proto::TopologyMode::Static) => Ok(Topology::Static),
        Err(_) => Err(Status::invalid_argument(format!("topology mode {t} is unknown"))),
    }
}

pub fn cluster_info(c: &ClusterInfo) -> proto::ClusterInfo {
    proto::ClusterInfo {
        id: c.id.0,
        name: c.name.clone(),
        shard_count: c.shard_count,
        followers_per_shard: c.followers_per_shard,
        mode: match c.topology {
            Topology::Dynamic => proto::TopologyMode::Dynamic as i32,
            Topology::Static => proto::TopologyMode::Static as i32,
        },
        min_nodes: c.min_nodes,
        epoch: c.epoch.0,
    }
}

pub fn table_info(t: &TableInfo) -> proto::TableInfo {
    proto::TableInfo {
        id: t.id.0,
        schema: t.schema.clone(),
        name: t.name.clone(),
        shard: t.shard.0,
        sub_tables: t.sub_tables.iter().map(|s| s.0).collect(),
    }
}

pub fn table_detail(t: &TableDetail) -> proto::TableDetail {
    proto::TableDetail {
        info: Some(table_info(&t.info)),
        version: t.version,
        encoded_schema: t.encoded_schema.clone(),
        options: t.options.clone().into_iter().collect(),
        partition_rule: t.partition_rule.clone().unwrap_or_default(),
        parent: t.parent.map_or(0, |p| p.0),
    }
}

fn endpoint(e: &Endpoint) -> proto::NodeEndpoint {
    proto::NodeEndpoint { name: e.name.clone(), endpoint: e.endpoint.clone() }
}

pub fn route_update(u: &RouteUpdate) -> proto::WatchRoutesResponse {
    use proto::route_change::Kind;
    let change = |c: &RouteChange| {
        let kind = match c {
            RouteChange::Table { schema, name, id, shard } => {
                Kind::Table(proto::TableRouteChange {
                    schema: schema.clone(),
                    name: name.clone(),
                    id: id.0,
                    shard: shard.0,
                })
            }
            RouteChange::TableDropped { schema, name, id } => {
                Kind::Dropped(proto::TableDroppedChange {
                    schema: schema.clone(),
                    name: name.clone(),
                    id: id.0,
                })
            }
            RouteChange::Shard { shard, version, leader, followers } => {
                Kind::Shard(proto::ShardRouteChange {
                    shard: shard.0,
                    version: version.0,
                    leader: leader.as_ref().map(endpoint),
                    followers: followers.iter().map(endpoint).collect(),
                })
            }
        };
        proto::RouteChange { kind: Some(kind) }
    };
    proto::WatchRoutesResponse {
        revision: u.revision,
        resync: u.resync,
        changes: u.changes.iter().map(change).collect(),
    }
}

pub fn watch_routes(req: proto::WatchRoutesRequest) -> Result<WatchRoutes, Status> {
    Ok(WatchRoutes {
        cluster: cluster_of(&req.header)?,
        schema: (!req.schema.is_empty()).then_some(req.schema),
        from_revision: req.from_revision,
    })
}

pub fn route(r: &TableRoute) -> proto::TableRoute {
    proto::TableRoute {
        table: r.table.clone(),
        table_id: r.table_id.0,
        shard: r.shard.0,
        version: r.version.0,
        leader: r.leader.as_ref().map(endpoint),
        followers: r.followers.iter().map(endpoint).collect(),
    }
}

pub fn node_info(n: &NodeInfo) -> proto::NodeInfo {
    let s = &n.stats;
    proto::NodeInfo {
        name: n.name.clone(),
        endpoint: n.endpoint.clone(),
        zone: n.zone.clone(),
        state: match n.state {
            NodeState::Online => proto::NodeState::Online as i32,
            NodeState::Offline => proto::NodeState::Offline as i32,
        },
        shards: n.shards,
        draining: n.draining,
        replicas: n.replicas,
        stats: Some(node_stats(s)),
        load_rejections: n.load_rejections,
        admitted: n.admitted,
        slow: n.slow,
        slow_marked: n.slow_marked,
        labels: n.labels.iter().map(|l| (l.key.clone(), l.value.clone())).collect(),
        restart: n.restart.as_ref().map(|r| proto::NodeRestart {
            phase: r.phase.to_owned(),
            window_ms: r.window_ms,
            leaders: r.leaders,
            led_again: r.led_again,
        }),
    }
}

fn node_stats(s: &NodeStats) -> proto::NodeStats {
    proto::NodeStats {
        cpu: s.cpu,
        load: s.load,
        read_units: s.read_units,
        write_units: s.write_units,
        table_count: s.table_count,
        shard_count: s.shard_count,
        read_bytes_per_sec: s.read_bytes_per_sec,
        write_bytes_per_sec: s.write_bytes_per_sec,
        capacity: s.capacity,
        stats_sample: s.stats_sample,
        heartbeat_rtt_us: s.heartbeat_rtt_us,
        request_latency_us: s.request_latency_us,
        disk_capacity_bytes: s.disk_capacity_bytes,
        disk_used_bytes: s.disk_used_bytes,
    }
}

/// The gRPC form of a heartbeat, as a data node sends it (the inverse of [`heartbeat`]).
pub fn heartbeat_request(hb: &Heartbeat) -> proto::HeartbeatRequest {
    let mut tables: std::collections::BTreeMap<ShardId, Vec<proto::TableLoad>> = Default::default();
    for t in &hb.tables {
        let table = proto::TableLoad {
            table_id: t.table.0,
            read_units_per_sec: t.read_units,
            write_units_per_sec: t.write_units,
        };
        tables.entry(t.shard).or_default().push(table);
    }
    proto::HeartbeatRequest {
        header: Some(proto::RequestHeader { cluster: hb.cluster.clone() }),
        node_name: hb.node.clone(),
        endpoint: hb.endpoint.clone(),
        zone: hb.zone.clone(),
        labels: hb.labels.iter().map(|l| (l.key.clone(), l.value.clone())).collect(),
        incarnation: hb.incarnation,
        seq: hb.seq,
        leaving: hb.leaving,
        stats: Some(node_stats(&hb.stats)),
        shards: hb
            .shards
            .iter()
            .map(|r| proto::ShardReport {
                id: r.id.0,
                role: proto_role(r.role),
                version: r.version.0,
                status: match r.status {
                    ReplicaStatus::Ready => proto::ShardStatus::Ready as i32,
                    ReplicaStatus::Opening => proto::ShardStatus::Opening as i32,
                },
                load: 0.0,
                stats: Some(proto::ShardLoad {
                    read_units_per_sec: r.load.read_units,
                    write_units_per_sec: r.load.write_units,
                    cpu_ms_per_sec: r.load.cpu_ms,
                    approximate_bytes: r.load.bytes,
                    approximate_rows: r.load.rows,
                    top_tables: tables.remove(&r.id).unwrap_or_default(),
                }),
                lagging: r.lag.is_some(),
                lag_entries: r.lag.unwrap_or(0),
            })
            .collect(),
    }
}

pub fn shard_info(s: &ShardInfo) -> proto::ShardInfo {
    proto::ShardInfo {
        id: s.id.0,
        version: s.version.0,
        leader: s.leader.clone().unwrap_or_default(),
        followers: s.followers.clone(),
        status: match s.status {
            ShardStatus::Unassigned => proto::ShardStatus::Unassigned,
            ShardStatus::Opening => proto::ShardStatus::Opening,
            ShardStatus::Ready => proto::ShardStatus::Ready,
            ShardStatus::Transferring => proto::ShardStatus::Transferring,
            ShardStatus::Offline => proto::ShardStatus::Offline,
            ShardStatus::Retired => proto::ShardStatus::Retired,
        } as i32,
        tables: s.tables,
        read_units_per_sec: s.load.read_units,
        write_units_per_sec: s.load.write_units,
        cpu_ms_per_sec: s.load.cpu_ms,
        load_windows: s.load_windows,
        busiest_tables: s
            .busiest
            .iter()
            .map(|t| proto::TableLoad {
                table_id: t.table.0,
                read_units_per_sec: t.read_units,
                write_units_per_sec: t.write_units,
            })
            .collect(),
        lagging: s.lagging.iter().cloned().collect(),
    }
}

/// Which listing a page token belongs to: a token handed to another listing is refused rather
/// than silently starting it somewhere.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Listing {
    Clusters,
    Nodes,
    Shards,
    Tables,
}

impl Listing {
    fn tag(self) -> &'static str {
        match self {
            Listing::Clusters => "c",
            Listing::Nodes => "n",
            Listing::Shards => "s",
            Listing::Tables => "t",
        }
    }
}

/// Page tokens are opaque to clients: `{listing}1.{last id in hex}`.
pub fn page(listing: Listing, size: u32, token: &str) -> Result<PageRequest, Status> {
    if token.is_empty() {
        return Ok(PageRequest { size, after: None });
    }
    let after = token
        .strip_prefix(listing.tag())
        .and_then(|t| t.strip_prefix("1."))
        .filter(|hex| hex.len() <= 16)
        .and_then(|hex| u64::from_str_radix(hex, 16).ok())
        .ok_or_else(|| {
            Status::invalid_argument(format!(
                "page_token {token} is not a token of this listing",
                token = quoted(token)
            ))
        })?;
    Ok(PageRequest { size, after: Some(after) })
}

pub fn next_page_token<T>(listing: Listing, page: &Page<T>) -> String {
    page.next.map(|last| format!("{}1.{last:x}", listing.tag())).unwrap_or_default()
}

#[cfg(test)]
mod page_token_tests {
    use super::*;

    #[test]
    fn a_token_round_trips_and_is_bound_to_its_listing() {
        let token =
            next_page_token(Listing::Tables, &Page::<()> { items: vec![], next: Some(0xabc) });
        assert_eq!(
            page(Listing::Tables, 5, &token).unwrap(),
            PageRequest { size: 5, after: Some(0xabc) }
        );
        assert_eq!(
            page(Listing::Nodes, 5, &token).unwrap_err().code(),
            tonic::Code::InvalidArgument
        );
        for bad in ["x", "t1.", "t1.zz", "t1.11111111111111111"] {
            assert!(page(Listing::Tables, 0, bad).is_err(), "{bad}");
        }
        assert_eq!(next_page_token(Listing::Tables, &Page::<()> { items: vec![], next: None }), "");
    }

    /// A node's bad load figures are clamped and counted, never trusted, and never refuse the
    /// heartbeat (which also renews the node's leases).
    #[test]
    fn bad_load_values_are_clamped_and_counted() {
        let stats = proto::ShardLoad {
            read_units_per_sec: f64::NAN,
            write_units_per_sec: -3.0,
            cpu_ms_per_sec: f64::INFINITY,
            approximate_bytes: u64::MAX,
            approximate_rows: 10,
            top_tables: (0..20)
                .map(|t| proto::TableLoad {
                    table_id: t,
                    read_units_per_sec: 1.0,
                    write_units_per_sec: 2.0,
                })
                .collect(),
        };
        let req = proto::HeartbeatRequest {
            header: Some(proto::RequestHeader { cluster: "c".into() }),
            node_name: "n1".into(),
            shards: vec![proto::ShardReport {
                id: 1,
                role: proto::ShardRole::Leader as i32,
                version: 1,
                stats: Some(stats),
                ..Default::default()
            }],
            stats: Some(proto::NodeStats { capacity: f64::NAN, ..Default::default() }),
            ..Default::default()
        };
        let hb = heartbeat(req).unwrap();
        let load = hb.shards[0].load;
        assert_eq!(
            (load.read_units, load.write_units, load.cpu_ms, load.rows),
            (0.0, 0.0, validate::LOAD_VALUE_MAX, 10)
        );
        assert_eq!(load.bytes, validate::LOAD_VALUE_MAX as u64);
        assert_eq!(hb.load_rejections, 5, "read, write, cpu, bytes and the node's capacity");
        assert_eq!(hb.tables.len(), TOP_TABLES_PER_SHARD, "the busiest-table list is bounded");
        assert_eq!(hb.stats.capacity(), 1.0);
        let back = heartbeat(heartbeat_request(&hb)).unwrap();
        assert_eq!((back.shards, back.tables), (hb.shards, hb.tables), "the gRPC form round-trips");
    }
}

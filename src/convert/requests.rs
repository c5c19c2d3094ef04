//! Each gRPC request as the core's [`Request`]: every proto-to-core request is built here, and
//! a malformed one is refused with a status that says what was wrong. (Heartbeats and route
//! watches are streams, built by [`super::heartbeat`] and [`super::watch_routes`].)

use tonic::Status;

use super::{cluster_of, page, settings_from_proto, topology, Listing};
use crate::core::*;
use crate::proto;

/// A gRPC request that the core answers.
pub trait CoreRequest {
    fn to_core(self) -> Result<Request, Status>;
}

/// The schema a request names; none means `public`.
fn schema_or_public(schema: String) -> String {
    if schema.is_empty() {
        "public".into()
    } else {
        schema
    }
}

impl CoreRequest for proto::CreateClusterRequest {
    fn to_core(self) -> Result<Request, Status> {
        Ok(Request::CreateCluster(ClusterSpec {
            name: self.name,
            shard_count: self.shard_count,
            followers_per_shard: self.followers_per_shard,
            topology: topology(self.mode)?,
            min_nodes: self.min_nodes.max(1),
        }))
    }
}

impl CoreRequest for proto::ListClustersRequest {
    fn to_core(self) -> Result<Request, Status> {
        Ok(Request::ListClusters {
            page: page(Listing::Clusters, self.page_size, &self.page_token)?,
        })
    }
}

impl CoreRequest for proto::ClusterViewRequest {
    fn to_core(self) -> Result<Request, Status> {
        Ok(Request::ClusterView { cluster: cluster_of(&self.header)? })
    }
}

impl CoreRequest for proto::DropClusterRequest {
    fn to_core(self) -> Result<Request, Status> {
        Ok(Request::DropCluster { cluster: cluster_of(&self.header)?, force: self.force })
    }
}

impl CoreRequest for proto::CreateSchemaRequest {
    fn to_core(self) -> Result<Request, Status> {
        Ok(Request::CreateSchema {
            cluster: cluster_of(&self.header)?,
            name: self.name,
            if_not_exists: self.if_not_exists,
        })
    }
}

impl CoreRequest for proto::DropSchemaRequest {
    fn to_core(self) -> Result<Request, Status> {
        Ok(Request::DropSchema {
            cluster: cluster_of(&self.header)?,
            name: self.name,
            cascade: self.cascade,
        })
    }
}

impl CoreRequest for proto::CreateTableRequest {
    fn to_core(self) -> Result<Request, Status> {
        Ok(Request::CreateTable(CreateTable {
            cluster: cluster_of(&self.header)?,
            schema: schema_or_public(self.schema),
            name: self.name,
            encoded_schema: self.encoded_schema,
            options: self.options,
            if_not_exists: self.if_not_exists,
            partition: self
                .partition
                .map(|p| PartitionSpec { partition_count: p.partition_count, encoded: p.encoded }),
        }))
    }
}

impl CoreRequest for proto::DropTableRequest {
    fn to_core(self) -> Result<Request, Status> {
        let schema = schema_or_public(self.schema);
        Ok(Request::DropTable { cluster: cluster_of(&self.header)?, schema, name: self.name })
    }
}

impl CoreRequest for proto::AlterTableRequest {
    fn to_core(self) -> Result<Request, Status> {
        Ok(Request::AlterTable(AlterTable {
            cluster: cluster_of(&self.header)?,
            schema: schema_or_public(self.schema),
            name: self.name,
            expected_version: self.expected_version,
            encoded_schema: self.encoded_schema,
            options: self.options.map(|o| o.entries),
        }))
    }
}

impl CoreRequest for proto::RouteTablesRequest {
    fn to_core(self) -> Result<Request, Status> {
        let schema = schema_or_public(self.schema);
        Ok(Request::RouteTables { cluster: cluster_of(&self.header)?, schema, tables: self.tables })
    }
}

impl CoreRequest for proto::GetTablesRequest {
    fn to_core(self) -> Result<Request, Status> {
        let schema = schema_or_public(self.schema);
        Ok(Request::GetTables { cluster: cluster_of(&self.header)?, schema, tables: self.tables })
    }
}

impl CoreRequest for proto::GetTableRequest {
    fn to_core(self) -> Result<Request, Status> {
        let schema = schema_or_public(self.schema);
        Ok(Request::GetTables {
            cluster: cluster_of(&self.header)?,
            schema,
            tables: vec![self.table],
        })
    }
}

impl CoreRequest for proto::ListNodesRequest {
    fn to_core(self) -> Result<Request, Status> {
        Ok(Request::ListNodes {
            cluster: cluster_of(&self.header)?,
            page: page(Listing::Nodes, self.page_size, &self.page_token)?,
        })
    }
}

impl CoreRequest for proto::DrainNodeRequest {
    fn to_core(self) -> Result<Request, Status> {
        Ok(Request::DrainNode {
            cluster: cluster_of(&self.header)?,
            node: self.node,
            cancel: self.cancel,
        })
    }
}

impl CoreRequest for proto::MarkNodeSlowRequest {
    fn to_core(self) -> Result<Request, Status> {
        Ok(Request::MarkNodeSlow {
            cluster: cluster_of(&self.header)?,
            node: self.node,
            slow: !self.unmark,
        })
    }
}

impl CoreRequest for proto::RestartNodeRequest {
    fn to_core(self) -> Result<Request, Status> {
        Ok(Request::RestartNode {
            cluster: cluster_of(&self.header)?,
            node: self.node,
            end: self.end,
            window_ms: self.window_ms,
        })
    }
}

impl CoreRequest for proto::RemoveNodeRequest {
    fn to_core(self) -> Result<Request, Status> {
        Ok(Request::RemoveNode { cluster: cluster_of(&self.header)?, node: self.node })
    }
}

impl CoreRequest for proto::SchedulerStatusRequest {
    fn to_core(self) -> Result<Request, Status> {
        Ok(Request::SchedulerStatus { cluster: cluster_of(&self.header)? })
    }
}

impl CoreRequest for proto::SetSchedulerRequest {
    fn to_core(self) -> Result<Request, Status> {
        Ok(Request::SetScheduler {
            cluster: cluster_of(&self.header)?,
            settings: settings_from_proto(self.settings)?,
        })
    }
}

impl CoreRequest for proto::GetPlacementRequest {
    fn to_core(self) -> Result<Request, Status> {
        Ok(Request::GetPlacement { cluster: cluster_of(&self.header)? })
    }
}

impl CoreRequest for proto::SetPlacementRequest {
    fn to_core(self) -> Result<Request, Status> {
        let rule = self.rule.ok_or_else(|| Status::invalid_argument("the rule is missing"))?;
        Ok(Request::SetPlacement {
            cluster: cluster_of(&self.header)?,
            rule: super::scheduling::rule_from_proto(rule),
            expected_version: self.expected_version,
        })
    }
}

impl CoreRequest for proto::WhatIfRequest {
    fn to_core(self) -> Result<Request, Status> {
        use proto::what_if_request::Change;
        let change = match self.change {
            Some(Change::Drain(n)) => WhatIf::Drain(n),
            Some(Change::Remove(n)) => WhatIf::Remove(n),
            Some(Change::RestartBegin(n)) => WhatIf::RestartBegin(n),
            Some(Change::Placement(r)) => WhatIf::Placement(super::scheduling::rule_from_proto(r)),
            Some(Change::LoseZone(z)) => WhatIf::LoseZone(z),
            None => return Err(Status::invalid_argument("the change to rehearse is missing")),
        };
        Ok(Request::WhatIf { cluster: cluster_of(&self.header)?, change })
    }
}

impl CoreRequest for proto::PlanSchedulerRequest {
    fn to_core(self) -> Result<Request, Status> {
        Ok(Request::PlanScheduler { cluster: cluster_of(&self.header)? })
    }
}

impl CoreRequest for proto::ListEventsRequest {
    fn to_core(self) -> Result<Request, Status> {
        Ok(Request::ListEvents {
            cluster: cluster_of(&self.header)?,
            after: self.after,
            limit: self.limit,
        })
    }
}

impl CoreRequest for proto::MoveShardRequest {
    fn to_core(self) -> Result<Request, Status> {
        let cluster = cluster_of(&self.header)?;
        Ok(Request::MoveShard {
            cluster,
            shard: ShardId(self.shard),
            node: self.node,
            reopen: self.reopen,
        })
    }
}

impl CoreRequest for proto::SplitShardRequest {
    fn to_core(self) -> Result<Request, Status> {
        let cluster = cluster_of(&self.header)?;
        Ok(Request::SplitShard {
            cluster,
            shard: ShardId(self.shard),
            tables: self.tables.into_iter().map(TableId).collect(),
        })
    }
}

impl CoreRequest for proto::MergeShardsRequest {
    fn to_core(self) -> Result<Request, Status> {
        let cluster = cluster_of(&self.header)?;
        Ok(Request::MergeShards { cluster, shards: [ShardId(self.shard), ShardId(self.other)] })
    }
}

impl CoreRequest for proto::ListProceduresRequest {
    fn to_core(self) -> Result<Request, Status> {
        Ok(Request::ListProcedures { cluster: cluster_of(&self.header)? })
    }
}

impl CoreRequest for proto::CancelProcedureRequest {
    fn to_core(self) -> Result<Request, Status> {
        Ok(Request::CancelProcedure { cluster: cluster_of(&self.header)?, id: self.id })
    }
}

impl CoreRequest for proto::ListShardsRequest {
    fn to_core(self) -> Result<Request, Status> {
        Ok(Request::ListShards {
            cluster: cluster_of(&self.header)?,
            page: page(Listing::Shards, self.page_size, &self.page_token)?,
        })
    }
}

impl CoreRequest for proto::ListTablesRequest {
    fn to_core(self) -> Result<Request, Status> {
        let schema = (!self.schema.is_empty()).then_some(self.schema);
        let page = page(Listing::Tables, self.page_size, &self.page_token)?;
        Ok(Request::ListTables { cluster: cluster_of(&self.header)?, schema, page })
    }
}

//! How a [`Mutation`] is stored: the key it writes and the value encoded there, and the way
//! back from a stored pair.

use prost::Message;

use super::batch::Op;
use super::keys::Key;
use crate::core::ids::{ClusterId, Epoch};
use crate::core::model::records::*;
use crate::core::model::{DecodeError, Mutation, PlacementRecord};

impl Mutation {
    /// The key it writes or deletes (for a cluster's drop, the prefix of its data).
    pub fn key(&self) -> Key {
        match self {
            Mutation::PutCluster(r) => Key::Cluster(ClusterId(r.id)),
            Mutation::DeleteClusterData(c) => Key::ClusterData(*c),
            Mutation::PutEpoch(c, _) => Key::Epoch(*c),
            Mutation::PutIdCeiling(c, _) => Key::IdCeiling(*c),
            Mutation::PutScheduler(c, _) => Key::Scheduler(*c),
            Mutation::PutPlacement(c, _) => Key::Placement(*c),
            Mutation::PutSchema(c, r) => Key::Schema(*c, r.id),
            Mutation::DeleteSchema(c, id) => Key::Schema(*c, *id),
            Mutation::PutTable(c, r) => Key::Table(*c, r.id),
            Mutation::DeleteTable(c, t) => Key::Table(*c, t.0),
            Mutation::PutShard(c, r) => Key::Shard(*c, r.id),
            Mutation::PutNode(c, r) => Key::Node(*c, r.id),
            Mutation::PutProcedure(c, r) => Key::Procedure(*c, r.id),
            Mutation::DeleteProcedure(c, id) => Key::Procedure(*c, *id),
        }
    }

    /// The storage op that makes it durable.
    pub fn to_op(&self) -> Op {
        let key = self.key().encode();
        let value = match self {
            Mutation::DeleteTable(..)
            | Mutation::DeleteProcedure(..)
            | Mutation::DeleteSchema(..) => return Op::Delete { key },
            Mutation::DeleteClusterData(..) => return Op::DeletePrefix { prefix: key },
            Mutation::PutCluster(r) => r.encode_to_vec(),
            Mutation::PutEpoch(_, e) => CounterRecord { value: e.0 }.encode_to_vec(),
            Mutation::PutIdCeiling(_, v) => CounterRecord { value: *v }.encode_to_vec(),
            Mutation::PutScheduler(_, r) => r.encode_to_vec(),
            Mutation::PutPlacement(_, r) => r.encode_to_vec(),
            Mutation::PutSchema(_, r) => r.encode_to_vec(),
            Mutation::PutTable(_, r) => r.encode_to_vec(),
            Mutation::PutShard(_, r) => r.encode_to_vec(),
            Mutation::PutNode(_, r) => r.encode_to_vec(),
            Mutation::PutProcedure(_, r) => r.encode_to_vec(),
        };
        Op::Put { key, value }
    }

    /// Reads one stored key-value pair. Keys outside the schema are an error: storage under our
    /// root holds nothing else.
    pub fn decode(key: &str, value: &[u8]) -> Result<Mutation, DecodeError> {
        let parsed = Key::decode(key).ok_or_else(|| DecodeError(format!("unknown key {key:?}")))?;
        let bad = |e: prost::DecodeError| DecodeError(format!("{key}: {e}"));
        Ok(match parsed {
            Key::Cluster(c) => {
                let r = ClusterRecord::decode(value).map_err(bad)?;
                if r.id != c.0 {
                    return Err(DecodeError(format!("{key}: record names cluster {}", r.id)));
                }
                Mutation::PutCluster(r)
            }
            Key::Epoch(c) => {
                Mutation::PutEpoch(c, Epoch(CounterRecord::decode(value).map_err(bad)?.value))
            }
            Key::IdCeiling(c) => {
                Mutation::PutIdCeiling(c, CounterRecord::decode(value).map_err(bad)?.value)
            }
            Key::Scheduler(c) => {
                Mutation::PutScheduler(c, SchedulerRecord::decode(value).map_err(bad)?)
            }
            Key::Placement(c) => {
                Mutation::PutPlacement(c, PlacementRecord::decode(value).map_err(bad)?)
            }
            Key::Schema(c, id) => Mutation::PutSchema(
                c,
                checked(key, id, SchemaRecord::decode(value).map_err(bad)?, |r| r.id)?,
            ),
            Key::Table(c, id) => Mutation::PutTable(
                c,
                checked(key, id, TableRecord::decode(value).map_err(bad)?, |r| r.id)?,
            ),
            Key::Shard(c, id) => Mutation::PutShard(
                c,
                checked(key, id as u64, ShardRecord::decode(value).map_err(bad)?, |r| r.id as u64)?,
            ),
            Key::Node(c, id) => Mutation::PutNode(
                c,
                checked(key, id as u64, NodeRecord::decode(value).map_err(bad)?, |r| r.id as u64)?,
            ),
            Key::Procedure(c, id) => Mutation::PutProcedure(
                c,
                checked(key, id, ProcedureRecord::decode(value).map_err(bad)?, |r| r.id)?,
            ),
            Key::ClusterData(_) => unreachable!("Key::decode never names a prefix"),
        })
    }
}

fn checked<R>(key: &str, id: u64, record: R, id_of: impl Fn(&R) -> u64) -> Result<R, DecodeError> {
    if id_of(&record) != id {
        return Err(DecodeError(format!("{key}: record carries id {}", id_of(&record))));
    }
    Ok(record)
}

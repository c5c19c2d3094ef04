//! Loading what storage holds into a [`Catalog`], page by page. A store reads the key ranges of
//! [`SNAPSHOT_PREFIXES`] in that order (all at one point in time), in pages of any size, and
//! hands every pair to [`SnapshotLoader::feed`], which decodes it straight into the catalog. No
//! second copy of the catalog (raw pairs, a list of decoded records) is ever held, so loading a
//! million tables needs the memory of the catalog plus one page.
//!
//! The order is what makes one pass enough: the fence first, then every cluster record, then
//! each cluster's contents, whose keys sort epoch, id ceiling, nodes, schemas, shards, tables:
//! nodes before the shards that name them, schemas before the tables in them. Tables, the bulk
//! of any catalog, arrive in id order and are gathered per cluster, then indexed at once.

use super::keys::{Key, CLUSTERS_PREFIX, CLUSTER_DATA_PREFIX, FENCE_KEY};
use crate::core::error::quoted;
use crate::core::ids::{ClusterId, TableId};
use crate::core::model::{Catalog, Table, TableRecord};
use crate::core::model::{DecodeError, Mutation};

/// The key ranges of a snapshot, each a prefix, in the order they must be read.
pub const SNAPSHOT_PREFIXES: [&str; 3] = [FENCE_KEY, CLUSTERS_PREFIX, CLUSTER_DATA_PREFIX];

/// Everything a new leader starts from: the catalog and the write chain's fence value.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Snapshot {
    /// What storage holds, decoded and indexed.
    pub catalog: Catalog,
    /// The fence record's value; `None` while nothing was ever written.
    pub fence: Option<Vec<u8>>,
}

impl Snapshot {
    /// Loads pairs that are all in memory already, in any order (tests, checkers, fuzzing).
    /// A key under none of [`SNAPSHOT_PREFIXES`] is an error.
    pub fn load<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a [u8])>,
    ) -> Result<Snapshot, DecodeError> {
        // Pairs read from a store are in key order already, which makes this sort linear.
        let mut sorted: Vec<(&str, &[u8])> = pairs.into_iter().collect();
        sorted.sort_by_key(|(k, _)| *k);
        if let Some(w) = sorted.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(DecodeError(format!("key {:?} given twice", w[0].0)));
        }
        if let Some((k, _)) =
            sorted.iter().find(|(k, _)| !SNAPSHOT_PREFIXES.iter().any(|p| k.starts_with(p)))
        {
            return Err(DecodeError(format!("unknown key {k}", k = quoted(k))));
        }
        let mut loader = SnapshotLoader::default();
        for prefix in SNAPSHOT_PREFIXES {
            let from = sorted.partition_point(|(k, _)| *k < prefix);
            for (k, v) in sorted[from..].iter().take_while(|(k, _)| k.starts_with(prefix)) {
                loader.feed(k, v)?;
            }
        }
        loader.finish()
    }

    /// Applies one transaction a store reported after this snapshot was read: its changes, each
    /// a put of a key with its value or, with `None`, the key's deletion, in any order. A
    /// standby keeps its snapshot current this way, transaction by transaction in the store's
    /// order, so that it can lead without a full load.
    ///
    /// The changes are applied in the order a load reads them (the fence, cluster records, then
    /// each cluster's contents by key), which puts whatever a change names before it: a
    /// transaction that creates a cluster writes its id ceiling, whose key sorts first, before
    /// the cluster record. Only tables, schemas, procedures and everything inside a dropped
    /// cluster (after its tombstone) are ever deleted; any other deletion, or a key outside the
    /// snapshot, is something the core never writes.
    pub fn apply_transaction<'a>(
        &mut self,
        changes: impl IntoIterator<Item = (&'a str, Option<&'a [u8]>)>,
    ) -> Result<(), DecodeError> {
        let mut ranked = Vec::new();
        for (key, value) in changes {
            let Some(rank) = SNAPSHOT_PREFIXES.iter().position(|p| key.starts_with(p)) else {
                return Err(DecodeError(format!("unknown key {key:?}")));
            };
            ranked.push((rank, key, value));
        }
        ranked.sort_unstable_by_key(|&(rank, key, _)| (rank, key));
        for (_, key, value) in ranked {
            self.apply_change(key, value)?;
        }
        Ok(())
    }

    fn apply_change(&mut self, key: &str, value: Option<&[u8]>) -> Result<(), DecodeError> {
        if key == FENCE_KEY {
            self.fence = value.map(<[u8]>::to_vec);
            return Ok(());
        }
        let change = match (value, Key::decode(key)) {
            (Some(value), _) => Mutation::decode(key, value)?,
            // A dropped cluster's range delete: its tombstone, which sorts first, removed it.
            (None, Some(k)) if self.catalog.dropped_clusters.contains(&k.cluster()) => {
                return Ok(())
            }
            (None, Some(Key::Table(c, id))) => Mutation::DeleteTable(c, TableId(id)),
            (None, Some(Key::Procedure(c, id))) => Mutation::DeleteProcedure(c, id),
            (None, Some(Key::Schema(c, id))) => Mutation::DeleteSchema(c, id),
            (None, _) => {
                return Err(DecodeError(format!(
                    "{key} was deleted, but only tables, schemas and procedures ever are"
                )))
            }
        };
        self.catalog.apply(change)
    }
}

/// Decodes a snapshot as it arrives. Feed every pair of each range of [`SNAPSHOT_PREFIXES`], in
/// range order and key order within a range, then [`finish`](Self::finish).
#[derive(Default)]
pub struct SnapshotLoader {
    snapshot: Snapshot,
    /// Tables decoded so far, per cluster in the order they came.
    tables: Vec<(ClusterId, Vec<(TableId, Table)>)>,
    keys: u64,
    bytes: u64,
}

impl SnapshotLoader {
    /// Decodes one stored pair into the catalog being built; pairs come prefix by prefix in
    /// the order of [`SNAPSHOT_PREFIXES`], each in key order.
    pub fn feed(&mut self, key: &str, value: &[u8]) -> Result<(), DecodeError> {
        self.keys += 1;
        self.bytes += (key.len() + value.len()) as u64;
        if key == FENCE_KEY {
            self.snapshot.fence = Some(value.to_vec());
            return Ok(());
        }
        match Mutation::decode(key, value)? {
            Mutation::PutTable(c, record) => self.stage_table(c, record),
            m => self.snapshot.catalog.apply(m),
        }
    }

    fn stage_table(&mut self, c: ClusterId, record: TableRecord) -> Result<(), DecodeError> {
        if !self.snapshot.catalog.clusters.contains_key(&c) {
            return Err(DecodeError(format!("table {} names unknown cluster {c}", record.id)));
        }
        let (id, table) = Table::from_record(record);
        let in_order = match self.tables.last() {
            Some((last, tables)) if *last == c => tables.last().is_none_or(|(prev, _)| *prev < id),
            Some((last, _)) => *last < c,
            None => true,
        };
        if !in_order {
            return Err(DecodeError(format!("table {id} of cluster {c} arrived out of key order")));
        }
        match self.tables.last_mut() {
            Some((last, tables)) if *last == c => tables.push((id, table)),
            _ => self.tables.push((c, vec![(id, table)])),
        }
        Ok(())
    }

    /// Pairs fed so far.
    pub fn keys(&self) -> u64 {
        self.keys
    }

    /// Key and value bytes fed so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Checks what only the whole catalog can show (partitioned tables and their sub-tables
    /// point at each other, ids sit below their cluster's ceiling) and hands the snapshot over.
    pub fn finish(mut self) -> Result<Snapshot, DecodeError> {
        for (c, tables) in self.tables {
            let cluster =
                self.snapshot.catalog.clusters.get_mut(&c).expect("staged only for known clusters");
            cluster.load_tables(tables)?;
        }
        self.snapshot.catalog.check_partitions()?;
        self.snapshot.catalog.check_ids()?;
        Ok(self.snapshot)
    }
}

impl Catalog {
    /// Builds a catalog from stored pairs held in memory (see [`Snapshot::load`]; the write
    /// chain's fence is not part of it).
    pub fn load<'a>(
        kvs: impl IntoIterator<Item = (&'a str, &'a [u8])>,
    ) -> Result<Catalog, DecodeError> {
        Ok(Snapshot::load(kvs)?.catalog)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::model::{ClusterRecord, NodeRecord, SchemaRecord, ShardRecord};
    use crate::core::storage::Key;

    fn encoded(m: Mutation) -> (String, Vec<u8>) {
        match m.to_op() {
            crate::core::storage::Op::Put { key, value } => (key, value),
            op => panic!("not a put: {op:?}"),
        }
    }

    /// In plain key order a cluster's contents come before its record; the loader's order
    /// does not depend on how the pairs were handed over.
    #[test]
    fn pairs_load_in_dependency_order_whatever_order_they_come_in() {
        let c = ClusterId(1);
        let cluster =
            ClusterRecord { id: 1, name: "a".into(), shard_count: 2, ..Default::default() };
        let pairs = [
            encoded(Mutation::PutShard(
                c,
                ShardRecord { id: 1, version: 2, leader: Some(0), ..Default::default() },
            )),
            encoded(Mutation::PutNode(
                c,
                NodeRecord {
                    id: 0,
                    name: "n0".into(),
                    endpoint: "h:1".into(),
                    ..Default::default()
                },
            )),
            encoded(Mutation::PutCluster(cluster)),
            (FENCE_KEY.to_owned(), vec![8]),
        ];
        let s = Snapshot::load(pairs.iter().map(|(k, v)| (k.as_str(), v.as_slice()))).unwrap();
        assert_eq!(s.fence, Some(vec![8]));
        assert_eq!(s.catalog.cluster(c).shard(crate::core::ShardId(1)).leader, Some(0));
    }

    /// Pages from a broken store could repeat or reorder keys; the loader says so instead of
    /// building a catalog whose indexes disagree.
    #[test]
    fn tables_out_of_key_order_are_refused() {
        let c = ClusterId(1);
        let mut loader = SnapshotLoader::default();
        for m in [
            Mutation::PutCluster(ClusterRecord {
                id: 1,
                name: "a".into(),
                shard_count: 1,
                ..Default::default()
            }),
            Mutation::PutSchema(c, SchemaRecord { id: 0, name: "public".into(), dropping: false }),
            Mutation::PutTable(c, TableRecord { id: 5, name: "x".into(), ..Default::default() }),
        ] {
            let (k, v) = encoded(m);
            loader.feed(&k, &v).unwrap();
        }
        let (k, v) = encoded(Mutation::PutTable(
            c,
            TableRecord { id: 5, name: "y".into(), ..Default::default() },
        ));
        assert!(loader.feed(&k, &v).unwrap_err().0.contains("out of key order"));
    }

    /// A transaction that creates a cluster writes its contents, whose keys sort first, with
    /// the record they belong to; a standby applies it whatever order the store reports.
    #[test]
    fn a_transaction_applies_in_dependency_order_and_deletes_only_what_the_core_deletes() {
        let c = ClusterId(1);
        let mut standby = Snapshot::default();
        let created = [
            encoded(Mutation::PutIdCeiling(c, 100)),
            encoded(Mutation::PutSchema(
                c,
                SchemaRecord { id: 0, name: "public".into(), dropping: false },
            )),
            encoded(Mutation::PutTable(
                c,
                TableRecord { id: 5, name: "x".into(), ..Default::default() },
            )),
            encoded(Mutation::PutCluster(ClusterRecord {
                id: 1,
                name: "a".into(),
                shard_count: 1,
                ..Default::default()
            })),
            (FENCE_KEY.to_owned(), vec![1]),
        ];
        standby
            .apply_transaction(created.iter().map(|(k, v)| (k.as_str(), Some(v.as_slice()))))
            .unwrap();
        let stored =
            Snapshot::load(created.iter().map(|(k, v)| (k.as_str(), v.as_slice()))).unwrap();
        assert_eq!(standby, stored);

        let table = Key::Table(c, 5).encode();
        standby.apply_transaction([(table.as_str(), None), (FENCE_KEY, Some(&[2][..]))]).unwrap();
        assert!(
            standby.catalog.cluster(c).tables.get(TableId(5)).is_none()
                && standby.fence == Some(vec![2])
        );

        let schema = Key::Schema(c, 0).encode();
        standby.apply_transaction([(schema.as_str(), None)]).unwrap();
        assert!(standby.catalog.cluster(c).schemas.is_empty(), "an empty schema is dropped");
        let node = Key::Node(c, 0).encode();
        let err = standby.apply_transaction([(node.as_str(), None)]).unwrap_err();
        assert!(err.0.contains("only tables"), "{err}");
        let err = standby.apply_transaction([("/shardmeta/v1/other", Some(&b""[..]))]).unwrap_err();
        assert!(err.0.contains("unknown key"), "{err}");
    }

    /// A table id at the ceiling or shared with a schema would be handed out twice.
    #[test]
    fn ids_at_the_ceiling_or_shared_with_a_schema_are_refused() {
        let c = ClusterId(1);
        let load = |table: u64| {
            let pairs = [
                encoded(Mutation::PutCluster(ClusterRecord {
                    id: 1,
                    name: "a".into(),
                    shard_count: 1,
                    ..Default::default()
                })),
                encoded(Mutation::PutIdCeiling(c, 10)),
                encoded(Mutation::PutSchema(
                    c,
                    SchemaRecord { id: 3, name: "s".into(), dropping: false },
                )),
                encoded(Mutation::PutTable(
                    c,
                    TableRecord { id: table, schema: 3, name: "t".into(), ..Default::default() },
                )),
            ];
            Snapshot::load(pairs.iter().map(|(k, v)| (k.as_str(), v.as_slice())))
        };
        assert!(load(9).is_ok());
        assert!(load(10).unwrap_err().0.contains("id ceiling"));
        assert!(load(3).unwrap_err().0.contains("both a schema and a table"));
    }

    #[test]
    fn keys_outside_the_snapshot_ranges_are_refused() {
        let err = Snapshot::load([("/shardmeta/v1/other", &b""[..])]).unwrap_err();
        assert!(err.0.contains("unknown key"), "{err}");
    }

    #[test]
    fn every_stored_key_is_in_exactly_one_range() {
        let c = ClusterId(3);
        for key in [
            Key::Cluster(c),
            Key::Epoch(c),
            Key::IdCeiling(c),
            Key::Schema(c, 1),
            Key::Table(c, 2),
            Key::Shard(c, 3),
            Key::Node(c, 4),
        ] {
            let key = key.encode();
            assert_eq!(
                SNAPSHOT_PREFIXES.iter().filter(|p| key.starts_with(*p)).count(),
                1,
                "{key}"
            );
        }
    }
}

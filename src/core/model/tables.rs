//! The tables of one cluster, held for a million of them. Each table's fields are stored once and
//! at their exact size: the name and the encoded schema are boxed slices (no spare capacity), and
//! the rarely set parts (options, parent, partition rule) sit behind one optional pointer. The
//! name index keeps a 64-bit hash of each name instead of a second copy of it, and confirms every
//! hit against the table itself, so a hash collision costs a comparison, never a wrong answer.
//!
//! Encoded schemas stay in memory on purpose: they are a quarter of a 256-byte-schema catalog,
//! and holding them lets every read (a future `GetTable`) come from acknowledged state without a
//! storage round trip.

use std::collections::{BTreeMap, BTreeSet};

use super::records::{PartitionRecord, TableRecord};
use crate::core::ids::{SchemaId, TableId};

/// A table as the catalog keeps it: its name and schema bytes at their exact size, and what
/// most tables lack kept apart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Table {
    /// The schema it belongs to.
    pub schema: SchemaId,
    /// The shard that holds it.
    pub shard: u32,
    /// Sits in what would be padding after `shard`: it costs no memory.
    pub version: u32,
    /// Its name in its schema.
    pub name: Box<str>,
    /// The schema bytes the client gave, stored as they are.
    pub encoded_schema: Box<[u8]>,
    /// Options, a parent or a partition rule, for the tables that have any.
    pub extra: Option<Box<TableExtra>>,
}

/// What most tables lack.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TableExtra {
    /// The table's options, as the client set them.
    pub options: BTreeMap<String, String>,
    /// Set on a sub-table: its partitioned parent.
    pub parent: Option<u64>,
    /// Set on a partitioned table.
    pub partition: Option<PartitionRecord>,
}

impl Table {
    /// The table a stored record describes, with its id.
    pub fn from_record(r: TableRecord) -> (TableId, Table) {
        let extra =
            (!r.options.is_empty() || r.parent.is_some() || r.partition.is_some()).then(|| {
                Box::new(TableExtra {
                    options: r.options,
                    parent: r.parent,
                    partition: r.partition,
                })
            });
        let table = Table {
            schema: SchemaId(r.schema),
            shard: r.shard,
            version: r.version,
            name: r.name.into_boxed_str(),
            encoded_schema: r.encoded_schema.into_boxed_slice(),
            extra,
        };
        (TableId(r.id), table)
    }

    /// The record that stores it under `id`.
    pub fn to_record(&self, id: TableId) -> TableRecord {
        let extra = self.extra.as_deref().cloned().unwrap_or_default();
        TableRecord {
            id: id.0,
            schema: self.schema.0,
            name: self.name.to_string(),
            shard: self.shard,
            encoded_schema: self.encoded_schema.to_vec(),
            options: extra.options,
            parent: extra.parent,
            partition: extra.partition,
            version: self.version,
        }
    }

    /// A sub-table's partitioned parent.
    pub fn parent(&self) -> Option<u64> {
        self.extra.as_ref().and_then(|e| e.parent)
    }

    /// A partitioned table's rule.
    pub fn partition(&self) -> Option<&PartitionRecord> {
        self.extra.as_ref().and_then(|e| e.partition.as_ref())
    }
}

/// Every table of a cluster by id, with an index by schema and name that holds a hash of each
/// name rather than a second copy of it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tables {
    by_id: BTreeMap<TableId, Table>,
    /// (schema, name hash, id) for every table.
    by_name: BTreeSet<(SchemaId, u64, TableId)>,
}

impl Tables {
    /// Builds the tables of a snapshot at once: sorting and building each tree from sorted
    /// input is several times faster than a million inserts at random places, and leaves the
    /// trees' nodes full instead of about half full. Ids must be distinct.
    pub fn from_unique(tables: Vec<(TableId, Table)>) -> Tables {
        let mut names: Vec<(SchemaId, u64, TableId)> =
            tables.iter().map(|(id, t)| (t.schema, name_hash(&t.name), *id)).collect();
        names.sort_unstable();
        let by_id: BTreeMap<TableId, Table> = tables.into_iter().collect();
        let by_name: BTreeSet<_> = names.into_iter().collect();
        assert_eq!(by_id.len(), by_name.len(), "table ids are distinct");
        Tables { by_id, by_name }
    }

    /// How many tables.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// The table `id`, if there is one.
    pub fn get(&self, id: TableId) -> Option<&Table> {
        self.by_id.get(&id)
    }

    /// Whether table `id` exists.
    pub fn contains(&self, id: TableId) -> bool {
        self.by_id.contains_key(&id)
    }

    /// The table named `name` in `schema`.
    pub fn find(&self, schema: SchemaId, name: &str) -> Option<(TableId, &Table)> {
        let h = name_hash(name);
        self.by_name
            .range((schema, h, TableId(0))..=(schema, h, TableId(u64::MAX)))
            .map(|&(_, _, id)| (id, &self.by_id[&id]))
            .find(|(_, t)| &*t.name == name)
    }

    /// Adds or replaces a table; returns the one it replaced.
    pub fn insert(&mut self, id: TableId, table: Table) -> Option<Table> {
        let old = self.remove(id);
        self.by_name.insert((table.schema, name_hash(&table.name), id));
        self.by_id.insert(id, table);
        old
    }

    /// Removes a table; returns it, if it was there.
    pub fn remove(&mut self, id: TableId) -> Option<Table> {
        let old = self.by_id.remove(&id)?;
        self.by_name.remove(&(old.schema, name_hash(&old.name), id));
        Some(old)
    }

    /// Every table, in id order.
    pub fn iter(&self) -> impl Iterator<Item = (TableId, &Table)> + '_ {
        self.by_id.iter().map(|(&id, t)| (id, t))
    }

    /// The tables with ids above `after` (all with `None`), in id order.
    pub fn iter_after(
        &self,
        after: Option<TableId>,
    ) -> impl Iterator<Item = (TableId, &Table)> + '_ {
        use std::ops::Bound::{Excluded, Unbounded};
        let from = after.map_or(Unbounded, Excluded);
        self.by_id.range((from, Unbounded)).map(|(&id, t)| (id, t))
    }

    /// The ids of `schema`'s tables, in no particular order (by name hash).
    pub fn in_schema(&self, schema: SchemaId) -> impl Iterator<Item = TableId> + '_ {
        self.by_name
            .range((schema, 0, TableId(0))..=(schema, u64::MAX, TableId(u64::MAX)))
            .map(|&(_, _, id)| id)
    }

    /// Every table id, in order.
    pub fn ids(&self) -> impl Iterator<Item = TableId> + '_ {
        self.by_id.keys().copied()
    }

    /// The highest table id.
    pub fn last_id(&self) -> Option<TableId> {
        self.by_id.keys().next_back().copied()
    }

    /// Whether the name index holds exactly one entry per table, for consistency checks (equal
    /// sizes and every table's entry present make the two sets equal).
    pub fn name_index_is_consistent(&self) -> bool {
        self.by_name.len() == self.by_id.len()
            && self
                .by_id
                .iter()
                .all(|(&id, t)| self.by_name.contains(&(t.schema, name_hash(&t.name), id)))
    }
}

/// FNV-1a: deterministic across runs and platforms, which the core needs (no random keys).
fn name_hash(name: &str) -> u64 {
    name.bytes()
        .fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(schema: u64, name: &str) -> Table {
        Table::from_record(TableRecord { schema, name: name.into(), ..Default::default() }).1
    }

    #[test]
    fn a_record_round_trips() {
        let r = TableRecord {
            id: 9,
            schema: 2,
            name: "t".into(),
            shard: 3,
            encoded_schema: vec![1, 2, 3],
            options: [("ttl".to_string(), "7d".to_string())].into(),
            parent: None,
            partition: Some(PartitionRecord { encoded: vec![4], sub_tables: vec![10] }),
            version: 4,
        };
        let (id, t) = Table::from_record(r.clone());
        assert_eq!(t.to_record(id), r);
        assert!(
            Table::from_record(TableRecord::default()).1.extra.is_none(),
            "a plain table pays no extra allocation"
        );
    }

    /// Names that share a hash are told apart by the names themselves.
    #[test]
    fn lookups_confirm_the_name_behind_a_hash() {
        let mut tables = Tables::default();
        tables.insert(TableId(1), table(0, "a"));
        tables.insert(TableId(2), table(0, "b"));
        // Plant a colliding index entry: "b"'s hash pointing at table 1 ("a").
        tables.by_name.insert((SchemaId(0), name_hash("b"), TableId(1)));
        assert_eq!(tables.find(SchemaId(0), "b").map(|(id, _)| id), Some(TableId(2)));
        assert_eq!(tables.find(SchemaId(1), "b"), None, "another schema");
        assert!(!tables.name_index_is_consistent());
    }

    #[test]
    fn building_at_once_equals_inserting_one_by_one() {
        let all: Vec<(TableId, Table)> =
            (0..500u64).rev().map(|i| (TableId(i), table(i % 3, &format!("t{i}")))).collect();
        let mut one_by_one = Tables::default();
        for (id, t) in all.clone() {
            one_by_one.insert(id, t);
        }
        let at_once = Tables::from_unique(all);
        assert_eq!(at_once, one_by_one);
        assert!(at_once.name_index_is_consistent());
    }

    #[test]
    fn replacing_and_removing_keep_the_index_exact() {
        let mut tables = Tables::default();
        tables.insert(TableId(1), table(0, "a"));
        tables.insert(TableId(1), table(0, "renamed"));
        assert_eq!(tables.find(SchemaId(0), "a"), None);
        assert!(tables.find(SchemaId(0), "renamed").is_some());
        tables.remove(TableId(1));
        assert!(tables.is_empty() && tables.name_index_is_consistent());
    }
}

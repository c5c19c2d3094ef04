//! Writes in flight that later requests must wait for, one entry per thing being written. A
//! second request for the same key is refused with "retry" (or, for an if-not-exists create,
//! waits for the first) instead of queuing a write that would overwrite or duplicate it.

use std::collections::BTreeMap;

use crate::core::ids::*;

/// What a key waits on: the landing of one write. Each variant names the record being written.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Awaiting {
    /// A new schema's record, by name.
    SchemaRecord(String),
    /// A schema's drop: its mark, or its deletion.
    SchemaDrop(SchemaId),
    /// A new table's records (the table and its sub-tables), by schema and name.
    TableRecords(SchemaId, String),
    /// A table's deletion (with its sub-tables').
    TableDeletion(TableId),
    /// A new version of a table's record (an alter).
    TableAlter(TableId),
    /// A new node's registration, by name. Registrations take the next node ids in turn.
    Registration(String),
    /// A known node's record (a new endpoint or zone, a drain mark): one write per node at a
    /// time, so that neither overwrites the other.
    NodeRecord(NodeId),
}

/// The keys with a write in flight, each with the requests waiting for it to land.
#[derive(Clone, Debug, Default)]
pub struct InFlight {
    /// Each key with the if-not-exists requests answered when its write lands.
    keys: BTreeMap<Awaiting, Vec<RequestId>>,
    /// How many keys are schema records and registrations: each takes a slot under a limit.
    schemas: usize,
    registrations: usize,
}

impl InFlight {
    /// Whether a write on `key` is in flight.
    pub fn contains(&self, key: &Awaiting) -> bool {
        self.keys.contains_key(key)
    }

    /// Whether a table of schema `sid` is being created.
    pub fn creating_in(&self, sid: SchemaId) -> bool {
        let next = SchemaId(sid.0 + 1);
        self.keys
            .range(
                Awaiting::TableRecords(sid, String::new())
                    ..Awaiting::TableRecords(next, String::new()),
            )
            .next()
            .is_some()
    }

    /// Schemas being created.
    pub fn schemas(&self) -> usize {
        self.schemas
    }

    /// Nodes being registered.
    pub fn registrations(&self) -> usize {
        self.registrations
    }

    pub(super) fn begin(&mut self, key: Awaiting) {
        if let Some(c) = self.counter(&key) {
            *c += 1;
        }
        assert!(self.keys.insert(key, Vec::new()).is_none(), "one write per key at a time");
    }

    /// Makes `request` wait for the write of `key`; `false` when no such write is in flight.
    pub(super) fn wait(&mut self, key: &Awaiting, request: RequestId) -> bool {
        self.keys.get_mut(key).map(|w| w.push(request)).is_some()
    }

    /// The write of `key` landed: the requests that waited for it.
    pub(super) fn landed(&mut self, key: &Awaiting) -> Vec<RequestId> {
        let Some(waiters) = self.keys.remove(key) else { return Vec::new() };
        if let Some(c) = self.counter(key) {
            *c -= 1;
        }
        waiters
    }

    fn counter(&mut self, key: &Awaiting) -> Option<&mut usize> {
        match key {
            Awaiting::SchemaRecord(_) => Some(&mut self.schemas),
            Awaiting::Registration(_) => Some(&mut self.registrations),
            _ => None,
        }
    }

    /// `Err` unless the counters count their keys.
    pub(super) fn check(&self) -> Result<(), String> {
        let count = |f: fn(&Awaiting) -> bool| self.keys.keys().filter(|k| f(k)).count();
        let schemas = count(|k| matches!(k, Awaiting::SchemaRecord(_)));
        let registrations = count(|k| matches!(k, Awaiting::Registration(_)));
        if (schemas, registrations) != (self.schemas, self.registrations) {
            return Err(format!(
                "{schemas} schema and {registrations} registration writes in flight, counted as {} and {}",
                self.schemas, self.registrations
            ));
        }
        Ok(())
    }
}

//! Checks on names and sizes that arrive from outside. Each failure names what was wrong, and
//! quotes what it was given only through [`quoted`]: a refusal must stay readable (gRPC clients
//! drop a status whose message passes their header limit, 8-16 KiB) whatever was sent.

use super::error::{quoted, MetaError};
use super::input::{Request, WatchRoutes, WhatIf};
use super::model::{ConstraintKind, Label, PlacementRecord, ZONE_LABEL};

/// Names of clusters, schemas, tables and nodes: 1 to `max` bytes of ASCII letters, digits,
/// `_`, `-` and `.`, starting with a letter or `_`.
pub fn name(what: &str, name: &str, max: usize) -> Result<(), MetaError> {
    let bad = |why: &str| Err(MetaError::InvalidArgument(format!("{what} {} {why}", quoted(name))));
    if name.is_empty() {
        return Err(MetaError::InvalidArgument(format!("{what} is empty")));
    }
    if name.len() > max {
        return bad(&format!("is too long; the limit is {max} bytes"));
    }
    let first = name.as_bytes()[0];
    if !(first.is_ascii_alphabetic() || first == b'_') {
        return bad("must start with a letter or '_'");
    }
    if let Some(c) = name.chars().find(|&c| !name_char(c)) {
        return bad(&format!("contains {c:?}; only letters, digits, '_', '-' and '.' are allowed"));
    }
    Ok(())
}

/// The characters of names and label values: ASCII letters, digits, `_`, `-` and `.`.
fn name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')
}

/// Table names given by users; `__` starts the names of sub-tables, which meta makes itself.
pub fn table_name(table: &str, max: usize) -> Result<(), MetaError> {
    name("table name", table, max)?;
    if table.starts_with("__") {
        return Err(MetaError::InvalidArgument(format!(
            "table name {} starts with \"__\", which is reserved for sub-tables",
            quoted(table)
        )));
    }
    Ok(())
}

/// The largest load value taken from a node (units or milliseconds per second, bytes, rows).
pub const LOAD_VALUE_MAX: f64 = 1e12;

/// The largest capacity a node may declare: a relative size (its cores, or a weight), and a
/// node ten thousand times the size of another is a typo, which would draw every shard to it.
/// Larger values are clamped to it and counted against the node.
pub const CAPACITY_MAX: f64 = 10_000.0;

/// The longest duration a node may report (a heartbeat round trip, a request latency), in µs:
/// 10 minutes. Anything longer is clamped to it and counted against the node.
pub const MICROS_MAX: u32 = 600_000_000;

/// A load value from a node, made trustworthy: NaN and negative values become 0 and values over
/// [`LOAD_VALUE_MAX`] (infinity included) become that. `false` in the second place when the
/// value had to change, which the caller counts and logs as a rejection.
pub fn load_value(x: f64) -> (f64, bool) {
    if x.is_nan() || x < 0.0 {
        (0.0, false)
    } else if x > LOAD_VALUE_MAX {
        (LOAD_VALUE_MAX, false)
    } else {
        (x, true)
    }
}

/// A node's advertised `host:port`.
pub fn endpoint(endpoint: &str, max: usize) -> Result<(), MetaError> {
    let ok = !endpoint.is_empty()
        && endpoint.len() <= max
        && endpoint
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok())
        && !endpoint.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Ok(())
    } else {
        Err(MetaError::InvalidArgument(format!("endpoint {} is not host:port", quoted(endpoint))))
    }
}

/// A node's zone: empty (no zone), or up to `max` bytes with no whitespace or control
/// characters. It is stored in the node record, so an unbounded one would fail the write.
pub fn zone(zone: &str, max: usize) -> Result<(), MetaError> {
    if zone.len() > max {
        return Err(MetaError::InvalidArgument(format!(
            "zone is {} bytes long; the limit is {max}",
            zone.len()
        )));
    }
    if let Some(c) = zone.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return Err(MetaError::InvalidArgument(format!("zone {} contains {c:?}", quoted(zone))));
    }
    Ok(())
}

/// The most labels a node may report besides its zone: each is stored in its node record and
/// judged by placement, and a dozen (region, rack, disk, hardware generation, ...) is what real
/// deployments use.
pub const LABELS_PER_NODE_MAX: usize = 16;

/// A node's labels: at most [`LABELS_PER_NODE_MAX`], by key and each key once, keys named like
/// names, values 1 to `max` bytes of ASCII letters, digits, `_`, `-` and `.` (a value may start
/// with a digit: `disk=ssd`, `gen=3`, `rack=12a`), and no key `zone` (the zone is a field of
/// its own, shown as that label).
pub fn labels(labels: &[Label], max: usize) -> Result<(), MetaError> {
    if labels.len() > LABELS_PER_NODE_MAX {
        return Err(MetaError::InvalidArgument(format!(
            "{} labels; the limit is {LABELS_PER_NODE_MAX}",
            labels.len()
        )));
    }
    for (i, label) in labels.iter().enumerate() {
        name("label key", &label.key, max)?;
        if label.key == ZONE_LABEL {
            return Err(MetaError::InvalidArgument(
                "label key \"zone\" is reserved: report the zone in its own field".into(),
            ));
        }
        if i > 0 && labels[i - 1].key >= label.key {
            return Err(MetaError::InvalidArgument(format!(
                "label key {} is out of order or given twice",
                quoted(&label.key)
            )));
        }
        label_value(&label.key, &label.value, max)?;
    }
    Ok(())
}

/// A value of label `key`: 1 to `max` bytes of ASCII letters, digits, `_`, `-` and `.`.
fn label_value(key: &str, value: &str, max: usize) -> Result<(), MetaError> {
    let bad = |why: String| {
        Err(MetaError::InvalidArgument(format!(
            "label {} value {} {why}",
            quoted(key),
            quoted(value)
        )))
    };
    if value.is_empty() || value.len() > max {
        return bad(format!("must be 1 to {max} bytes"));
    }
    if let Some(c) = value.chars().find(|&c| !name_char(c)) {
        return bad(format!("contains {c:?}; only letters, digits, '_', '-' and '.' are allowed"));
    }
    Ok(())
}

/// The most constraints a placement rule has for its replicas, and for its leader: each is
/// judged for every node on every placement.
pub const CONSTRAINTS_MAX: usize = 8;

/// The most values one constraint names.
pub const CONSTRAINT_VALUES_MAX: usize = 16;

/// A placement rule: at most [`CONSTRAINTS_MAX`] constraints for each of replicas and leader,
/// each of a known kind, on a label key named like a name (`zone` is the zone), with 1 to
/// [`CONSTRAINT_VALUES_MAX`] distinct values valid as label values; a spread key named like a
/// name, or empty for `zone`; and no label whose required values are all avoided or are
/// disjoint, for that rule could never be met by any node.
pub fn placement(rule: &PlacementRecord, max: usize) -> Result<(), MetaError> {
    for (what, list) in [("replica", &rule.replicas), ("leader", &rule.leader)] {
        if list.len() > CONSTRAINTS_MAX {
            return Err(MetaError::InvalidArgument(format!(
                "{} {what} constraints; the limit is {CONSTRAINTS_MAX}",
                list.len()
            )));
        }
        for c in list.iter() {
            if ConstraintKind::from_code(c.kind).is_none() {
                return Err(MetaError::InvalidArgument(format!(
                    "{what} constraint kind {} is unknown: 0 require, 1 prefer, 2 avoid",
                    c.kind
                )));
            }
            name("label key", &c.key, max)?;
            if c.values.is_empty() || c.values.len() > CONSTRAINT_VALUES_MAX {
                return Err(MetaError::InvalidArgument(format!(
                    "{what} constraint on {} names {} values; it takes 1 to {CONSTRAINT_VALUES_MAX}",
                    quoted(&c.key),
                    c.values.len()
                )));
            }
            for (i, v) in c.values.iter().enumerate() {
                label_value(&c.key, v, max)?;
                if c.values[..i].contains(v) {
                    return Err(MetaError::InvalidArgument(format!(
                        "{what} constraint on {} names {} twice",
                        quoted(&c.key),
                        quoted(v)
                    )));
                }
            }
        }
    }
    if !rule.spread.is_empty() {
        name("spread label key", &rule.spread, max)?;
    }
    contradiction(rule).map_or(Ok(()), |key| {
        Err(MetaError::InvalidArgument(format!(
            "no value of label {} meets every require and avoid of the leader and replicas",
            quoted(key)
        )))
    })
}

/// A label whose required values (over the replicas' and the leader's constraints) have none in
/// common, or are all avoided.
fn contradiction(rule: &PlacementRecord) -> Option<&str> {
    let all = || rule.replicas.iter().chain(&rule.leader);
    all().filter(|c| c.kind() == ConstraintKind::Require).map(|c| c.key.as_str()).find(|&key| {
        let required = all().filter(|c| c.kind() == ConstraintKind::Require && c.key == key);
        let mut allowed: Vec<&String> = Vec::new();
        for (i, c) in required.enumerate() {
            match i {
                0 => allowed = c.values.iter().collect(),
                _ => allowed.retain(|v| c.values.contains(v)),
            }
        }
        let avoided = |v: &&String| {
            all().any(|c| c.kind() == ConstraintKind::Avoid && c.key == key && c.values.contains(v))
        };
        allowed.iter().all(avoided)
    })
}

/// The names a request carries, checked alike for reads and writes at the core's front door: a
/// lookup of a name that no create could store is refused as INVALID_ARGUMENT (not NOT_FOUND,
/// after a search), and a list of tables is bounded and names each table once. Creates check
/// more of their own (a reserved table prefix, the options).
pub fn request_names(request: &Request, max: usize, tables_max: usize) -> Result<(), MetaError> {
    use Request as R;
    let cluster = |c: &str| name("cluster name", c, max);
    let schema = |s: &str| name("schema name", s, max);
    let table = |t: &str| name("table name", t, max);
    let node = |n: &str| name("node name", n, max);
    match request {
        R::ListClusters { .. } => Ok(()),
        R::CreateCluster(spec) => cluster(&spec.name),
        R::ClusterView { cluster: c }
        | R::DropCluster { cluster: c, .. }
        | R::ListNodes { cluster: c, .. }
        | R::ListShards { cluster: c, .. }
        | R::SchedulerStatus { cluster: c }
        | R::SetScheduler { cluster: c, .. }
        | R::PlanScheduler { cluster: c }
        | R::GetPlacement { cluster: c }
        | R::ListEvents { cluster: c, .. }
        | R::SplitShard { cluster: c, .. }
        | R::MergeShards { cluster: c, .. }
        | R::ListProcedures { cluster: c }
        | R::CancelProcedure { cluster: c, .. } => cluster(c),
        R::CreateSchema { cluster: c, name: s, .. } | R::DropSchema { cluster: c, name: s, .. } => {
            cluster(c).and_then(|()| schema(s))
        }
        R::ListTables { cluster: c, schema: s, .. } => {
            cluster(c).and_then(|()| s.as_deref().map_or(Ok(()), schema))
        }
        R::CreateTable(t) => {
            cluster(&t.cluster).and_then(|()| schema(&t.schema)).and_then(|()| table(&t.name))
        }
        R::AlterTable(t) => {
            cluster(&t.cluster).and_then(|()| schema(&t.schema)).and_then(|()| table(&t.name))
        }
        R::DropTable { cluster: c, schema: s, name: t } => {
            cluster(c).and_then(|()| schema(s)).and_then(|()| table(t))
        }
        R::RouteTables { cluster: c, schema: s, tables }
        | R::GetTables { cluster: c, schema: s, tables } => {
            cluster(c)?;
            schema(s)?;
            table_list(tables, max, tables_max)
        }
        R::SetPlacement { cluster: c, rule, .. } => cluster(c).and_then(|()| placement(rule, max)),
        R::WhatIf { cluster: c, change } => cluster(c).and_then(|()| match change {
            WhatIf::Drain(n) | WhatIf::Remove(n) | WhatIf::RestartBegin(n) => node(n),
            WhatIf::Placement(rule) => placement(rule, max),
            WhatIf::LoseZone(z) => name("zone", z, max),
        }),
        R::DrainNode { cluster: c, node: n, .. }
        | R::MarkNodeSlow { cluster: c, node: n, .. }
        | R::RestartNode { cluster: c, node: n, .. }
        | R::RemoveNode { cluster: c, node: n }
        | R::MoveShard { cluster: c, node: n, .. } => cluster(c).and_then(|()| node(n)),
    }
}

/// The names a route watch carries (see [`request_names`]).
pub fn watch_names(watch: &WatchRoutes, max: usize) -> Result<(), MetaError> {
    name("cluster name", &watch.cluster, max)?;
    watch.schema.as_deref().map_or(Ok(()), |s| name("schema name", s, max))
}

/// At most `tables_max` table names, each valid, none twice.
fn table_list(tables: &[String], max: usize, tables_max: usize) -> Result<(), MetaError> {
    if tables.len() > tables_max {
        return Err(MetaError::InvalidArgument(format!(
            "{} tables in one request; the limit is {tables_max}",
            tables.len()
        )));
    }
    let mut seen = std::collections::BTreeSet::new();
    for t in tables {
        name("table name", t, max)?;
        if !seen.insert(t.as_str()) {
            return Err(MetaError::InvalidArgument(format!(
                "table {} is named twice; name each table once",
                quoted(t)
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_names_pass() {
        for n in ["a", "_x", "metrics.cpu-1", "T_2"] {
            name("table name", n, 16).unwrap();
        }
    }

    #[test]
    fn bad_names_say_why() {
        let cases =
            [("", "empty"), ("1abc", "start"), ("a b", "' '"), ("aaaaaaaaaaaaaaaaa", "limit")];
        for (n, why) in cases {
            let err = name("table name", n, 16).unwrap_err().to_string();
            assert!(err.contains(why), "{n:?}: {err}");
        }
        assert!(table_name("__t_1", 16).unwrap_err().to_string().contains("reserved"));
    }

    #[test]
    fn long_inputs_are_quoted_by_a_prefix_and_their_length() {
        assert_eq!(quoted("orders").to_string(), "\"orders\"");
        let long = "é".repeat(100_000);
        let q = quoted(&long).to_string();
        assert!(
            q.len() < 2 * crate::core::error::QUOTE_BYTES_MAX && q.ends_with("... (200000 bytes)"),
            "{q}"
        );
        let err = name("table name", &"a".repeat(1 << 20), 255).unwrap_err().to_string();
        assert!(
            err.len() < 300 && err.contains("1048576 bytes") && err.contains("limit is 255"),
            "{err}"
        );
    }

    #[test]
    fn reads_check_names_as_creates_do_and_a_table_is_named_once() {
        let get = |tables: &[&str]| Request::GetTables {
            cluster: "c".into(),
            schema: "public".into(),
            tables: tables.iter().map(|t| t.to_string()).collect(),
        };
        request_names(&get(&["a", "b"]), 16, 10).unwrap();
        assert!(request_names(&get(&["a", "b", "a"]), 16, 10)
            .unwrap_err()
            .to_string()
            .contains("named twice"));
        assert!(request_names(&get(&[&"x".repeat(17)]), 16, 10)
            .unwrap_err()
            .to_string()
            .contains("limit is 16"));
        assert!(request_names(&get(&["a"; 11]), 16, 10)
            .unwrap_err()
            .to_string()
            .contains("11 tables"));
        let drop =
            Request::DropTable { cluster: "c".into(), schema: "s p".into(), name: "t".into() };
        assert!(matches!(request_names(&drop, 16, 10), Err(MetaError::InvalidArgument(_))));
    }

    #[test]
    fn endpoints_need_host_and_port() {
        endpoint("127.0.0.1:9000", 64).unwrap();
        endpoint("[::1]:9000", 64).unwrap();
        for bad in ["", "host", ":9000", "host:port", "host:99999", "a b:1"] {
            assert!(endpoint(bad, 64).is_err(), "{bad:?}");
        }
    }
}

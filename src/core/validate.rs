//! Checks on names and sizes that arrive from outside. Each failure names what was wrong.

use super::error::MetaError;

/// Names of clusters, schemas, tables and nodes: 1 to `max` bytes of ASCII letters, digits,
/// `_`, `-` and `.`, starting with a letter or `_`.
pub fn name(what: &str, name: &str, max: usize) -> Result<(), MetaError> {
    let bad = |why: &str| Err(MetaError::InvalidArgument(format!("{what} {name:?} {why}")));
    if name.is_empty() {
        return Err(MetaError::InvalidArgument(format!("{what} is empty")));
    }
    if name.len() > max {
        return bad(&format!("is {} bytes long; the limit is {max}", name.len()));
    }
    let first = name.as_bytes()[0];
    if !(first.is_ascii_alphabetic() || first == b'_') {
        return bad("must start with a letter or '_'");
    }
    if let Some(c) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))) {
        return bad(&format!("contains {c:?}; only letters, digits, '_', '-' and '.' are allowed"));
    }
    Ok(())
}

/// Table names given by users; `__` starts the names of sub-tables, which meta makes itself.
pub fn table_name(table: &str, max: usize) -> Result<(), MetaError> {
    name("table name", table, max)?;
    if table.starts_with("__") {
        return Err(MetaError::InvalidArgument(format!(
            "table name {table:?} starts with \"__\", which is reserved for sub-tables"
        )));
    }
    Ok(())
}

/// The largest load value taken from a node (units or milliseconds per second, bytes, rows).
pub const LOAD_VALUE_MAX: f64 = 1e12;

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
        && endpoint.rsplit_once(':').is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok())
        && !endpoint.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Ok(())
    } else {
        Err(MetaError::InvalidArgument(format!("endpoint {endpoint:?} is not host:port")))
    }
}

/// A node's zone: empty (no zone), or up to `max` bytes with no whitespace or control
/// characters. It is stored in the node record, so an unbounded one would fail the write.
pub fn zone(zone: &str, max: usize) -> Result<(), MetaError> {
    if zone.len() > max {
        return Err(MetaError::InvalidArgument(format!("zone is {} bytes long; the limit is {max}", zone.len())));
    }
    if let Some(c) = zone.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return Err(MetaError::InvalidArgument(format!("zone {zone:?} contains {c:?}")));
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
        let cases = [("", "empty"), ("1abc", "start"), ("a b", "' '"), ("aaaaaaaaaaaaaaaaa", "limit")];
        for (n, why) in cases {
            let err = name("table name", n, 16).unwrap_err().to_string();
            assert!(err.contains(why), "{n:?}: {err}");
        }
        assert!(table_name("__t_1", 16).unwrap_err().to_string().contains("reserved"));
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

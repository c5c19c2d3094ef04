//! `meta-server` configuration. Sources, later ones winning (the CeresMeta rule): built-in
//! defaults, the TOML file, `SHARDMETA_*` environment variables, command-line flags.
//!
//! | setting | variable |
//! |---|---|
//! | `name` | `SHARDMETA_NAME` |
//! | `grpc_addr` | `SHARDMETA_GRPC_ADDR` |
//! | `advertise_addr` | `SHARDMETA_ADVERTISE_ADDR` |
//! | `data_dir` | `SHARDMETA_DATA_DIR` |
//! | `etcd_endpoints` (comma-separated) | `SHARDMETA_ETCD_ENDPOINTS` |
//! | `election_ttl_ms` | `SHARDMETA_ELECTION_TTL_MS` |
//! | `admin_addr` (empty: no admin port) | `SHARDMETA_ADMIN_ADDR` |
//! | `log_level` | `SHARDMETA_LOG_LEVEL` |
//! | `log_format` (`text` or `json`) | `SHARDMETA_LOG_FORMAT` |
//! | `lease_ms`, `heartbeat_interval_ms`, `request_timeout_ms`, `clock_drift_ms`, `tick_interval_ms`, `load_window_ms`, `node_settle_heartbeats`, `restart_window_default_ms`, `restart_window_max_ms` | `SHARDMETA_LEASE_MS`, … (the name in capitals) |
//! | `default_cluster.name`, `.shard_count`, `.followers_per_shard`, `.topology`, `.min_nodes` | `SHARDMETA_DEFAULT_CLUSTER_NAME`, … |
//!
//! | `[tls]`: `cert`, `key`, `ca`, `client_auth` | `SHARDMETA_TLS_CERT`, … |
//! | `[etcd_tls]`: `ca`, `cert`, `key` | `SHARDMETA_ETCD_TLS_CA`, … |
//! | `[auth]`: `admin_token_file`, `node_token_file` | `SHARDMETA_AUTH_ADMIN_TOKEN_FILE`, …; or the tokens themselves in `SHARDMETA_AUTH_ADMIN_TOKEN` and `SHARDMETA_AUTH_NODE_TOKEN` (never in the file) |
//!
//! | `[scheduler]`: `paused`, `overfull_pct`, `load_floor_units`, … (`SchedulerSettings`) | `SHARDMETA_SCHEDULER_PAUSED`, … ; a running cluster's change with `metactl scheduler set` |
//!
//! An unknown `SHARDMETA_*` variable is refused, as is an unknown key in the file: a typo must
//! not silently fall back to a default. `SHARDMETA_NODE_*` variables belong to data nodes
//! (`client::config`) and are left alone.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

use crate::client::config::{parse_list as list, parse_var as parse};
use crate::client::credentials::{token_from, Secret};
use crate::core::model::Topology;
use crate::core::settings::SchedulerSettings;
use crate::core::{ClusterSpec, CoreConfig};

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// This meta node's name, unique among meta nodes.
    pub name: String,
    /// Where the gRPC server listens.
    pub grpc_addr: String,
    /// What other nodes dial to reach this one; defaults to `grpc_addr`.
    pub advertise_addr: Option<String>,
    /// The embedded store's directory (used when no etcd endpoints are set).
    pub data_dir: PathBuf,
    /// etcd endpoints; empty means a single meta node on the embedded store.
    pub etcd_endpoints: Vec<String>,
    /// The election lease: a dead leader is replaced within about this long. It must outlast
    /// etcd's own leader failover (1-2.5 s with etcd's default 1 s election timeout, during which
    /// no member renews a lease) plus one renewal interval (a sixth of it) and the margin (a
    /// tenth): at 5 s a paused or killed etcd member, its leader included, deposes no meta
    /// leader (`tests/process_suite/etcd_member_faults.rs`); at 3 s one pause of etcd's leader
    /// in six did.
    pub election_ttl_ms: u64,
    /// Where the admin HTTP server listens (`/metrics`, `/health`, `/ready`, `/api/v1`); empty
    /// turns it off.
    pub admin_addr: String,
    /// A tracing filter: `info`, `debug`, `shardmeta=debug,info`, …
    pub log_level: String,
    /// `text` for people, `json` (one object a line) for log shippers.
    pub log_format: String,
    pub lease_ms: u64,
    pub heartbeat_interval_ms: u64,
    pub request_timeout_ms: u64,
    pub clock_drift_ms: u64,
    pub tick_interval_ms: u64,
    /// The window over which shard loads are averaged; decisions trust a load after 3.
    pub load_window_ms: u64,
    /// Heartbeats a node sends before it is given replicas: a one-shot sender gets none.
    pub node_settle_heartbeats: u32,
    /// How long a node in a planned restart may stay down with its followers kept when the
    /// operator names no window, and the longest window an operator may ask for.
    pub restart_window_default_ms: u64,
    pub restart_window_max_ms: u64,
    /// Largest gRPC message accepted or sent.
    pub message_bytes_max: usize,
    pub default_cluster: DefaultCluster,
    /// The scheduler's settings for every cluster until an operator changes them with
    /// `metactl scheduler set` (which is stored, and wins from then on).
    pub scheduler: SchedulerSettings,
    /// TLS on the gRPC port, and when dialing other meta nodes.
    pub tls: TlsSettings,
    /// TLS when dialing etcd.
    pub etcd_tls: EtcdTls,
    /// Bearer tokens (`server::auth`): both, or neither.
    pub auth: AuthSettings,
    /// A deliberate bug for the simulations' checker tests (the `planted-bugs` feature); never
    /// read from a file or the environment.
    #[serde(skip)]
    pub planted_bug: Option<crate::core::PlantedBug>,
}

/// `[tls]`: the gRPC port serves TLS when `cert` and `key` are set.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TlsSettings {
    /// This node's certificate chain (PEM).
    pub cert: Option<PathBuf>,
    /// Its private key (PEM).
    pub key: Option<PathBuf>,
    /// The CA that signed the meta nodes' certificates: trusted when this node dials one
    /// (forwarding, the admin port's calls) and, with `client_auth`, the CA every client's
    /// certificate must chain to.
    pub ca: Option<PathBuf>,
    /// Mutual TLS: refuse clients that present no certificate signed by `ca`. This node then
    /// presents its own certificate when it dials.
    pub client_auth: bool,
}

/// `[etcd_tls]`: etcd is dialled over TLS when `ca` is set.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct EtcdTls {
    /// The CA that signed etcd's certificates.
    pub ca: Option<PathBuf>,
    /// A client certificate and key, for an etcd that checks them (`--client-cert-auth`).
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

/// `[auth]`: where the tokens are. The tokens themselves may come from variables instead.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSettings {
    /// The admin token: DDL and operations.
    pub admin_token_file: Option<PathBuf>,
    /// The node token: heartbeats.
    pub node_token_file: Option<PathBuf>,
    #[serde(skip)]
    pub admin_token: Option<Secret>,
    #[serde(skip)]
    pub node_token: Option<Secret>,
}

impl AuthSettings {
    /// The admin and node tokens, read and checked; `None` when neither is set.
    pub fn tokens(&self) -> Result<Option<(String, String)>, String> {
        let admin = token_from(
            self.admin_token_file.as_deref(),
            self.admin_token.as_ref(),
            "SHARDMETA_AUTH_ADMIN_TOKEN",
        )?;
        let node = token_from(
            self.node_token_file.as_deref(),
            self.node_token.as_ref(),
            "SHARDMETA_AUTH_NODE_TOKEN",
        )?;
        match (admin, node) {
            (Some(a), Some(n)) => Ok(Some((a, n))),
            (None, None) => Ok(None),
            _ => Err("auth: set both the admin and the node token, or neither".into()),
        }
    }
}

/// The cluster that exists from the start.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DefaultCluster {
    pub name: String,
    pub shard_count: u32,
    pub followers_per_shard: u32,
    /// `dynamic` or `static`.
    pub topology: String,
    pub min_nodes: u32,
}

impl Default for DefaultCluster {
    fn default() -> Self {
        DefaultCluster {
            name: "default".into(),
            shard_count: 8,
            followers_per_shard: 0,
            topology: "dynamic".into(),
            min_nodes: 1,
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        let core = CoreConfig::default();
        ServerConfig {
            name: "meta-0".into(),
            grpc_addr: "127.0.0.1:7560".into(),
            advertise_addr: None,
            data_dir: PathBuf::from("./shardmeta-data"),
            etcd_endpoints: Vec::new(),
            election_ttl_ms: 5_000,
            admin_addr: "127.0.0.1:7570".into(),
            log_level: "info".into(),
            log_format: "text".into(),
            lease_ms: core.lease_ms,
            heartbeat_interval_ms: core.heartbeat_interval_ms,
            request_timeout_ms: core.request_timeout_ms,
            clock_drift_ms: core.clock_drift_ms,
            tick_interval_ms: core.tick_interval_ms,
            load_window_ms: core.load_window_ms,
            node_settle_heartbeats: core.node_settle_heartbeats,
            restart_window_default_ms: core.restart_window_default_ms,
            restart_window_max_ms: core.restart_window_max_ms,
            message_bytes_max: 16 * 1024 * 1024,
            default_cluster: DefaultCluster::default(),
            scheduler: core.scheduler,
            tls: TlsSettings::default(),
            etcd_tls: EtcdTls::default(),
            auth: AuthSettings::default(),
            planted_bug: None,
        }
    }
}

/// Command-line values; `None` leaves the lower layers' value.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    pub name: Option<String>,
    pub grpc_addr: Option<String>,
    pub admin_addr: Option<String>,
    pub etcd_endpoints: Option<Vec<String>>,
    pub data_dir: Option<PathBuf>,
}

impl ServerConfig {
    /// Builds the configuration from every source and validates it.
    pub fn load(
        file: Option<&std::path::Path>,
        env: impl IntoIterator<Item = (String, String)>,
        flags: Overrides,
    ) -> Result<ServerConfig, String> {
        let mut cfg = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("cannot read config file {}: {e}", path.display()))?;
                toml::from_str(&text).map_err(|e| format!("config file {}: {e}", path.display()))?
            }
            None => ServerConfig::default(),
        };
        for (var, value) in env {
            // A data node's variables (`client::config`) may share the environment.
            if var.starts_with(crate::client::config::ENV_PREFIX) {
                continue;
            }
            if let Some(key) = var.strip_prefix("SHARDMETA_") {
                cfg.apply_env(key, &var, &value)?;
            }
        }
        if let Some(v) = flags.name {
            cfg.name = v;
        }
        if let Some(v) = flags.grpc_addr {
            cfg.grpc_addr = v;
        }
        if let Some(v) = flags.admin_addr {
            cfg.admin_addr = v;
        }
        if let Some(v) = flags.etcd_endpoints {
            cfg.etcd_endpoints = v;
        }
        if let Some(v) = flags.data_dir {
            cfg.data_dir = v;
        }
        cfg.validate()?;
        Ok(cfg)
    }

    fn apply_env(&mut self, key: &str, var: &str, value: &str) -> Result<(), String> {
        let dc = &mut self.default_cluster;
        match key {
            "NAME" => self.name = value.into(),
            "GRPC_ADDR" => self.grpc_addr = value.into(),
            "ADVERTISE_ADDR" => self.advertise_addr = Some(value.into()),
            "DATA_DIR" => self.data_dir = value.into(),
            "ETCD_ENDPOINTS" => self.etcd_endpoints = list(value),
            "ELECTION_TTL_MS" => self.election_ttl_ms = parse(var, value)?,
            "ADMIN_ADDR" => self.admin_addr = value.into(),
            "LOG_LEVEL" => self.log_level = value.into(),
            "LOG_FORMAT" => self.log_format = value.into(),
            "LEASE_MS" => self.lease_ms = parse(var, value)?,
            "HEARTBEAT_INTERVAL_MS" => self.heartbeat_interval_ms = parse(var, value)?,
            "REQUEST_TIMEOUT_MS" => self.request_timeout_ms = parse(var, value)?,
            "CLOCK_DRIFT_MS" => self.clock_drift_ms = parse(var, value)?,
            "TICK_INTERVAL_MS" => self.tick_interval_ms = parse(var, value)?,
            "LOAD_WINDOW_MS" => self.load_window_ms = parse(var, value)?,
            "NODE_SETTLE_HEARTBEATS" => self.node_settle_heartbeats = parse(var, value)?,
            "RESTART_WINDOW_DEFAULT_MS" => self.restart_window_default_ms = parse(var, value)?,
            "RESTART_WINDOW_MAX_MS" => self.restart_window_max_ms = parse(var, value)?,
            "MESSAGE_BYTES_MAX" => self.message_bytes_max = parse(var, value)?,
            "DEFAULT_CLUSTER_NAME" => dc.name = value.into(),
            "DEFAULT_CLUSTER_SHARD_COUNT" => dc.shard_count = parse(var, value)?,
            "DEFAULT_CLUSTER_FOLLOWERS_PER_SHARD" => dc.followers_per_shard = parse(var, value)?,
            "DEFAULT_CLUSTER_TOPOLOGY" => dc.topology = value.into(),
            "DEFAULT_CLUSTER_MIN_NODES" => dc.min_nodes = parse(var, value)?,
            "TLS_CERT" => self.tls.cert = Some(value.into()),
            "TLS_KEY" => self.tls.key = Some(value.into()),
            "TLS_CA" => self.tls.ca = Some(value.into()),
            "TLS_CLIENT_AUTH" => self.tls.client_auth = parse(var, value)?,
            "ETCD_TLS_CA" => self.etcd_tls.ca = Some(value.into()),
            "ETCD_TLS_CERT" => self.etcd_tls.cert = Some(value.into()),
            "ETCD_TLS_KEY" => self.etcd_tls.key = Some(value.into()),
            "AUTH_ADMIN_TOKEN_FILE" => self.auth.admin_token_file = Some(value.into()),
            "AUTH_NODE_TOKEN_FILE" => self.auth.node_token_file = Some(value.into()),
            "AUTH_ADMIN_TOKEN" => self.auth.admin_token = Some(Secret(value.into())),
            "AUTH_NODE_TOKEN" => self.auth.node_token = Some(Secret(value.into())),
            _ if key.starts_with("SCHEDULER_") => {
                let setting = key["SCHEDULER_".len()..].to_ascii_lowercase();
                if !SchedulerSettings::KEYS.contains(&setting.as_str()) {
                    return Err(format!("unknown environment variable {var}"));
                }
                self.scheduler.set(&setting, value).map_err(|e| format!("{var}: {e}"))?;
            }
            _ => return Err(format!("unknown environment variable {var}")),
        }
        Ok(())
    }

    /// Refuses settings that make no sense, naming the setting.
    pub fn validate(&self) -> Result<(), String> {
        crate::core::validate::name("name", &self.name, 128).map_err(|e| e.to_string())?;
        self.listen_addr()?;
        self.admin_listen_addr()?;
        if !matches!(self.log_format.as_str(), "text" | "json") {
            return Err(format!(
                "log_format {:?} is neither \"text\" nor \"json\"",
                self.log_format
            ));
        }
        for e in &self.etcd_endpoints {
            if e.is_empty() || e.contains(char::is_whitespace) {
                return Err(format!("etcd_endpoints: {e:?} is not an endpoint"));
            }
        }
        if self.election_ttl_ms < 1_000 {
            return Err(format!(
                "election_ttl_ms ({}) must be at least 1000",
                self.election_ttl_ms
            ));
        }
        if self.message_bytes_max < 64 * 1024 {
            return Err(format!(
                "message_bytes_max ({}) must be at least 65536",
                self.message_bytes_max
            ));
        }
        self.core()?.validate()?;
        self.default_cluster_spec()?;
        self.validate_tls()?;
        Ok(())
    }

    /// Which TLS settings go together (the files are read at start, by `server::security`).
    fn validate_tls(&self) -> Result<(), String> {
        let t = &self.tls;
        match (&t.cert, &t.key, &t.ca) {
            (Some(_), None, _) | (None, Some(_), _) => return Err("tls: cert and key are set together".into()),
            (Some(_), Some(_), None) => return Err("tls: ca is needed with cert: it is what this node trusts when it dials another meta node".into()),
            (None, None, _) if t.client_auth => return Err("tls: client_auth needs cert, key and ca".into()),
            _ => {}
        }
        let e = &self.etcd_tls;
        if e.cert.is_some() != e.key.is_some() {
            return Err("etcd_tls: cert and key are set together".into());
        }
        if e.cert.is_some() && e.ca.is_none() {
            return Err("etcd_tls: ca is needed with cert".into());
        }
        if e.ca.is_some() && self.etcd_endpoints.is_empty() {
            return Err("etcd_tls is set but no etcd_endpoints are".into());
        }
        Ok(())
    }

    pub fn listen_addr(&self) -> Result<SocketAddr, String> {
        self.grpc_addr.parse().map_err(|_| {
            format!("grpc_addr {:?} is not host:port with a numeric host", self.grpc_addr)
        })
    }

    /// The admin port's address, or `None` when it is turned off.
    pub fn admin_listen_addr(&self) -> Result<Option<SocketAddr>, String> {
        match self.admin_addr.as_str() {
            "" => Ok(None),
            a => a.parse().map(Some).map_err(|_| {
                format!(
                    "admin_addr {a:?} is not host:port with a numeric host (or empty, for none)"
                )
            }),
        }
    }

    /// What other nodes dial to reach this one.
    pub fn advertised(&self) -> String {
        self.advertise_addr.clone().unwrap_or_else(|| self.grpc_addr.clone())
    }

    pub fn core(&self) -> Result<CoreConfig, String> {
        let cfg = CoreConfig {
            lease_ms: self.lease_ms,
            heartbeat_interval_ms: self.heartbeat_interval_ms,
            request_timeout_ms: self.request_timeout_ms,
            clock_drift_ms: self.clock_drift_ms,
            tick_interval_ms: self.tick_interval_ms,
            load_window_ms: self.load_window_ms,
            node_settle_heartbeats: self.node_settle_heartbeats,
            restart_window_default_ms: self.restart_window_default_ms,
            restart_window_max_ms: self.restart_window_max_ms,
            default_cluster: Some(self.default_cluster_spec()?),
            scheduler: self.scheduler,
            planted_bug: self.planted_bug,
            ..CoreConfig::default()
        };
        cfg.validate()?;
        Ok(cfg)
    }

    pub fn default_cluster_spec(&self) -> Result<ClusterSpec, String> {
        let dc = &self.default_cluster;
        let topology = match dc.topology.as_str() {
            "dynamic" => Topology::Dynamic,
            "static" => Topology::Static,
            other => {
                return Err(format!(
                    "default_cluster.topology {other:?} is neither \"dynamic\" nor \"static\""
                ))
            }
        };
        if dc.shard_count == 0 {
            return Err("default_cluster.shard_count must be at least 1".into());
        }
        if dc.min_nodes == 0 {
            return Err("default_cluster.min_nodes must be at least 1".into());
        }
        crate::core::validate::name("default_cluster.name", &dc.name, 128)
            .map_err(|e| e.to_string())?;
        Ok(ClusterSpec {
            name: dc.name.clone(),
            shard_count: dc.shard_count,
            followers_per_shard: dc.followers_per_shard,
            topology,
            min_nodes: dc.min_nodes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn flags_beat_environment_which_beats_the_file() {
        let dir = std::env::temp_dir().join(format!("shardmeta-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("meta.toml");
        std::fs::write(&file, "name = \"from-file\"\nlease_ms = 20000\n[default_cluster]\nshard_count = 4\n[scheduler]\noverfull_pct = 15\n").unwrap();
        let cfg = ServerConfig::load(
            Some(&file),
            env(&[
                ("SHARDMETA_NAME", "from-env"),
                ("SHARDMETA_LEASE_MS", "15000"),
                ("PATH", "/bin"),
            ]),
            Overrides { name: Some("from-flag".into()), ..Default::default() },
        )
        .unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(
            (cfg.name.as_str(), cfg.lease_ms, cfg.default_cluster.shard_count),
            ("from-flag", 15_000, 4)
        );
        assert_eq!(
            (cfg.scheduler.overfull_pct, cfg.core().unwrap().scheduler.overfull_pct),
            (15, 15)
        );
    }

    #[test]
    fn nonsense_is_refused_by_name() {
        let load = |vars: &[(&str, &str)]| {
            ServerConfig::load(None, env(vars), Overrides::default()).unwrap_err()
        };
        assert!(load(&[("SHARDMETA_LEASE_MS", "500")]).contains("lease_ms"));
        assert!(load(&[("SHARDMETA_DEFAULT_CLUSTER_SHARD_COUNT", "0")]).contains("shard_count"));
        assert!(load(&[("SHARDMETA_GRPC_ADDR", "nowhere")]).contains("grpc_addr"));
        assert!(load(&[("SHARDMETA_ADMIN_ADDR", "nowhere")]).contains("admin_addr"));
        assert!(load(&[("SHARDMETA_LOG_FORMAT", "xml")]).contains("log_format"));
        assert!(load(&[("SHARDMETA_LEASE_MS", "ten")]).contains("SHARDMETA_LEASE_MS"));
        assert!(load(&[("SHARDMETA_LEASE", "1")])
            .contains("unknown environment variable SHARDMETA_LEASE"));
        assert!(load(&[("SHARDMETA_DEFAULT_CLUSTER_TOPOLOGY", "round")]).contains("topology"));
        assert!(
            load(&[("SHARDMETA_SCHEDULER_OVERFULL_PCT", "0")]).contains("scheduler.overfull_pct")
        );
        assert!(load(&[("SHARDMETA_SCHEDULER_TOLERANCE", "1")])
            .contains("unknown environment variable SHARDMETA_SCHEDULER_TOLERANCE"));
        assert!(
            load(&[("SHARDMETA_SCHEDULER_PAUSED", "maybe")]).contains("SHARDMETA_SCHEDULER_PAUSED")
        );
        let over = load(&[("SHARDMETA_RESTART_WINDOW_DEFAULT_MS", "7200000")]);
        assert_eq!(
            over, "restart_window_default_ms (7200000) is over restart_window_max_ms (3600000)",
            "{over}"
        );
    }

    #[test]
    fn the_example_configs_load() {
        for example in ["single-node.toml", "three-meta-etcd.toml", "secure/three-meta-etcd.toml"] {
            let path =
                std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config").join(example);
            ServerConfig::load(Some(&path), Vec::new(), Overrides::default())
                .unwrap_or_else(|e| panic!("{example}: {e}"));
        }
    }

    #[test]
    fn unknown_file_keys_are_refused() {
        let err = toml::from_str::<ServerConfig>("leese_ms = 1").unwrap_err().to_string();
        assert!(err.contains("leese_ms"), "{err}");
        let err =
            toml::from_str::<ServerConfig>("[scheduler]\ntolerance = 1").unwrap_err().to_string();
        assert!(err.contains("tolerance"), "{err}");
        let bad: ServerConfig = toml::from_str("[scheduler]\noverfull_pct = 0").unwrap();
        assert!(bad.validate().unwrap_err().contains("scheduler.overfull_pct"));
    }
}

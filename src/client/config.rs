//! A data node's meta-client settings, in the seeds' shape: the cluster it joins, the meta
//! endpoints, the longest lease it honours and the per-call timeout. Sources, later ones
//! winning, as for `meta-server`: defaults, a TOML file, `SHARDMETA_NODE_*` variables, then
//! whatever the embedding program sets from its own flags.
//!
//! | setting | variable | default |
//! |---|---|---|
//! | `cluster` | `SHARDMETA_NODE_CLUSTER` | `default` |
//! | `meta_endpoints` (comma-separated) | `SHARDMETA_NODE_META_ENDPOINTS` | `127.0.0.1:7560` |
//! | `lease_ms` | `SHARDMETA_NODE_LEASE_MS` | 10000 |
//! | `timeout_ms` | `SHARDMETA_NODE_TIMEOUT_MS` | 5000 |
//! | `token_file` | `SHARDMETA_NODE_TOKEN_FILE`, or the token itself in `SHARDMETA_NODE_TOKEN` | none |
//! | `[tls]`: `ca`, `cert`, `key`, `domain` | `SHARDMETA_NODE_TLS_CA`, … | none: no TLS |
//!
//! `lease_ms` caps every lease meta grants (a shorter lease is always safe: the node only stops
//! leading sooner). An unknown key or `SHARDMETA_NODE_*` variable is refused by name.

use std::path::Path;

use serde::Deserialize;

use super::credentials::{token_from, ClientTls, Credentials, Secret};

/// The prefix of the variables read here; `meta-server` leaves them alone.
pub const ENV_PREFIX: &str = "SHARDMETA_NODE_";

#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct NodeConfig {
    /// The cluster this node joins.
    pub cluster: String,
    /// Meta endpoints, any of them: the client finds the leader.
    pub meta_endpoints: Vec<String>,
    /// The longest lease the node honours, in milliseconds.
    pub lease_ms: u64,
    /// How long one call to meta may take, in milliseconds.
    pub timeout_ms: u64,
    /// The node token meta asks for, where it has tokens.
    pub token_file: Option<std::path::PathBuf>,
    #[serde(skip)]
    pub token: Option<Secret>,
    /// TLS to meta: on once `ca` is set.
    pub tls: ClientTls,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            cluster: "default".into(),
            meta_endpoints: vec!["127.0.0.1:7560".into()],
            lease_ms: 10_000,
            timeout_ms: 5_000,
            token_file: None,
            token: None,
            tls: ClientTls::default(),
        }
    }
}

/// Parses one variable's value, naming the variable when it does not parse.
pub fn parse_var<T: std::str::FromStr>(var: &str, value: &str) -> Result<T, String> {
    value.parse().map_err(|_| format!("{var}={value:?} is not a valid value"))
}

/// A comma-separated list, blanks dropped.
pub fn parse_list(value: &str) -> Vec<String> {
    value.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect()
}

impl NodeConfig {
    /// The file (if any), then the `SHARDMETA_NODE_*` variables among `env`; not yet validated,
    /// so that flags can still override (call [`NodeConfig::validate`] after them).
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<NodeConfig, String> {
        let mut cfg = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("cannot read config file {}: {e}", path.display()))?;
                toml::from_str(&text).map_err(|e| format!("config file {}: {e}", path.display()))?
            }
            None => NodeConfig::default(),
        };
        for (var, value) in env {
            let Some(key) = var.strip_prefix(ENV_PREFIX) else { continue };
            match key {
                "CLUSTER" => cfg.cluster = value,
                "META_ENDPOINTS" => cfg.meta_endpoints = parse_list(&value),
                "LEASE_MS" => cfg.lease_ms = parse_var(&var, &value)?,
                "TIMEOUT_MS" => cfg.timeout_ms = parse_var(&var, &value)?,
                "TOKEN_FILE" => cfg.token_file = Some(value.into()),
                "TOKEN" => cfg.token = Some(Secret(value)),
                "TLS_CA" => cfg.tls.ca = Some(value.into()),
                "TLS_CERT" => cfg.tls.cert = Some(value.into()),
                "TLS_KEY" => cfg.tls.key = Some(value.into()),
                "TLS_DOMAIN" => cfg.tls.domain = Some(value),
                _ => return Err(format!("unknown environment variable {var}")),
            }
        }
        Ok(cfg)
    }

    /// Refuses settings that make no sense, naming the setting.
    pub fn validate(&self) -> Result<(), String> {
        crate::core::validate::name("cluster", &self.cluster, 128).map_err(|e| e.to_string())?;
        if self.meta_endpoints.is_empty() {
            return Err("meta_endpoints: at least one meta endpoint is needed".into());
        }
        if let Some(e) =
            self.meta_endpoints.iter().find(|e| e.is_empty() || e.contains(char::is_whitespace))
        {
            return Err(format!("meta_endpoints: {e:?} is not an endpoint"));
        }
        if !(1_000..=600_000).contains(&self.lease_ms) {
            return Err(format!("lease_ms ({}) must be between 1000 and 600000", self.lease_ms));
        }
        if !(100..=600_000).contains(&self.timeout_ms) {
            return Err(format!("timeout_ms ({}) must be between 100 and 600000", self.timeout_ms));
        }
        Ok(())
    }

    pub fn timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.timeout_ms)
    }

    /// The TLS and token the node presents, with their files read and checked.
    pub fn credentials(&self) -> Result<Credentials, String> {
        let token =
            token_from(self.token_file.as_deref(), self.token.as_ref(), "SHARDMETA_NODE_TOKEN")?;
        Credentials::from_settings(&self.tls, token.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn variables_beat_the_file_and_the_defaults_follow_the_seeds() {
        assert_eq!(
            (NodeConfig::default().lease_ms, NodeConfig::default().timeout_ms),
            (10_000, 5_000)
        );
        let dir = std::env::temp_dir().join(format!("shardmeta-node-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("node.toml");
        std::fs::write(
            &file,
            "cluster = \"orders\"\nmeta_endpoints = [\"m1:7560\", \"m2:7560\"]\nlease_ms = 8000\n",
        )
        .unwrap();
        let vars = env(&[
            ("SHARDMETA_NODE_LEASE_MS", "6000"),
            ("SHARDMETA_NAME", "a meta server's"),
            ("PATH", "/bin"),
        ]);
        let cfg = NodeConfig::load(Some(&file), vars).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        cfg.validate().unwrap();
        let expected = NodeConfig {
            cluster: "orders".into(),
            meta_endpoints: vec!["m1:7560".into(), "m2:7560".into()],
            lease_ms: 6_000,
            ..NodeConfig::default()
        };
        assert_eq!(cfg, expected);
    }

    #[test]
    fn the_example_loads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config").join("node.toml");
        let cfg = NodeConfig::load(Some(&path), Vec::new()).unwrap();
        cfg.validate().unwrap();
        assert_eq!(cfg, NodeConfig::default(), "the example spells out the defaults");
    }

    #[test]
    fn the_secure_example_loads_and_its_token_stays_out_of_logs() {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("config").join("secure").join("node.toml");
        let cfg =
            NodeConfig::load(Some(&path), env(&[("SHARDMETA_NODE_TLS_DOMAIN", "meta.internal")]))
                .unwrap();
        cfg.validate().unwrap();
        assert!(
            cfg.tls.is_set()
                && cfg.token_file.is_some()
                && cfg.tls.domain.as_deref() == Some("meta.internal")
        );
        let cfg =
            NodeConfig::load(None, env(&[("SHARDMETA_NODE_TOKEN", "secret-token-0123456789")]))
                .unwrap();
        assert!(!format!("{cfg:?}").contains("secret-token"));
        assert!(cfg.credentials().is_ok());
        let both = NodeConfig { token_file: Some("t".into()), ..cfg };
        assert!(both.credentials().unwrap_err().contains("give one"));
    }

    #[test]
    fn nonsense_is_refused_by_name() {
        let invalid = |vars: &[(&str, &str)]| {
            NodeConfig::load(None, env(vars)).and_then(|c| c.validate()).unwrap_err()
        };
        assert!(invalid(&[("SHARDMETA_NODE_LEASE_MS", "ten")]).contains("SHARDMETA_NODE_LEASE_MS"));
        assert!(invalid(&[("SHARDMETA_NODE_LEASE_MS", "10")]).contains("lease_ms"));
        assert!(invalid(&[("SHARDMETA_NODE_TIMEOUT", "1")])
            .contains("unknown environment variable SHARDMETA_NODE_TIMEOUT"));
        assert!(invalid(&[("SHARDMETA_NODE_META_ENDPOINTS", " , ")]).contains("meta_endpoints"));
        assert!(invalid(&[("SHARDMETA_NODE_CLUSTER", "")]).contains("cluster"));
        let err = toml::from_str::<NodeConfig>("leese_ms = 1").unwrap_err().to_string();
        assert!(err.contains("leese_ms"), "{err}");
    }
}

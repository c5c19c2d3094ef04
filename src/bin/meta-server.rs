//! `meta-server [--config FILE] [--name NAME] [--grpc-addr HOST:PORT] [--admin-addr HOST:PORT] [--etcd-endpoints A,B,C] [--data-dir DIR]`
//!
//! Without etcd endpoints it runs a single meta node on the embedded store in `--data-dir`.
//! Settings come from defaults, the file, `SHARDMETA_*` variables and flags, later winning.

// Items are `pub` only where another crate may name them; the rest say how far they reach.
#![warn(unreachable_pub)]

use std::path::PathBuf;

use clap::Parser;
use shardmeta::server::config::{Overrides, ServerConfig};

#[derive(Parser)]
#[command(name = "meta-server", version, about = "The shardmeta meta service")]
struct Args {
    /// A TOML config file (see config/).
    #[arg(long)]
    config: Option<PathBuf>,
    /// This meta node's name, unique among meta nodes.
    #[arg(long)]
    name: Option<String>,
    /// Where to serve gRPC.
    #[arg(long, value_name = "HOST:PORT")]
    grpc_addr: Option<String>,
    /// Where to serve the admin HTTP API (`/metrics`, `/health`, `/ready`, `/api/v1`); empty for
    /// none.
    #[arg(long, value_name = "HOST:PORT")]
    admin_addr: Option<String>,
    /// etcd endpoints; none means the embedded store.
    #[arg(long, value_name = "A,B,C", value_delimiter = ',')]
    etcd_endpoints: Option<Vec<String>>,
    /// The embedded store's directory.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
}

fn main() {
    let args = Args::parse();
    let overrides = Overrides {
        name: args.name,
        grpc_addr: args.grpc_addr,
        admin_addr: args.admin_addr,
        etcd_endpoints: args.etcd_endpoints,
        data_dir: args.data_dir,
    };
    let config = match ServerConfig::load(args.config.as_deref(), std::env::vars(), overrides) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("meta-server: {e}");
            std::process::exit(2);
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log_level).unwrap_or_else(|e| {
        eprintln!("meta-server: log_level {:?}: {e}", config.log_level);
        std::process::exit(2);
    });
    // Colour codes only on a terminal: a log file stays plain text that tools can read.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_target(false);
    match config.log_format.as_str() {
        "json" => logs.json().init(),
        _ => logs.with_ansi(ansi).init(),
    }
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a tokio runtime");
    let served = runtime.block_on(shardmeta::server::run(
        config,
        shardmeta::server::signals::first_then_exit_on_second("meta-server"),
    ));
    // Tasks still running (a storage write, a forward) are not waited for past the bound.
    runtime.shutdown_timeout(std::time::Duration::from_millis(500));
    if let Err(e) = served {
        eprintln!("meta-server: {e}");
        std::process::exit(1);
    }
}

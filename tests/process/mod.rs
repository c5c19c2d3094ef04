//! Helpers for tests that run the real binaries: free loopback ports, child processes killed
//! on drop, temporary directories, and the leadership-log analysis.

#![allow(dead_code)]

pub mod ddl;
pub mod metas;
pub mod netns;
pub mod node_kill;
pub mod route_watch;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// Process tests in one binary take turns: they assert timings (failover within a bound),
/// which a machine of two cores cannot keep while several clusters run at once.
pub async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    SERIAL.lock().await
}

/// [`serial`] for a test that is not async.
pub fn serial_blocking() -> tokio::sync::MutexGuard<'static, ()> {
    SERIAL.blocking_lock()
}

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A free port on 127.0.0.1 (the OS picks it; the listener is closed before use).
/// Never the same port twice in one test binary: the listener is closed before the port is
/// used, and the OS may hand the same port to the next caller meanwhile (CI saw a node-agent's
/// port given to the meta-server's admin address a moment later).
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    loop {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("bind loopback")
            .local_addr()
            .expect("local addr")
            .port();
        let mut given = GIVEN.lock().expect("ports lock");
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

/// A temporary directory removed on drop, unless kept.
pub struct TempDir {
    path: PathBuf,
    keep: bool,
}

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let nanos =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
        let dir =
            std::env::temp_dir().join(format!("shardmeta-{tag}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir { path: dir, keep: false }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Keeps the directory after all: a run that passed but missed a goal is worth reading.
    #[allow(dead_code)] // not every test binary that includes this module keeps a directory
    pub fn keep(&mut self) {
        self.keep = true;
    }
}

impl Drop for TempDir {
    /// A failing test keeps its directory (logs, data) to be looked at, and so does every test
    /// under `KEEP_TEST_DIRS=1`.
    fn drop(&mut self) {
        if std::env::var_os("KEEP_TEST_DIRS").is_some() || std::thread::panicking() || self.keep {
            eprintln!("kept {}", self.path.display());
            return;
        }
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// A child process killed (SIGKILL) and reaped on drop.
pub struct Proc {
    pub name: String,
    /// A meta-server's admin HTTP address.
    pub admin: String,
    child: Option<Child>,
}

impl Proc {
    /// Starts `cmd` with its output appended to `log` (a restarted process adds to the log of
    /// the one before).
    pub fn spawn(name: &str, mut cmd: Command, log: &Path) -> Proc {
        let out =
            std::fs::OpenOptions::new().create(true).append(true).open(log).expect("log file");
        cmd.stdout(Stdio::from(out.try_clone().expect("dup log"))).stderr(Stdio::from(out));
        let child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Proc { name: name.into(), admin: String::new(), child: Some(child) }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Waits up to `limit` for the process to exit; its status, or `None` if it still runs.
    pub fn wait_exit(&mut self, limit: std::time::Duration) -> Option<std::process::ExitStatus> {
        let start = std::time::Instant::now();
        let child = self.child.as_mut().expect("running");
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                self.child = None;
                return Some(status);
            }
            if start.elapsed() > limit {
                return None;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid().to_string())
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{sig} {}", self.pid());
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill9();
    }
}

pub fn meta_server(dir: &Path, name: &str, port: u16, extra_env: &[(&str, &str)]) -> Proc {
    meta_server_on(dir, name, &Place::loopback(), port, extra_env)
}

/// Where a process runs: its network namespace (none: this one) and the address it binds.
pub struct Place {
    pub netns: Option<String>,
    pub addr: String,
}

impl Place {
    pub fn loopback() -> Place {
        Place { netns: None, addr: "127.0.0.1".into() }
    }

    /// `program`, to be run here.
    pub fn command(&self, program: &str) -> Command {
        match &self.netns {
            Some(ns) => {
                let mut cmd = Command::new("ip");
                cmd.args(["netns", "exec", ns, program]);
                cmd
            }
            None => Command::new(program),
        }
    }
}

/// [`meta_server`] at `place` (its gRPC and admin ports on the place's address).
pub fn meta_server_on(
    dir: &Path,
    name: &str,
    place: &Place,
    port: u16,
    extra_env: &[(&str, &str)],
) -> Proc {
    let admin = format!("{}:{}", place.addr, free_port());
    let mut cmd = place.command(env!("CARGO_BIN_EXE_meta-server"));
    cmd.args(["--name", name, "--grpc-addr", &format!("{}:{port}", place.addr), "--data-dir"])
        .arg(dir.join(name))
        .env("SHARDMETA_LEASE_MS", "3000")
        .env("SHARDMETA_HEARTBEAT_INTERVAL_MS", "300")
        .env("SHARDMETA_CLOCK_DRIFT_MS", "200")
        .env("SHARDMETA_TICK_INTERVAL_MS", "200")
        .env("SHARDMETA_ADMIN_ADDR", &admin);
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let mut proc = Proc::spawn(name, cmd, &dir.join(format!("{name}.log")));
    proc.admin = admin;
    proc
}

/// A plain HTTP/1.0 GET or POST: the status code and the body.
pub fn http(method: &str, addr: &str, path: &str) -> std::io::Result<(u16, String)> {
    http_with(method, addr, path, "")
}

/// As [`http`], with `headers` ("Name: value\r\n" each) added.
pub fn http_with(
    method: &str,
    addr: &str,
    path: &str,
    headers: &str,
) -> std::io::Result<(u16, String)> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(std::time::Duration::from_secs(5)))?;
    write!(
        stream,
        "{method} {path} HTTP/1.0\r\nHost: {addr}\r\n{headers}Content-Length: 0\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let code = response.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = response.split_once("\r\n\r\n").map_or("", |(_, b)| b).to_owned();
    Ok((code, body))
}

/// Cluster `default`'s nodes as the admin port's API lists them (one page; none while it cannot
/// answer).
pub fn api_nodes(admin: &str) -> Vec<serde_json::Value> {
    let Ok((200, body)) = http("GET", admin, "/api/v1/clusters/default/nodes") else {
        return Vec::new();
    };
    let v: serde_json::Value =
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"));
    v["items"].as_array().cloned().unwrap_or_default()
}

/// The node that leads the most shards, and how many.
pub fn busiest_node(admin: &str) -> (String, u64) {
    let nodes = api_nodes(admin);
    let busiest = nodes.iter().max_by_key(|n| n["shards"].as_u64()).expect("nodes are listed");
    (busiest["name"].as_str().unwrap().to_owned(), busiest["shards"].as_u64().unwrap())
}

pub fn node_agent(dir: &Path, name: &str, port: u16, meta: &str) -> Proc {
    node_agent_with(dir, name, port, meta, &[])
}

/// A node-agent with more flags (`--load-file`, `--zone`, …).
pub fn node_agent_with(dir: &Path, name: &str, port: u16, meta: &str, extra: &[&str]) -> Proc {
    node_agent_env(dir, name, port, meta, extra, &[])
}

/// A node-agent with more flags and `SHARDMETA_NODE_*` variables (TLS, its token).
pub fn node_agent_env(
    dir: &Path,
    name: &str,
    port: u16,
    meta: &str,
    extra: &[&str],
    env: &[(&str, &str)],
) -> Proc {
    node_agent_on(dir, name, &Place::loopback(), port, meta, extra, env)
}

/// [`node_agent_env`] at `place`.
pub fn node_agent_on(
    dir: &Path,
    name: &str,
    place: &Place,
    port: u16,
    meta: &str,
    extra: &[&str],
    env: &[(&str, &str)],
) -> Proc {
    let mut cmd = place.command(env!("CARGO_BIN_EXE_node-agent"));
    cmd.args([
        "--meta-endpoints",
        meta,
        "--name",
        name,
        "--addr",
        &format!("{}:{port}", place.addr),
        "--leadership-log",
    ])
    .arg(dir.join(format!("{name}.lead.jsonl")))
    .args(extra)
    .envs(env.iter().copied());
    Proc::spawn(name, cmd, &dir.join(format!("{name}.log")))
}

/// Runs `metactl` against `endpoint`; its stdout, or a panic with its stderr.
pub fn metactl(endpoint: &str, args: &[&str]) -> String {
    metactl_result(endpoint, args)
        .unwrap_or_else(|stderr| panic!("metactl {args:?} failed: {stderr}"))
}

/// Runs `metactl` against `endpoint`: its stdout, or its stderr when it exits non-zero.
pub fn metactl_result(endpoint: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(env!("CARGO_BIN_EXE_metactl"))
        .arg("--endpoints")
        .arg(endpoint)
        .args(args)
        .output()
        .expect("metactl runs");
    match out.status.success() {
        true => Ok(String::from_utf8_lossy(&out.stdout).into_owned()),
        false => Err(String::from_utf8_lossy(&out.stderr).into_owned()),
    }
}

/// One node's leadership of one shard: closed intervals in wall-clock ms.
pub type Intervals = Vec<(u64, u64)>;

/// Reads a node's leadership log: lease intervals cut short where the node dropped a lease,
/// and the accepted writes.
pub fn read_leadership(path: &Path) -> (BTreeMap<u32, Intervals>, Vec<(u32, u64)>) {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut grants: BTreeMap<u32, Intervals> = BTreeMap::new();
    let mut cuts: BTreeMap<u32, Vec<u64>> = BTreeMap::new();
    let mut writes = Vec::new();
    for line in text.lines() {
        let v: serde_json::Value = match serde_json::from_str(line) {
            Ok(v) => v,
            Err(_) => continue, // a line torn by kill -9
        };
        let shard = v["shard"].as_u64().expect("shard") as u32;
        if let (Some(from), Some(until)) = (v["from"].as_u64(), v["until"].as_u64()) {
            grants.entry(shard).or_default().push((from, until));
        } else if let Some(cut) = v["cut"].as_u64() {
            cuts.entry(shard).or_default().push(cut);
        } else if let Some(at) = v["write"].as_u64() {
            writes.push((shard, at));
        }
    }
    for (shard, intervals) in grants.iter_mut() {
        for (from, until) in intervals.iter_mut() {
            if let Some(&cut) =
                cuts.get(shard).and_then(|c| c.iter().filter(|&&c| c >= *from).min())
            {
                *until = (*until).min(cut);
            }
        }
    }
    (grants, writes)
}

/// Fails if two nodes' leadership of one shard overlaps, or a write was accepted outside the
/// accepting node's leadership.
pub fn assert_single_writer(logs: &[(String, PathBuf)]) {
    let mut writes_checked = 0;
    for (node, path) in logs {
        let (grants, writes) = read_leadership(path);
        for (shard, at) in &writes {
            let inside =
                grants.get(shard).is_some_and(|iv| iv.iter().any(|(f, u)| f <= at && at <= u));
            assert!(
                inside,
                "{node} accepted a write to shard {shard} at {at} outside its leadership"
            );
            writes_checked += 1;
        }
    }
    assert_leadership_disjoint(logs);
    assert!(writes_checked > 0, "no write was accepted: the check proved nothing");
}

/// Fails if two nodes' leadership of one shard overlaps, by each node's lease as its log has it
/// (all processes on this host share one clock); the number of intervals checked.
pub fn assert_leadership_disjoint(logs: &[(String, PathBuf)]) -> usize {
    let mut by_shard: BTreeMap<u32, Vec<(u64, u64, &str)>> = BTreeMap::new();
    for (node, path) in logs {
        for (shard, intervals) in read_leadership(path).0 {
            by_shard
                .entry(shard)
                .or_default()
                .extend(intervals.into_iter().map(|(f, u)| (f, u, node.as_str())));
        }
    }
    let mut checked = 0;
    for (shard, mut iv) in by_shard {
        iv.sort();
        // The furthest any node's leadership reached so far: an interval that starts before
        // another node's reach overlaps it, adjacent in this order or not.
        let mut reach: BTreeMap<&str, u64> = BTreeMap::new();
        for (from, until, node) in iv {
            if let Some((other, end)) = reach.iter().find(|(n, end)| **n != node && **end > from) {
                panic!("shard {shard}: {other} led until {end} but {node} led from {from}");
            }
            let r = reach.entry(node).or_insert(until);
            *r = (*r).max(until);
            checked += 1;
        }
    }
    checked
}

/// An etcd cluster of `members` members on free loopback ports, in `dir`.
pub struct Etcd {
    pub members: Vec<Proc>,
    pub client_urls: Vec<String>,
    dir: PathBuf,
    /// Client and peer port of each member.
    ports: Vec<(u16, u16)>,
    /// Where each member runs.
    places: Vec<Place>,
    certs: Option<PathBuf>,
}

impl Etcd {
    pub fn start(dir: &Path, members: usize) -> Etcd {
        Etcd::start_with(dir, members, None)
    }

    /// Clients over TLS with client certificates (`--client-cert-auth`), from `certs` as
    /// `config/secure/make-certs.sh` makes them; peers in the clear, on loopback.
    pub fn start_with(dir: &Path, members: usize, certs: Option<&Path>) -> Etcd {
        Etcd::start_at(dir, (0..members).map(|_| Place::loopback()).collect(), certs)
    }

    /// A member at each of `places`.
    pub fn start_at(dir: &Path, places: Vec<Place>, certs: Option<&Path>) -> Etcd {
        let members = places.len();
        assert!(
            Command::new("etcd").arg("--version").output().is_ok_and(|o| o.status.success()),
            "etcd is not installed: run ./.ci/setup (Debian package etcd-server)"
        );
        let ports: Vec<(u16, u16)> = (0..members).map(|_| (free_port(), free_port())).collect();
        let client_urls =
            ports.iter().zip(&places).map(|((c, _), p)| format!("{}:{c}", p.addr)).collect();
        let mut etcd = Etcd {
            members: Vec::new(),
            client_urls,
            dir: dir.to_path_buf(),
            ports,
            places,
            certs: certs.map(Path::to_path_buf),
        };
        etcd.members = (0..members).map(|i| etcd.spawn(i, "new")).collect();
        etcd
    }

    fn peer_url(&self, i: usize) -> String {
        format!("http://{}:{}", self.places[i].addr, self.ports[i].1)
    }

    /// Member `i`, joining a cluster in `state` ("new", or "existing" for a member added to a
    /// running cluster); a restart finds its data dir and rejoins whatever the state says.
    fn spawn(&self, i: usize, state: &str) -> Proc {
        let cluster = (0..self.ports.len())
            .map(|i| format!("e{i}={}", self.peer_url(i)))
            .collect::<Vec<_>>()
            .join(",");
        let scheme = if self.certs.is_some() { "https" } else { "http" };
        let (client, peer) = self.ports[i];
        let addr = &self.places[i].addr;
        let mut cmd = self.places[i].command("etcd");
        cmd.args(["--name", &format!("e{i}"), "--data-dir"])
            .arg(self.dir.join(format!("etcd-{i}")))
            .args(["--listen-client-urls", &format!("{scheme}://{addr}:{client}")])
            .args(["--advertise-client-urls", &format!("{scheme}://{addr}:{client}")])
            .args(["--listen-peer-urls", &format!("http://{addr}:{peer}")])
            .args(["--initial-advertise-peer-urls", &format!("http://{addr}:{peer}")])
            .args(["--initial-cluster", &cluster, "--initial-cluster-state", state])
            // As production runs it (and etcd 3.5 on by default): a member back from a partition
            // with a higher raft term asks before it campaigns, instead of deposing the leader.
            .arg("--pre-vote");
        if let Some(certs) = &self.certs {
            cmd.arg("--cert-file")
                .arg(certs.join("server.pem"))
                .arg("--key-file")
                .arg(certs.join("server.key"));
            cmd.arg("--trusted-ca-file").arg(certs.join("ca.pem")).arg("--client-cert-auth");
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(format!("etcd-{i}.log")))
            .expect("etcd log");
        cmd.stdout(Stdio::from(log.try_clone().expect("dup log"))).stderr(Stdio::from(log));
        let child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start etcd member {i}: {e}"));
        Proc { name: format!("etcd-{i}"), admin: String::new(), child: Some(child) }
    }

    /// Starts member `i` again after it was killed or stopped.
    pub fn restart(&mut self, i: usize) {
        self.members[i].kill9();
        self.members[i] = self.spawn(i, "new");
    }

    /// Member `i` replaced as a failed disk is: killed, removed from the cluster through the
    /// others, its data deleted, added back as a new member and started empty, to catch up
    /// from the leader. The cluster must keep a quorum without it.
    pub async fn wipe_and_rejoin(&mut self, i: usize) -> Result<(), String> {
        // etcd's client sets no deadline of its own: a call that meets a member being removed
        // or an election can wait for ever.
        async fn within<T, E: std::fmt::Display>(
            what: &str,
            call: impl std::future::Future<Output = Result<T, E>>,
        ) -> Result<T, String> {
            match tokio::time::timeout(std::time::Duration::from_secs(5), call).await {
                Ok(r) => r.map_err(|e| format!("{what}: {e}")),
                Err(_) => Err(format!("{what}: no answer within 5 s")),
            }
        }
        self.members[i].kill9();
        let others: Vec<String> = (0..self.ports.len())
            .filter(|&j| j != i)
            .map(|j| self.client_urls[j].clone())
            .collect();
        let mut client = within("connect", etcd_client::Client::connect(others, None)).await?;
        let name = format!("e{i}");
        let members = within("member list", client.member_list()).await?;
        if let Some(id) = members
            .members()
            .iter()
            .find(|m| m.name() == name || m.peer_urls().contains(&self.peer_url(i)))
            .map(|m| m.id())
        {
            // A remove sent while the others have no leader yet (the member killed was etcd's
            // leader) is forwarded to the dead one and never answered: etcd 3.4 held it for over
            // 20 s on this machine, where the same remove 3 s later took 12 ms.
            for _ in 0..40 {
                if within("status", client.status())
                    .await
                    .is_ok_and(|s| s.leader() != 0 && s.leader() != id)
                {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(250)).await;
            }
            // A remove that landed though its answer was lost: the list no longer names it.
            let mut attempts = 0;
            while let Err(e) = within("member remove", client.member_remove(id)).await {
                let listed = within("member list", client.member_list()).await;
                if listed.is_ok_and(|l| l.members().iter().all(|m| m.id() != id)) {
                    break;
                }
                attempts += 1;
                if attempts == 3 {
                    return Err(e);
                }
            }
        }
        let _ = std::fs::remove_dir_all(self.dir.join(format!("etcd-{i}")));
        // Removing etcd's leader makes the others elect one first: the add waits for that.
        let mut attempts = 0;
        while let Err(e) = within("member add", client.member_add([self.peer_url(i)], None)).await {
            // An add that landed though its answer was lost: the next says the URL exists.
            if e.contains("exists") {
                break;
            }
            attempts += 1;
            if attempts == 20 {
                return Err(e);
            }
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
        self.members[i] = self.spawn(i, "existing");
        Ok(())
    }

    pub fn endpoints(&self) -> String {
        self.client_urls.join(",")
    }

    /// Which member leads etcd now, as the members that answer within 2 s say; `None` when
    /// none names a leader it can be matched to (an election under way).
    pub async fn leader(&self) -> Option<usize> {
        // Each member that answers: its index, its id, and the leader it names (0 for none).
        let mut said = Vec::new();
        for (i, url) in self.client_urls.iter().enumerate() {
            let status = async { etcd_client::Client::connect([url], None).await?.status().await };
            if let Ok(Ok(s)) = tokio::time::timeout(std::time::Duration::from_secs(2), status).await
            {
                said.push((i, s.header().map(|h| h.member_id()), s.leader()));
            }
        }
        let leader = said.iter().map(|&(_, _, leader)| leader).find(|&l| l != 0)?;
        said.iter().find(|&&(_, id, _)| id == Some(leader)).map(|&(i, _, _)| i)
    }
}

pub fn meta_server_etcd(dir: &Path, name: &str, port: u16, etcd: &str) -> Proc {
    meta_server(
        dir,
        name,
        port,
        &[("SHARDMETA_ETCD_ENDPOINTS", etcd), ("SHARDMETA_ELECTION_TTL_MS", "3000")],
    )
}

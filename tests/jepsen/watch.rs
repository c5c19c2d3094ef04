//! A route watcher that checks the stream it is given: revisions only grow, within a stream
//! and across resumes (a change delivered twice, or one from before where it stands, is a
//! violation), and what it builds from the changes, resyncing when told, is what meta lists
//! at the end: nothing lost across resumes and leader changes.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use shardmeta::client::MetaClient;
use shardmeta::proto::{self, route_change::Kind};

use super::process::node_kill::header;
use tonic::Status;

#[derive(Default, Debug)]
pub struct Watched {
    /// Table name (schema public) → (id, shard).
    pub tables: BTreeMap<String, (u64, u32)>,
    /// Shard → (version, leader name).
    pub shards: BTreeMap<u32, (u64, String)>,
    pub revision: Option<u64>,
    pub streams: usize,
    pub resyncs: usize,
    pub changes: usize,
    pub violations: Vec<String>,
}

impl Watched {
    fn check_revision(&mut self, update: &proto::WatchRoutesResponse) {
        let Some(last) = self.revision else { return };
        if update.revision < last || (update.revision == last && !update.changes.is_empty()) {
            self.violations.push(format!(
                "route watch went back: revision {} with {} changes after {last} (resync {})",
                update.revision,
                update.changes.len(),
                update.resync
            ));
        }
    }

    fn apply(&mut self, update: &proto::WatchRoutesResponse) {
        for change in &update.changes {
            self.changes += 1;
            match &change.kind {
                Some(Kind::Table(t)) if t.schema == "public" => {
                    self.tables.insert(t.name.clone(), (t.id, t.shard));
                }
                // A drop of an older table of the same name leaves the newer one.
                Some(Kind::Dropped(t))
                    if t.schema == "public"
                        && self.tables.get(&t.name).is_some_and(|(id, _)| *id == t.id) =>
                {
                    self.tables.remove(&t.name);
                }
                Some(Kind::Shard(s)) => {
                    let stale = self.shards.get(&s.shard).is_some_and(|(v, _)| *v > s.version);
                    if !stale {
                        self.shards.insert(
                            s.shard,
                            (
                                s.version,
                                s.leader.as_ref().map_or(String::new(), |l| l.name.clone()),
                            ),
                        );
                    }
                }
                _ => {}
            }
        }
        self.revision = Some(update.revision);
    }
}

/// Tables of schema public and shards as meta lists them now.
pub async fn listed(
    meta: &mut MetaClient,
) -> Result<(BTreeMap<String, (u64, u32)>, BTreeMap<u32, (u64, String)>), Status> {
    let tables = meta
        .list_all(proto::ListTablesRequest {
            header: header(),
            schema: "public".into(),
            ..Default::default()
        })
        .await?;
    let shards =
        meta.list_all(proto::ListShardsRequest { header: header(), ..Default::default() }).await?;
    Ok((
        tables.into_iter().map(|t| (t.name, (t.id, t.shard))).collect(),
        shards.into_iter().map(|s| (s.id, (s.version, s.leader))).collect(),
    ))
}

/// Watches until `stop`, resuming after each end from the last revision applied.
pub fn watch(
    endpoints: Vec<String>,
    state: Arc<Mutex<Watched>>,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut meta = MetaClient::new(endpoints.clone(), Duration::from_secs(4)).unwrap();
        let mut lister = MetaClient::new(endpoints, Duration::from_secs(4)).unwrap();
        while !stop.load(Ordering::Relaxed) {
            if let Err(status) = watch_once(&mut meta, &mut lister, &state, &stop).await {
                tracing::debug!(%status, "route watch ended");
            }
            meta.reset();
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
}

async fn watch_once(
    meta: &mut MetaClient,
    lister: &mut MetaClient,
    state: &Mutex<Watched>,
    stop: &AtomicBool,
) -> Result<(), Status> {
    let (_, mut client) = meta.leader().await?;
    let from_revision = state.lock().unwrap().revision.unwrap_or(0);
    let req = proto::WatchRoutesRequest { header: header(), schema: String::new(), from_revision };
    let mut stream = client.watch_routes(req).await?.into_inner();
    state.lock().unwrap().streams += 1;
    loop {
        // A stream from a leader that was cut off or paused may never end: give up on silence.
        let next = tokio::time::timeout(Duration::from_secs(15), stream.message())
            .await
            .map_err(|_| Status::deadline_exceeded("no route change in 15 s"))?;
        let Some(update) = next? else { return Ok(()) };
        if stop.load(Ordering::Relaxed) {
            return Ok(());
        }
        state.lock().unwrap().check_revision(&update);
        if update.resync {
            // Drop what is held and read routes again; the changes after this revision follow
            // on the stream (applying one twice is harmless, missing one is not).
            let (tables, shards) = listed(lister).await?;
            let mut s = state.lock().unwrap();
            s.resyncs += 1;
            s.tables = tables;
            s.shards = shards;
        }
        state.lock().unwrap().apply(&update);
    }
}

/// Where the watcher's view differs from meta's lists (empty: it lost nothing).
pub fn differences(
    watched: &Watched,
    tables: &BTreeMap<String, (u64, u32)>,
    shards: &BTreeMap<u32, (u64, String)>,
) -> Vec<String> {
    let mut out = Vec::new();
    for name in watched.tables.keys().chain(tables.keys()) {
        if watched.tables.get(name) != tables.get(name) {
            out.push(format!(
                "table {name}: watched {:?}, listed {:?}",
                watched.tables.get(name),
                tables.get(name)
            ));
        }
    }
    for (id, (_, leader)) in shards {
        let seen = watched.shards.get(id).map(|(_, l)| l.as_str());
        if seen != Some(leader.as_str()) {
            out.push(format!("shard {id}: watched leader {seen:?}, listed {leader:?}"));
        }
    }
    out.sort();
    out.dedup();
    out
}

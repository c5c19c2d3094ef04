//! The storage auditor: a node of its own that reads etcd every few milliseconds of simulated
//! time, in one transaction that sees the metadata and the election together, and checks
//! - S2: every acknowledged create and drop is in storage (acknowledgements taken *before* the
//!   read, so each one must be visible in it);
//! - S4: whenever the write chain advanced between two reads while one election key held
//!   throughout, the batch that landed carries that key's term;
//! - S5: the catalog's integrity;
//! - F1: a failover promoted a follower that lags only when meta had heard of none in sync
//!   (judged by what `History::told` says the term that wrote it had heard).
//!
//! It also counts how shard leaders moved between reads (promotion, reopen, transfer) and when
//! the topology last changed, for the coverage counters and the quiet-window check (L3). A
//! transfer that starts and finishes between two reads (they take milliseconds) shows only as
//! a leader that changed, and counts as a promotion or a reopen.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use etcd_client::{Client, GetOptions, Txn, TxnOp, TxnOpResponse};
use prost::Message as _;
use shardmeta::check::{self, LandedWrite, LeaderMoves};
use shardmeta::core::model::{Catalog, ClusterCatalog, FenceRecord};
use shardmeta::core::settings::SchedulerSettings;
use shardmeta::core::storage::keys::ROOT;
use shardmeta::core::storage::FENCE_KEY;
use shardmeta::core::{ClusterId, Term};
use shardmeta::server::election::ELECTION_NAME;

use crate::cluster::{CLUSTER, ETCD};
use crate::history::{now_ms, History, Ms};

pub const AUDIT_EVERY: Duration = Duration::from_millis(50);
/// A read that takes longer is abandoned and tried again.
const READ_TIMEOUT: Duration = Duration::from_millis(500);

#[derive(Clone, Debug, Default)]
pub struct Audit {
    pub reads: u64,
    /// When the last read was sent, and when it completed.
    pub read_from: Ms,
    pub read_at: Ms,
    pub moves: LeaderMoves,
    /// When a shard of the default cluster last changed its leader, followers or transfer.
    pub last_change: Ms,
    /// What that change was, for the failure message.
    pub last_change_what: String,
    pub violation: Option<String>,
    pub catalog: Option<ClusterCatalog>,
    /// Failovers that passed over a follower known to lag for one in sync, and that promoted
    /// one known to lag because none in sync was heard (F1).
    pub laggards_passed_over: u64,
    pub laggards_promoted: u64,
}

/// What one read saw of the election: the holder's term (the oldest key's create revision).
fn holder(kvs: &[etcd_client::KeyValue]) -> Option<Term> {
    kvs.iter().map(|kv| kv.create_revision()).min().map(|r| Term(r as u64))
}

fn default_cluster(catalog: &Catalog) -> Option<(ClusterId, &ClusterCatalog)> {
    catalog.clusters.iter().find(|(_, c)| c.record.name == CLUSTER).map(|(&id, c)| (id, c))
}

/// Runs until the process ends; results accumulate in `audit`.
pub async fn run(history: History, audit: Arc<Mutex<Audit>>) {
    let client = loop {
        match Client::connect([ETCD], None).await {
            Ok(c) => break c,
            Err(_) => tokio::time::sleep(AUDIT_EVERY).await,
        }
    };
    let mut kv = client.kv_client();
    let mut last: Option<(FenceRecord, Option<Term>)> = None;
    let mut previous: Option<ClusterCatalog> = None;
    // B1 over the moves for balance each meta term starts (a new leader's pair memory starts
    // afresh), as far as reads 50 ms apart see them.
    let mut steady: Option<(u64, check::Steady)> = None;
    let mut cluster_id: Option<ClusterId> = None;
    loop {
        tokio::time::sleep(AUDIT_EVERY).await;
        // Taken before the read: every acknowledgement in it must be visible in the read.
        let acks = cluster_id.map(|id| history.acks(id));
        let sent = now_ms();
        let txn = Txn::new().and_then([
            TxnOp::get(ROOT, Some(GetOptions::new().with_prefix())),
            TxnOp::get(format!("{ELECTION_NAME}/"), Some(GetOptions::new().with_prefix())),
        ]);
        // An etcd timeout (madsim's etcd may hold a request for seconds first): read again.
        let Ok(Ok(response)) = tokio::time::timeout(READ_TIMEOUT, kv.txn(txn)).await else {
            continue;
        };
        let mut gets = response.op_responses().into_iter().filter_map(|r| match r {
            TxnOpResponse::Get(g) => Some(g),
            _ => None,
        });
        let (Some(meta), Some(election)) = (gets.next(), gets.next()) else { continue };
        let pairs: Vec<(String, Vec<u8>)> = meta
            .kvs()
            .iter()
            .map(|kv| (String::from_utf8_lossy(kv.key()).into_owned(), kv.value().to_vec()))
            .collect();
        let holder = holder(election.kvs());
        let fence = pairs
            .iter()
            .find(|(k, _)| k == FENCE_KEY)
            .and_then(|(_, v)| FenceRecord::decode(v.as_slice()).ok());
        let mut a = audit.lock().expect("audit lock");
        a.reads += 1;
        (a.read_from, a.read_at) = (sent, now_ms());
        let mut fail = |v: String| {
            a.violation.get_or_insert(v);
        };
        let catalog = match Catalog::load(pairs.iter().map(|(k, v)| (k.as_str(), v.as_slice()))) {
            Ok(c) => c,
            // The loader refuses what would break S5 (a shard with two replicas on one node).
            Err(e) => {
                let v = check::Violation {
                    invariant: check::Invariant::Integrity,
                    detail: format!("storage holds a catalog no leader can load: {e}"),
                };
                fail(v.to_string());
                continue;
            }
        };
        if let Err(v) = check::integrity(&catalog) {
            fail(v.to_string());
        }
        let fence_before = last.map(|(f, _)| f);
        if let Some(f) = fence {
            if let Some((before, before_holder)) = last {
                if f != before && before_holder.is_some() && before_holder == holder {
                    let landed = LandedWrite {
                        batch_term: Term(f.term),
                        fence_term: holder.expect("checked"),
                    };
                    if let Err(v) = check::fencing(&[landed]) {
                        fail(v.to_string());
                    }
                }
            }
            last = Some((f, holder));
        }
        let Some((id, cluster)) = default_cluster(&catalog) else { continue };
        cluster_id = Some(id);
        if let Some(mut acks) = acks {
            // A drop sent since the acknowledgements were taken may have landed before the read.
            let dropping = history.drops_sent();
            acks.created.retain(|(_, t), _| !dropping.contains(t));
            if let Err(v) = check::durability(&acks, &catalog) {
                fail(v.to_string());
            }
        }
        if let Some(old) = &previous {
            // Placement only: a table created after the workload stopped bumps a version, but
            // moves nothing.
            let placement = |s: &shardmeta::core::model::ShardRecord| {
                (s.leader, s.followers.clone(), s.transfer)
            };
            if let Some((o, n)) =
                old.shards.iter().zip(&cluster.shards).find(|(o, n)| placement(o) != placement(n))
            {
                a.last_change = now_ms();
                a.last_change_what = format!("shard {} went from {o:?} to {n:?}", o.id);
            }
            a.moves.add(&LeaderMoves::between(old, cluster));
            let term = fence.map_or(0, |f| f.term);
            // F1, when one term wrote everything since the last read.
            if fence_before.is_some_and(|f| f.term == term) {
                match history.told.failovers(Term(term), old, cluster, now_ms()) {
                    Ok(choices) => {
                        for c in choices {
                            a.laggards_passed_over += u64::from(c.passed_over_laggard);
                            a.laggards_promoted += u64::from(c.promoted_laggard);
                        }
                    }
                    Err(v) => {
                        a.violation.get_or_insert(v.to_string());
                    }
                }
            }
            if steady.as_ref().is_none_or(|(t, _)| *t != term) {
                let settings =
                    cluster.scheduler.as_ref().map(SchedulerSettings::from).unwrap_or_default();
                steady = Some((term, check::Steady::new(settings.pair_cooldown_ms)));
            }
            let (_, b1) = steady.as_mut().expect("set above");
            for m in check::load_moves_started(old, cluster) {
                if let Err(v) = b1.observe(now_ms(), m) {
                    a.violation.get_or_insert(v.to_string());
                }
            }
        }
        a.catalog = Some(cluster.clone());
        previous = Some(cluster.clone());
    }
}

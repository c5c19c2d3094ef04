//! Procedure steps on etcd: leader transfers asked for by `WRITERS` concurrent operators, each
//! two stored steps (the start, with its procedure record, and the finish, which deletes it)
//! through the leader's group commit. Against raw etcd transactions of the same shape.

use super::*;

/// Enough shards that transfers in flight, not the wait for nodes, bound the steps: a
/// transfer's finish waits for its old leader to let go and for the next scheduler tick.
const SHARDS: u32 = 2_048;
const STEP_NODES: usize = 8;
/// Between a node's heartbeats: 20 a second, a fast data node.
const HEARTBEAT_PAUSE: Duration = Duration::from_millis(50);

/// The shard's leader and follower, by name.
async fn placements(meta: &str) -> Vec<(String, String)> {
    let mut c = connect(meta, Duration::from_secs(5)).await.expect("connect");
    let req =
        proto::ListShardsRequest { header: header(), page_size: SHARDS, ..Default::default() };
    let shards = c.list_shards(req).await.expect("list shards").into_inner().shards;
    shards
        .into_iter()
        .map(|s| (s.leader, s.followers.first().cloned().unwrap_or_default()))
        .collect()
}

async fn wait_until_led(meta: &str) {
    for _ in 0..600 {
        let all = placements(meta).await;
        if all.len() == SHARDS as usize && all.iter().all(|(l, f)| !l.is_empty() && !f.is_empty()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("shards not all led with a follower after a minute");
}

/// No balancing of its own, and room for a transfer of every shard at once.
async fn pause_scheduler(meta: &str) {
    let mut c = connect(meta, Duration::from_secs(5)).await.expect("connect");
    let status = c
        .scheduler_status(proto::SchedulerStatusRequest { header: header() })
        .await
        .expect("status")
        .into_inner();
    let settings = proto::SchedulerSettings {
        paused: true,
        moves_in_flight_max: SHARDS,
        ..status.settings.expect("settings")
    };
    c.set_scheduler(proto::SetSchedulerRequest { header: header(), settings: Some(settings) })
        .await
        .expect("pause");
}

async fn running(meta: &str) -> usize {
    let mut c = connect(meta, Duration::from_secs(5)).await.expect("connect");
    c.list_procedures(proto::ListProceduresRequest { header: header() })
        .await
        .expect("list")
        .into_inner()
        .procedures
        .len()
}

pub async fn step_ratio() {
    let dir = process::TempDir::new("bench-steps");
    let etcd = process::Etcd::start(dir.path(), 1);
    let env = vec![
        ("SHARDMETA_ETCD_ENDPOINTS".to_string(), etcd.endpoints()),
        ("SHARDMETA_LOG_LEVEL".to_string(), "warn".to_string()),
        ("SHARDMETA_DEFAULT_CLUSTER_SHARD_COUNT".to_string(), SHARDS.to_string()),
        ("SHARDMETA_DEFAULT_CLUSTER_FOLLOWERS_PER_SHARD".to_string(), "1".to_string()),
    ];
    let (meta, stop) = start_meta(env).await;
    let halt = Arc::new(AtomicBool::new(false));
    let nodes: Vec<_> = (0..STEP_NODES)
        .map(|i| {
            tokio::spawn(node_loop(
                meta.clone(),
                i,
                1,
                None,
                HEARTBEAT_PAUSE,
                Arc::new(AtomicBool::new(false)),
                halt.clone(),
                Arc::new(AtomicU64::new(0)),
            ))
        })
        .collect();
    wait_until_led(&meta).await;
    pause_scheduler(&meta).await;

    // Writer w moves the leaders of shards w, w + WRITERS, ... to their followers in turn; a
    // shard whose last transfer has not finished is refused, and the writer goes on.
    let places = Arc::new(placements(&meta).await);
    let mut clients = Vec::new();
    for _ in 0..WRITERS {
        clients.push(connect(&meta, Duration::from_secs(5)).await.expect("connect"));
    }
    let clients = Arc::new(clients);
    // Each transfer swaps the shard's two replicas: `moved[s]` says the follower now leads.
    let moved: Arc<Vec<AtomicBool>> =
        Arc::new((0..SHARDS).map(|_| AtomicBool::new(false)).collect());
    let starts = throughput(move |w, i| {
        let (mut c, moved, places) = (clients[w].clone(), moved.clone(), places.clone());
        let per_writer = SHARDS as u64 / WRITERS as u64;
        let shard = (w as u64 + WRITERS as u64 * (i % per_writer)) as usize;
        async move {
            let (leader, follower) = &places[shard];
            let to = if moved[shard].load(Ordering::Relaxed) { leader } else { follower };
            let req = proto::MoveShardRequest {
                header: header(),
                shard: shard as u32,
                node: to.clone(),
                reopen: false,
            };
            let ok = c.move_shard(req).await.is_ok();
            if ok {
                moved[shard].fetch_xor(true, Ordering::Relaxed);
            } else {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            ok
        }
    })
    .await;
    let unfinished = running(&meta).await as f64;
    halt.store(true, Ordering::Relaxed);
    for n in nodes {
        let _ = n.await;
    }
    let _ = stop.send(());
    // Each start landed one step; each that finished in the window, a second.
    let steps = 2.0 * starts - unfinished / MEASURE.as_secs_f64();

    // The floor: one transaction per step, of the shape of a transfer start alone in a batch
    // (the fence compare twice; the epoch, the shard record and the procedure record).
    let raw = raw_txns(&etcd, |w, i| {
        vec![
            (format!("/bench/epoch/{w}"), vec![1u8; 6]),
            (format!("/bench/shards/{w}/{}", i % 4), vec![1u8; 16]),
            (format!("/bench/procedures/{w}/{i}"), vec![7u8; 60]),
        ]
    })
    .await;
    println!("procedure steps on etcd ({WRITERS} operators moving leaders of {SHARDS} shards on {STEP_NODES} nodes):");
    println!("  transfers started:            {starts:>9.0} /s");
    println!("  steps landed:                 {steps:>9.0} /s");
    println!("  raw etcd transactions:        {raw:>9.0} /s");
    println!("  ratio: {:.2} (target >= 1.0)", steps / raw);
}

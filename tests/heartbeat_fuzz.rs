//! A seeded smoke run of the `heartbeat` fuzz harness, so `cargo test` feeds malformed and
//! hostile heartbeats to a core leading a live cluster without cargo-fuzz: random bytes through
//! the proto decoder, and (since those rarely decode into anything the core acts on) mutations
//! of well-formed heartbeats, while the cluster's real nodes keep heartbeating. No panic, no
//! integrity violation, and no write over the store's limits (the harness checks each).

use prost::Message;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use shardmeta::check::heartbeat_fuzz::{node_heartbeat, run, LiveCluster};
use shardmeta::core::SessionId;
use shardmeta::proto;

#[test]
fn random_bytes_as_heartbeats_never_crash_a_live_core() {
    let mut rng = ChaCha8Rng::seed_from_u64(0x4842);
    let mut live = LiveCluster::new();
    for _ in 0..3_000 {
        let mut data = vec![0u8; (rng.next_u64() % 128) as usize];
        rng.fill_bytes(&mut data);
        run(&mut live, &data);
    }
}

/// One hostile change to a well-formed heartbeat: the shapes a buggy or malicious node sends.
fn mutate(rng: &mut ChaCha8Rng, mut hb: proto::HeartbeatRequest) -> Vec<u8> {
    let pick = rng.next_u64();
    let shard = |id: u32, role: i32| proto::ShardReport {
        id,
        role,
        version: pick % 5,
        ..Default::default()
    };
    match pick % 12 {
        0 => hb.incarnation = rng.next_u64(),
        1 => hb.endpoint = format!("evil{}:1", pick % 3),
        2 => hb.node_name = format!("rogue{}", pick % 50),
        3 => {
            (hb.node_name, hb.zone) =
                (format!("rogue{}", pick % 50), "z".repeat(1 << (10 + rng.next_u64() % 13)))
        }
        4 => hb.node_name = "n".repeat(1 << (pick % 12)),
        5 => {
            hb.stats = Some(proto::NodeStats {
                cpu: f64::NAN,
                capacity: f64::INFINITY,
                load: -1.0,
                ..Default::default()
            })
        }
        6 => hb.shards = (0..(pick % 12) as u32).rev().map(|id| shard(id, 1)).collect(),
        7 => hb.shards = (0..(pick % 12) as u32).map(|id| shard(id, (pick % 4) as i32)).collect(),
        8 => hb.shards = vec![shard(u32::MAX, 1)],
        9 => hb.seq = u64::MAX - pick % 3,
        10 => {
            hb.header = Some(proto::RequestHeader {
                cluster: ["", "nope", "c"][(pick % 3) as usize].into(),
            })
        }
        _ => {
            let mut bytes = hb.encode_to_vec();
            for _ in 0..1 + pick % 4 {
                let at = (rng.next_u64() as usize) % bytes.len().max(1);
                if let Some(b) = bytes.get_mut(at) {
                    *b ^= 1 << (rng.next_u64() % 8);
                }
            }
            return bytes;
        }
    }
    hb.encode_to_vec()
}

#[test]
fn hostile_heartbeats_beside_real_nodes_never_crash_or_break_integrity() {
    let mut rng = ChaCha8Rng::seed_from_u64(0xbad_beef);
    let mut live = LiveCluster::new();
    let led = |live: &LiveCluster| {
        live.core
            .catalog()
            .unwrap()
            .cluster_by_name("c")
            .unwrap()
            .shards
            .iter()
            .filter(|s| s.leader.is_some())
            .count()
    };
    assert_eq!(led(&live), 8, "the cluster is live before the fuzzing starts");
    let before = live.delivered;
    for round in 0..600u64 {
        for node in 0..3 {
            live.heartbeat(SessionId(node + 1), &node_heartbeat(node, 100 + round));
        }
        for _ in 0..4 {
            let base = node_heartbeat(rng.next_u64() % 4, 100 + round);
            let body = mutate(&mut rng, base);
            let mut chunk = vec![(rng.next_u64() % 8) as u8, 0, 0];
            if body.len() <= 255 {
                chunk[2] = body.len() as u8;
                chunk.extend_from_slice(&body);
                run(&mut live, &chunk);
            } else if let Ok(request) = proto::HeartbeatRequest::decode(body.as_slice()) {
                // Too long for a chunk's length byte: hand it in whole.
                live.heartbeat(SessionId(100 + chunk[0] as u64), &request);
            }
        }
        live.advance(250);
    }
    assert_eq!(led(&live), 8, "every shard still has a leader");
    assert!(
        live.delivered - before > 3_000,
        "most hostile heartbeats reached the core ({} did)",
        live.delivered - before
    );
}

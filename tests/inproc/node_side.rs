//! Simulated data nodes (the real `ShardHost` and `NodeSession`) and the client workload's
//! messages.

use super::*;
use shardmeta::core::model;

/// What node `i` reports about itself besides its zone (`a`, `b`, `c` in turn): a disk, hdd on
/// every fourth node, and one of two racks. The rules seeds draw (`faults::rule`) judge them.
fn labels(i: usize) -> Vec<model::Label> {
    let disk = if i % 4 == 3 { "hdd" } else { "ssd" };
    let rack = if i.is_multiple_of(2) { "r0" } else { "r1" };
    vec![model::Label::new("disk", disk), model::Label::new("rack", rack)]
}

impl World {
    pub(super) fn new_session(&mut self, node: usize) -> SessionId {
        self.next_session += 1;
        let s = SessionId(self.next_session);
        self.sessions.insert(s, node);
        s
    }

    pub(super) fn add_node(&mut self) {
        let i = self.nodes.len();
        let zone = ["a", "b", "c"][i % 3];
        let drift = match self.mix.clock_drift {
            ClockDrift::Off => 0,
            ClockDrift::Random => (self.rng.next_u64() % 20_001) as i64 - 10_000,
            ClockDrift::AtBound => {
                drift_bound_ppm(self.config.lease_ms, self.config.clock_drift_ms)
            }
        };
        let session = self.new_session(i);
        let mut node = DataNode::new(i, CLUSTER, zone, labels(i), drift, session);
        node.meta = i % METAS;
        self.nodes.push(node);
        let d = self.rand(1_000);
        self.schedule(Duration(d), Event::NodeHeartbeat(i, 1));
    }

    pub(super) fn heartbeat(&mut self, i: usize, inc: u64) {
        let node = &self.nodes[i];
        if !node.alive || node.incarnation() != inc {
            return;
        }
        self.send_heartbeat(i);
        let next = 900 + self.rng.next_u64() % 200;
        self.schedule(Duration(next), Event::NodeHeartbeat(i, inc));
    }

    /// The one-off heartbeat of a handoff; the timer's beat goes on as before.
    pub(super) fn early_heartbeat(&mut self, i: usize, inc: u64) {
        let node = &mut self.nodes[i];
        if !node.alive || node.incarnation() != inc {
            return;
        }
        node.early_beat = false;
        self.send_heartbeat(i);
    }

    fn send_heartbeat(&mut self, i: usize) {
        self.draw_lags(i);
        let local = self.nodes[i].local(self.now);
        let lag_until = self.nodes[i].lag_until.clone();
        let load = NodeLoad { lag_until: &lag_until, now: self.now };
        let node = &mut self.nodes[i];
        let hb = match node.link.beat(&mut node.host, local, &load) {
            Beat::Send(hb) => hb,
            Beat::Reconnect => {
                // No word from this meta for three heartbeats: try the next one on a new stream.
                self.reconnect(i);
                let node = &mut self.nodes[i];
                let Beat::Send(hb) = node.link.beat(&mut node.host, local, &load) else {
                    unreachable!("a fresh stream heartbeats")
                };
                hb
            }
        };
        let (session, meta) = (self.nodes[i].session, self.nodes[i].meta);
        self.send(Addr::Node(i), Addr::Meta(meta), Msg::Heartbeat { session, hb: *hb });
    }

    /// Each shard node `i` newly follows lags for a while, on half the draws: up to three
    /// leases, so that failovers find followers behind. Shards it no longer holds are forgotten.
    fn draw_lags(&mut self, i: usize) {
        let node = &self.nodes[i];
        let new: Vec<ShardId> = node
            .host
            .shards()
            .iter()
            .filter(|(s, h)| h.role == Role::Follower && !node.lag_until.contains_key(s))
            .map(|(&s, _)| s)
            .collect();
        for s in new {
            let behind = match self.rng.next_u64() % 2 {
                0 => self.rand(3 * self.config.lease_ms),
                _ => 0,
            };
            self.nodes[i].lag_until.insert(s, self.now + Duration(behind));
        }
        let node = &mut self.nodes[i];
        node.lag_until.retain(|s, _| node.host.shards().contains_key(s));
    }

    /// Node `i` is asked to stop: it gives up its leases, says so on its stream, and is gone.
    pub(super) fn stop_node(&mut self, i: usize) {
        if !self.nodes[i].alive {
            return;
        }
        let local = self.nodes[i].local(self.now);
        let node = &mut self.nodes[i];
        let hb = node.link.leave(&mut node.host, local);
        node.alive = false;
        let (session, meta) = (node.session, node.meta);
        self.send(Addr::Node(i), Addr::Meta(meta), Msg::Heartbeat { session, hb });
    }

    /// Node `i` opens a new stream, to the next meta: simulated metas have no addresses to
    /// redirect to, so the node tries each in turn.
    pub(super) fn reconnect(&mut self, i: usize) {
        let session = self.new_session(i);
        let node = &mut self.nodes[i];
        node.link.next_target();
        node.link.opened();
        node.meta = (node.meta + 1) % METAS;
        node.session = session;
    }

    pub(super) fn node_receive(&mut self, i: usize, from: Addr, msg: Msg) {
        if !self.nodes[i].alive {
            return;
        }
        let local = self.nodes[i].local(self.now);
        match msg {
            Msg::ToNode { session, message } if session == self.nodes[i].session => {
                let node = &mut self.nodes[i];
                let applied = node.link.on_message(&mut node.host, &message, local);
                if let Some(at) = applied.beat_at.filter(|_| !node.early_beat) {
                    node.early_beat = true;
                    let inc = node.incarnation();
                    self.schedule(at.saturating_since(local), Event::NodeEarlyHeartbeat(i, inc));
                }
            }
            Msg::HeartbeatRefused { session } if session == self.nodes[i].session => {
                self.nodes[i].link.closed();
                self.reconnect(i);
            }
            Msg::RoutedWrite { shard, version } => {
                let host = &self.nodes[i].host;
                let accepted =
                    host.is_leading(shard, local) && host.shards()[&shard].version == version;
                self.send(Addr::Node(i), from, Msg::RoutedWriteDone { accepted });
            }
            _ => {} // a message for an old stream
        }
    }

    pub(super) fn client_tick(&mut self) {
        let give_up = Duration(self.config.request_timeout_ms + 3_000);
        let spec = self.spec.clone();
        if let Some(send) = self.client.tick(&mut self.rng, self.now, METAS, give_up, &spec) {
            self.client_send(send);
        }
        self.schedule(Duration(CLIENT_EVERY_MS), Event::ClientTick);
    }

    pub(super) fn client_send(&mut self, send: Send) {
        match send {
            Send::Meta(meta, id, req) => {
                self.send(Addr::Client, Addr::Meta(meta), Msg::Request { id, req })
            }
            Send::Node(endpoint, shard, version) => {
                if let Some(n) = self.nodes.iter().position(|n| n.endpoint() == endpoint) {
                    self.send(Addr::Client, Addr::Node(n), Msg::RoutedWrite { shard, version });
                }
            }
        }
    }

    pub(super) fn client_receive(&mut self, msg: Msg) {
        match msg {
            Msg::Reply { id, result } => {
                if let Some(send) = self.client.on_reply(id, result, METAS) {
                    self.client_send(send);
                }
            }
            Msg::RoutedWriteDone { accepted: true, .. } => self.client.writes_accepted += 1,
            Msg::RoutedWriteDone { accepted: false, .. } => self.client.writes_rejected += 1,
            other => panic!("the client does not take {other:?}"),
        }
    }
}

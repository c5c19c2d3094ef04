//! The simulated network: addresses, messages, and the faults a seed turns on (loss,
//! duplication, delay, and one-way partitions).

use std::collections::BTreeSet;

use rand_chacha::rand_core::RngCore;
use rand_chacha::ChaCha8Rng;
use shardmeta::core::storage::{WriteBatch, WriteResult};
use shardmeta::core::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Addr {
    Meta(usize),
    Node(usize),
    Store,
    Client,
}

/// Where the next snapshot page starts: a range of `SNAPSHOT_PREFIXES`, the last key read in it,
/// and the store revision the load began at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PageAt {
    pub range: usize,
    pub after: Option<String>,
    pub revision: u64,
}

#[derive(Clone, Debug)]
pub enum Msg {
    Heartbeat {
        session: SessionId,
        hb: Heartbeat,
    },
    ToNode {
        session: SessionId,
        message: NodeMessage,
    },
    HeartbeatRefused {
        session: SessionId,
    },
    Request {
        id: RequestId,
        req: Request,
    },
    Reply {
        id: RequestId,
        result: Result<Response, MetaError>,
    },
    Write {
        incarnation: u64,
        batch: WriteBatch,
    },
    WriteDone {
        incarnation: u64,
        id: WriteId,
        result: WriteResult,
    },
    /// Campaign for leadership, or renew it; `sent` is the meta's clock at sending.
    Campaign {
        incarnation: u64,
        sent: Instant,
        leading: Option<Term>,
    },
    /// Won `term`: the meta now reads the snapshot page by page, then leads.
    Won {
        incarnation: u64,
        sent: Instant,
        term: Term,
    },
    Renewed {
        incarnation: u64,
        sent: Instant,
        term: Term,
    },
    LostElection {
        incarnation: u64,
    },
    /// Give up the election for `term` (the lease is revoked).
    Resign {
        incarnation: u64,
        term: Term,
    },
    /// Page number `page` of a load (duplicated messages repeat pages; only the one asked for
    /// counts).
    ReadPage {
        incarnation: u64,
        load: u64,
        page: u64,
        at: Option<PageAt>,
    },
    Page {
        incarnation: u64,
        load: u64,
        page: u64,
        pairs: Vec<(String, Vec<u8>)>,
        next: Option<PageAt>,
    },
    /// The page could not be read: a store error, or (`moved_on`) the store changed since the
    /// load began, so the pages would not form one point in time.
    PageFailed {
        incarnation: u64,
        load: u64,
        page: u64,
        moved_on: bool,
    },
    RoutedWrite {
        shard: ShardId,
        version: Version,
    },
    RoutedWriteDone {
        accepted: bool,
    },
}

impl Msg {
    /// A stable name for the event trace.
    pub fn kind(&self) -> u8 {
        match self {
            Msg::Heartbeat { .. } => 1,
            Msg::ToNode { .. } => 2,
            Msg::HeartbeatRefused { .. } => 3,
            Msg::Request { .. } => 4,
            Msg::Reply { .. } => 5,
            Msg::Write { .. } => 6,
            Msg::WriteDone { .. } => 7,
            Msg::Campaign { .. } => 8,
            Msg::Won { .. } => 9,
            Msg::Renewed { .. } => 10,
            Msg::LostElection { .. } => 11,
            Msg::ReadPage { .. } => 12,
            Msg::Page { .. } => 13,
            Msg::PageFailed { .. } => 17,
            Msg::RoutedWrite { .. } => 14,
            Msg::RoutedWriteDone { .. } => 15,
            Msg::Resign { .. } => 16,
        }
    }
}

pub struct Net {
    pub drop_per_mille: u64,
    pub dup_per_mille: u64,
    pub delay_ms: (u64, u64),
    /// Blocked directions: (from, to).
    pub blocked: BTreeSet<(Addr, Addr)>,
}

impl Net {
    /// The delivery delays of one send: none if lost, two if duplicated.
    pub fn route(
        &mut self,
        rng: &mut ChaCha8Rng,
        from: Addr,
        to: Addr,
        may_duplicate: bool,
    ) -> Vec<u64> {
        if self.blocked.contains(&(from, to)) || rng.next_u64() % 1000 < self.drop_per_mille {
            return Vec::new();
        }
        let (lo, hi) = self.delay_ms;
        let delay = |rng: &mut ChaCha8Rng| lo + rng.next_u64() % (hi - lo + 1);
        let mut out = vec![delay(rng)];
        if may_duplicate && rng.next_u64() % 1000 < self.dup_per_mille {
            out.push(delay(rng) * 3);
        }
        out
    }

    pub fn heal(&mut self) {
        self.blocked.clear();
        self.drop_per_mille = 0;
        self.dup_per_mille = 0;
    }

    /// Cuts both directions between `a` and `b`, or only `a` → `b` when `one_way`.
    pub fn cut(&mut self, a: Addr, b: Addr, one_way: bool) {
        self.blocked.insert((a, b));
        if !one_way {
            self.blocked.insert((b, a));
        }
    }
}

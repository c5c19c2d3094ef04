//! Why the scheduler moves a shard: a word for logs, events and operators, below every room
//! that names it.

/// What a move is for; for the event log and for operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cause {
    /// A shard without a leader got one.
    Assign,
    /// Its leader's node died.
    Failover,
    /// A follower slot was empty or on a node that is leaving.
    Repair,
    /// Its leader's node is being drained.
    Drain,
    /// Leader counts were uneven (while load is too low to balance by).
    LeaderCount,
    /// Its leader's node was overfull.
    Load,
    /// An operator asked for it.
    Operator,
    /// A transfer decided earlier completes.
    Finish,
    /// A step of a shard split.
    Split,
    /// A step of a shard merge.
    Merge,
    /// Its leader's node is slow (or became slow, or well again).
    Slow,
    /// A replica left a node above its disk high-water mark.
    Disk,
    /// Its leader's node is about to restart, or came back from a planned restart.
    Restart,
    /// Its replicas or leader sat against the cluster's placement rule.
    Rule,
}

// `ALL` is in declaration order: checked when compiling.
const _: () = {
    let mut i = 0;
    while i < Cause::ALL.len() {
        assert!(Cause::ALL[i] as usize == i);
        i += 1;
    }
};

impl Cause {
    /// In declaration order, so that `cause as usize` is its position here.
    pub const ALL: [Cause; 14] = [
        Cause::Assign,
        Cause::Failover,
        Cause::Repair,
        Cause::Drain,
        Cause::LeaderCount,
        Cause::Load,
        Cause::Operator,
        Cause::Finish,
        Cause::Split,
        Cause::Merge,
        Cause::Slow,
        Cause::Disk,
        Cause::Restart,
        Cause::Rule,
    ];

    /// Its number in stored records: its position in [`Cause::ALL`] plus one (0 is none).
    pub fn code(self) -> u32 {
        self as u32 + 1
    }

    /// The cause stored as `code`; `None` for 0 or a code this build does not know.
    pub fn from_code(code: u32) -> Option<Cause> {
        Cause::ALL.get((code as usize).checked_sub(1)?).copied()
    }

    /// The word logs, events, metrics and `metactl events` use for it.
    pub fn name(self) -> &'static str {
        match self {
            Cause::Assign => "assign",
            Cause::Failover => "failover",
            Cause::Repair => "repair",
            Cause::Drain => "drain",
            Cause::LeaderCount => "leader-count",
            Cause::Load => "load",
            Cause::Operator => "operator",
            Cause::Finish => "finish",
            Cause::Split => "split",
            Cause::Merge => "merge",
            Cause::Slow => "slow",
            Cause::Disk => "disk",
            Cause::Restart => "restart",
            Cause::Rule => "rule",
        }
    }
}

//! A data node's own metrics, for the node to serve on its `/metrics` beside its storage
//! engine's: the heartbeat loop ([`super::node::run`]) counts into them. With the
//! `client-metrics` feature (on with `server`) they are Prometheus series, `shardmeta_client_*`,
//! rendered by [`encode`]; without it every call here is a no-op and nothing is linked in.

use std::time::Duration;

use super::shard_host::{HostCounters, ShardHost};
use crate::core::Instant;

/// How a heartbeat stream ended, for `shardmeta_client_streams_ended_total{how}`.
#[derive(Clone, Copy, Debug)]
pub enum StreamEnd {
    /// Meta sent the node to another meta node (a follower, or a leader stepping down).
    Redirected,
    /// Meta ended it with a status (a refusal, a shutdown).
    Refused,
    /// The connection ended, or meta stopped answering.
    Lost,
}

/// A counter family labelled by `key`, with one counter created up front for each of `values`:
/// code on a hot path counts into those directly, without the family's lookup (a lock).
#[cfg(feature = "client-metrics")]
pub(crate) fn counters_by<const N: usize>(
    key: &'static str,
    values: [&str; N],
) -> (Labelled, [prometheus_client::metrics::counter::Counter; N]) {
    let family = Labelled::default();
    let counters = values.map(|v| family.get_or_create(&vec![(key, v.to_string())]).clone());
    (family, counters)
}

/// Label pairs, as both the client's and the server's metrics name them.
#[cfg(feature = "client-metrics")]
pub(crate) type Labels = Vec<(&'static str, String)>;
#[cfg(feature = "client-metrics")]
pub(crate) type Labelled = prometheus_client::metrics::family::Family<
    Labels,
    prometheus_client::metrics::counter::Counter,
>;

#[cfg(feature = "client-metrics")]
mod exported {
    use std::sync::LazyLock;

    use prometheus_client::encoding::text::encode;
    use prometheus_client::metrics::counter::Counter;
    use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
    use prometheus_client::registry::Registry;

    use super::StreamEnd;

    pub(super) struct ClientMetrics {
        pub registry: Registry,
        pub heartbeats_sent: Counter,
        pub heartbeat_rtt: Histogram,
        pub streams_opened: Counter,
        pub streams_ended: [Counter; 3],
        pub self_fences: Counter,
        pub leases_revoked: Counter,
        pub stale_commands: Counter,
        pub leases_held: prometheus_client::metrics::gauge::Gauge,
    }

    pub(super) static METRICS: LazyLock<ClientMetrics> = LazyLock::new(|| {
        let mut root = Registry::default();
        let r = root.sub_registry_with_prefix("shardmeta_client");
        let m = ClientMetrics {
            registry: Registry::default(),
            heartbeats_sent: Counter::default(),
            // 100 µs to about 6.5 s.
            heartbeat_rtt: Histogram::new(exponential_buckets(0.000_1, 2.0, 17)),
            streams_opened: Counter::default(),
            streams_ended: Default::default(),
            self_fences: Counter::default(),
            leases_revoked: Counter::default(),
            stale_commands: Counter::default(),
            leases_held: Default::default(),
        };
        r.register("heartbeats_sent", "Heartbeats sent to meta", m.heartbeats_sent.clone());
        r.register(
            "heartbeat_rtt_seconds",
            "From sending a heartbeat to meta's answer to it",
            m.heartbeat_rtt.clone(),
        );
        r.register(
            "streams_opened",
            "Heartbeat streams opened: every one after the first is a reconnect",
            m.streams_opened.clone(),
        );
        let (ended, held) = super::counters_by("how", ["redirected", "refused", "lost"]);
        r.register(
            "streams_ended",
            "Heartbeat streams ended, by how: redirected, refused (a status from meta) or lost",
            ended,
        );
        r.register(
            "self_fences",
            "Leases that ran out before meta renewed them: the node stopped leading on its own",
            m.self_fences.clone(),
        );
        r.register("leases_revoked", "Leases meta withheld or took back", m.leases_revoked.clone());
        r.register(
            "stale_commands",
            "Commands refused for a stale term or version",
            m.stale_commands.clone(),
        );
        r.register(
            "leases_held",
            "Shards this node leads under a lease that has not run out",
            m.leases_held.clone(),
        );
        ClientMetrics { registry: root, streams_ended: held, ..m }
    });

    pub(super) fn end_index(how: StreamEnd) -> usize {
        match how {
            StreamEnd::Redirected => 0,
            StreamEnd::Refused => 1,
            StreamEnd::Lost => 2,
        }
    }

    pub(super) fn text() -> String {
        let mut out = String::new();
        encode(&mut out, &METRICS.registry).expect("writing to a String cannot fail");
        out
    }
}

/// What [`encode`]'s text is, for the `Content-Type` of a `/metrics` answer: Prometheus reads
/// counters' `_total` samples right only when told it is OpenMetrics.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The OpenMetrics text of the node's metrics (empty without `client-metrics`).
pub fn encode() -> String {
    #[cfg(feature = "client-metrics")]
    return exported::text();
    #[cfg(not(feature = "client-metrics"))]
    String::new()
}

pub(crate) fn heartbeat_sent() {
    #[cfg(feature = "client-metrics")]
    exported::METRICS.heartbeats_sent.inc();
}

pub(crate) fn answered(_rtt: Duration) {
    #[cfg(feature = "client-metrics")]
    exported::METRICS.heartbeat_rtt.observe(_rtt.as_secs_f64());
}

pub(crate) fn stream_opened() {
    #[cfg(feature = "client-metrics")]
    exported::METRICS.streams_opened.inc();
}

pub(crate) fn stream_ended(_how: StreamEnd) {
    #[cfg(feature = "client-metrics")]
    exported::METRICS.streams_ended[exported::end_index(_how)].inc();
}

/// Counts what the host's counters gained since `seen`, then remembers them; and how many
/// leases the host holds at `now`.
pub(crate) fn host(seen: &mut HostCounters, host: &ShardHost, _now: Instant) {
    let now = &host.counters;
    #[cfg(feature = "client-metrics")]
    {
        let m = &*exported::METRICS;
        m.leases_held.set(host.shards().keys().filter(|&&shard| host.is_leading(shard, _now)).count() as i64);
        m.self_fences.inc_by(now.lease_expiries.saturating_sub(seen.lease_expiries));
        m.leases_revoked.inc_by(now.lease_revocations.saturating_sub(seen.lease_revocations));
        let stale = |c: &HostCounters| c.stale_term_rejections + c.stale_version_rejections;
        m.stale_commands.inc_by(stale(now).saturating_sub(stale(seen)));
    }
    *seen = *now;
}

//! Leader election through etcd: a lease kept alive, then a campaign. The term handed to the
//! core is the revision of the leader key, which only grows. Leadership is valid until the
//! last keep-alive's *send* time plus the lease TTL, less a margin: the lease in etcd lasts at
//! least that long, and a core past that instant stops acting by itself. Renewals go through
//! every etcd member at once until that deadline (see [`keep_alive`]); etcd saying the lease is
//! gone, the deadline passing, or a resign command ends leadership.

use std::time::Duration;

use etcd_client::{Client, LeaderKey, ResignOptions};
use prost::Message;
use tokio::sync::{mpsc, watch};

use super::driver::{Clock, ElectionCommand, Inbound};
use super::storage::etcd::{EtcdStore, LeaderFence};
use super::storage::load::{LoadBackoff, LoadCause, LoadError};
use super::storage::standby::Standby;
use super::LeaderView;
use crate::core::model::FenceRecord;
use crate::core::storage::Snapshot;
use crate::core::{Duration as CoreDuration, Instant, Leadership, Term};

/// Outside the storage root, so that snapshots never include election keys.
pub const ELECTION_NAME: &str = "/shardmeta/election/v1";

/// Why a term of leading ended.
enum Ended {
    Shutdown,
    /// The lease was lost or the term resigned: campaign again at once.
    Lost,
    /// The snapshot did not load: campaign again after this pause.
    LoadFailed(Duration),
}

pub struct EtcdElection {
    pub client: Client,
    /// One client per etcd endpoint, for renewals that must not wait on a dead member.
    pub members: Vec<Client>,
    pub store: EtcdStore,
    /// `name@endpoint`: who leads, as followers read it.
    pub value: String,
    pub ttl: Duration,
    pub driver: mpsc::Sender<Inbound>,
    pub clock: Clock,
    pub leader: LeaderView,
}

/// `name@endpoint` → endpoint.
fn endpoint_of(value: &[u8]) -> Option<String> {
    let v = std::str::from_utf8(value).ok()?;
    v.rsplit_once('@').map(|(_, e)| e.to_owned())
}

impl EtcdElection {
    /// Campaigns for ever; returns when `commands` closes or asks to shut down.
    pub async fn run(self, mut commands: mpsc::UnboundedReceiver<ElectionCommand>) {
        tokio::task::spawn(observe_leader(self.client.clone(), self.leader.clone(), self.ttl / 3));
        let margin = CoreDuration((self.ttl.as_millis() as u64 / 10).max(100));
        let mut backoff = LoadBackoff::default();
        // Follows the catalog while this node does not lead; handed over on winning.
        let mut standby: Option<Standby> = None;
        loop {
            standby.get_or_insert_with(|| Standby::start(self.store.clone()));
            let (mut leases, mut election) =
                (self.client.lease_client(), self.client.election_client());
            let asked = self.clock.now();
            let (lease, granted_s) =
                match leases.grant((self.ttl.as_secs().max(1)) as i64, None).await {
                    Ok(l) => (l.id(), l.ttl().max(0) as u64),
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot get an etcd lease; retrying");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        continue;
                    }
                };
            let (valid_tx, mut valid_rx) =
                watch::channel(Some(lease_deadline(asked, granted_s, margin)));
            let keeper = tokio::task::spawn(keep_alive(
                self.members.clone(),
                lease,
                self.ttl,
                self.clock,
                margin,
                valid_tx,
            ));
            let won = tokio::select! {
                biased; // a fixed order: see `client::node`
                _ = wait_lost(&mut valid_rx) => {
                    keeper.abort();
                    continue;
                }
                cmd = commands.recv() => {
                    keeper.abort();
                    let _ = leases.revoke(lease).await;
                    match cmd {
                        None | Some(ElectionCommand::Shutdown) => return,
                        Some(ElectionCommand::Resign(_)) => continue,
                    }
                }
                r = election.campaign(ELECTION_NAME, self.value.clone(), lease) => r,
            };
            let key = match won.map(|r| r.leader().cloned()) {
                Ok(Some(k)) => k,
                // The client's request timeout ends a campaign that is still waiting behind the
                // leader: that is a standby's normal state, not a failure worth a warning.
                Err(etcd_client::Error::GRpcStatus(s))
                    if matches!(
                        s.code(),
                        tonic::Code::Cancelled | tonic::Code::DeadlineExceeded
                    ) =>
                {
                    tracing::debug!(status = %s.message(), "campaign still waiting behind the leader; campaigning again");
                    keeper.abort();
                    let _ = leases.revoke(lease).await;
                    continue;
                }
                other => {
                    tracing::warn!(?other, "campaign failed; retrying");
                    keeper.abort();
                    let _ = leases.revoke(lease).await;
                    continue;
                }
            };
            let ended = self
                .lead(key.clone(), standby.take(), &mut valid_rx, &mut commands, &mut backoff)
                .await;
            keeper.abort();
            self.store.set_fence(None);
            self.leader.lost(Term(key.rev() as u64));
            let _ = self.driver.send(Inbound::Leadership(Leadership::Lost)).await;
            let _ = election.resign(Some(ResignOptions::new().with_leader(key))).await;
            let _ = leases.revoke(lease).await;
            match ended {
                Ended::Shutdown => return self.learn_successor(&mut election).await,
                Ended::Lost => {}
                // Stand aside before campaigning again: another meta node may load where this one
                // could not, and if none can, the attempts stay spaced out instead of a tight loop.
                Ended::LoadFailed(pause) => tokio::select! {
                    biased; // a fixed order: see `client::node`
                    _ = tokio::time::sleep(pause) => {}
                    cmd = commands.recv() => if matches!(cmd, None | Some(ElectionCommand::Shutdown)) { return },
                },
            }
        }
    }

    /// Leads until the lease is lost, the snapshot fails to load or a command ends it.
    async fn lead(
        &self,
        key: LeaderKey,
        standby: Option<Standby>,
        valid: &mut watch::Receiver<Option<Instant>>,
        commands: &mut mpsc::UnboundedReceiver<ElectionCommand>,
        backoff: &mut LoadBackoff,
    ) -> Ended {
        let term = Term(key.rev() as u64);
        let fence =
            LeaderFence { key: key.key().to_vec(), value: self.value.clone().into_bytes(), term };
        self.store.set_fence(Some(fence.clone()));
        let snapshot =
            match self.snapshot_with_fence(&fence, standby).await {
                Ok(s) => {
                    backoff.succeeded();
                    s
                }
                Err(e) => {
                    return Ended::LoadFailed(backoff.failed(
                        "cannot load metadata after winning the meta election; resigning",
                        &e,
                    ))
                }
            };
        let Some(valid_until) = *valid.borrow() else { return Ended::Lost };
        tracing::info!(?term, "won the meta election");
        self.leader.lead(term, valid_until);
        if self
            .driver
            .send(Inbound::Leadership(Leadership::Gained { term, valid_until, snapshot }))
            .await
            .is_err()
        {
            return Ended::Shutdown;
        }
        loop {
            tokio::select! {
                biased; // a fixed order: see `client::node`
                changed = valid.changed() => {
                    let current = *valid.borrow();
                    match (changed, current) {
                        (Ok(()), Some(valid_until)) => {
                            self.leader.lead(term, valid_until);
                            let _ = self.driver.send(Inbound::Leadership(Leadership::Renewed { term, valid_until })).await;
                        }
                        _ => {
                            tracing::warn!(?term, "election lease lost; stepping down");
                            return Ended::Lost;
                        }
                    }
                }
                cmd = commands.recv() => match cmd {
                    Some(ElectionCommand::Resign(t)) if t == term => {
                        tracing::warn!(?term, "resigning");
                        return Ended::Lost;
                    }
                    Some(ElectionCommand::Resign(_)) => {}
                    None | Some(ElectionCommand::Shutdown) => return Ended::Shutdown,
                }
            }
        }
    }

    /// After resigning to shut down: waits briefly for a follower to win, so that the
    /// heartbeat streams this node ends can be sent to it. Followers campaign all the time, so
    /// one wins within milliseconds of the resign when any is up; on an etcd slowed by a busy
    /// disk it has taken over a second, which is why the wait uses most of the resign bound.
    async fn learn_successor(&self, election: &mut etcd_client::ElectionClient) {
        let started = tokio::time::Instant::now();
        while started.elapsed() < SUCCESSOR_WAIT {
            if let Some((_, Some((endpoint, term)))) =
                named_leader(election).await.filter(|(value, _)| *value != self.value.as_bytes())
            {
                tracing::info!(successor = %endpoint, after_ms = started.elapsed().as_millis() as u64, "successor named; heartbeat streams go to it");
                self.leader.observe(endpoint, term);
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tracing::warn!(
            waited_ms = SUCCESSOR_WAIT.as_millis() as u64,
            "no successor named; heartbeat streams end without a redirect"
        );
    }

    /// The snapshot a new leader starts from: the warm standby's if it is current, else one
    /// loaded now; with the write chain's fence record created if storage has none yet (etcd
    /// cannot compare a value that does not exist).
    async fn snapshot_with_fence(
        &self,
        fence: &LeaderFence,
        standby: Option<Standby>,
    ) -> Result<Snapshot, LoadError> {
        let warm = match standby {
            Some(s) => s.take_over().await,
            None => None,
        };
        let mut snapshot = match warm {
            Some(s) => s,
            None => self.store.snapshot().await?,
        };
        if snapshot.fence.is_none() {
            let initial = FenceRecord { term: 0, seq: 0 }.encode_to_vec();
            self.store
                .ensure_fence(fence, initial.clone())
                .await
                .map_err(|e| LoadError::new(LoadCause::Unavailable, e))?;
            snapshot.fence = Some(initial);
        }
        Ok(snapshot)
    }
}

/// How much sooner than its TTL after a renewal the etcd underneath may expire a lease. Real
/// etcd expires it no sooner than the TTL after the renewal reached it (a leader change only
/// extends it). madsim's etcd ages leases once a second, so a lease there may expire up to a
/// second early: a leader that trusted the full TTL kept acting after another had won.
const EXPIRY_SLACK: CoreDuration = CoreDuration(if cfg!(madsim) { 1_000 } else { 0 });

/// Until when leadership surely holds on a lease that etcd granted or renewed for `granted_s`
/// seconds, in answer to a request sent at `sent`: etcd counts the TTL from when the request
/// reached it, which is no sooner, and `margin` covers clock rates. The TTL is etcd's answer,
/// not the configured one: etcd grants whole seconds.
fn lease_deadline(sent: Instant, granted_s: u64, margin: CoreDuration) -> Instant {
    sent + CoreDuration((granted_s * 1_000).saturating_sub(margin.0 + EXPIRY_SLACK.0))
}

/// How long a meta node that resigned to shut down waits for a successor to be named: within
/// the resign bound of `server::run` (2.5 s), which also covers the resign itself.
const SUCCESSOR_WAIT: Duration = Duration::from_millis(2_000);

/// Pause before a renewal that failed through one member is tried through it again.
const RENEW_RETRY: Duration = Duration::from_millis(100);

/// Renewals per lease TTL, which is also how long one attempt may wait for its answer. When the
/// etcd member that leads etcd is paused, no member renews anything until etcd has elected
/// another (one to two of its election timeouts, 1-2 s by default): renewing often leaves the
/// most of the TTL for that, and a short wait per attempt gives up on a hung request soon.
const RENEWALS_PER_TTL: u32 = 6;

/// What one member's renewer heard.
enum Answer {
    /// Renewed for this many seconds, by a request sent at this instant.
    Renewed(Instant, u64),
    /// etcd says the lease is gone.
    Gone,
}

/// The renewers of one lease, stopped when the keep-alive that owns them ends or is aborted.
struct Renewers(Vec<tokio::task::JoinHandle<()>>);

impl Drop for Renewers {
    fn drop(&mut self) {
        self.0.iter().for_each(|r| r.abort());
    }
}

/// Keeps the lease alive; publishes how long leadership surely lasts, or `None` once lost.
///
/// A failed renewal is not a lost lease: the lease in etcd lives until its own deadline, and
/// any member with quorum can renew it. So the lease is renewed through every member at once
/// (`members` holds one client per endpoint, so no balancer has to notice a dead one first),
/// and the latest answer from any of them sets the deadline. Leadership ends only when the
/// deadline has passed with no renewal, or when etcd says the lease is gone. One etcd member
/// killed, paused or restarted therefore costs no meta election, and a renewal never waits
/// out a hung member before it tries another: when etcd's own leader is paused, the lease is
/// renewed as soon as etcd has elected the next. Safety never rests on this loop: the core
/// stops acting at the published deadline whatever happens here.
async fn keep_alive(
    members: Vec<Client>,
    lease: i64,
    ttl: Duration,
    clock: Clock,
    margin: CoreDuration,
    valid: watch::Sender<Option<Instant>>,
) {
    let Some(mut deadline) = *valid.borrow() else { return };
    let (tx, mut heard) = mpsc::unbounded_channel();
    let _renewers = Renewers(
        members
            .into_iter()
            .enumerate()
            .map(|(i, m)| tokio::task::spawn(renew_through(i, m, lease, ttl, clock, tx.clone())))
            .collect(),
    );
    drop(tx);
    loop {
        let now = clock.now();
        if now >= deadline {
            tracing::warn!(lease, "no etcd member renewed the election lease before its deadline");
            let _ = valid.send(None);
            return;
        }
        let remaining = Duration::from_millis(deadline.saturating_since(now).0);
        tokio::select! {
            biased; // a fixed order: see `client::node`
            answer = heard.recv() => match answer {
                Some(Answer::Renewed(sent, granted_s)) => {
                    let renewed = lease_deadline(sent, granted_s, margin);
                    if renewed > deadline {
                        deadline = renewed;
                        let _ = valid.send(Some(deadline));
                    }
                }
                // Every renewer ends only after sending `Gone`, so `None` cannot come first.
                Some(Answer::Gone) | None => {
                    tracing::warn!(lease, "etcd says the election lease is gone");
                    let _ = valid.send(None);
                    return;
                }
            },
            _ = tokio::time::sleep(remaining) => {}
        }
    }
}

/// Renews `lease` through one member for ever, reporting each answer, until etcd says the
/// lease is gone or the keep-alive stops listening. A member that fails is logged once, when
/// it starts failing and when it works again, not at every retry.
async fn renew_through(
    member: usize,
    client: Client,
    lease: i64,
    ttl: Duration,
    clock: Clock,
    heard: mpsc::UnboundedSender<Answer>,
) {
    let every = ttl / RENEWALS_PER_TTL;
    let mut stream: Option<Renewer> = None;
    let mut failing = false;
    loop {
        let sent = clock.now();
        let answer = tokio::time::timeout(every, renew(&client, lease, &mut stream))
            .await
            .unwrap_or_else(|_| Err(Renewal::Failed("no answer".into())));
        match answer {
            Ok(granted_s) => {
                if std::mem::take(&mut failing) {
                    tracing::info!(
                        lease,
                        member,
                        "renewing the election lease through this etcd member works again"
                    );
                }
                if heard.send(Answer::Renewed(sent, granted_s)).is_err() {
                    return;
                }
                tokio::time::sleep(every).await;
            }
            Err(Renewal::Gone) => {
                let _ = heard.send(Answer::Gone);
                return;
            }
            Err(Renewal::Failed(why)) => {
                stream = None;
                if !std::mem::replace(&mut failing, true) {
                    tracing::warn!(lease, member, %why, "renewing the election lease through this etcd member failed; the other members renew it meanwhile");
                }
                tokio::time::sleep(RENEW_RETRY).await;
            }
        }
    }
}

/// An open keep-alive stream to one member.
type Renewer = (etcd_client::LeaseKeeper, etcd_client::LeaseKeepAliveStream);

enum Renewal {
    /// etcd answered that the lease does not exist (it expired, or was revoked).
    Gone,
    /// No answer from this member: another may still renew it.
    Failed(String),
}

/// One renewal through `client`'s member, opening a keep-alive stream first if none is open;
/// the TTL etcd granted, in seconds.
async fn renew(client: &Client, lease: i64, stream: &mut Option<Renewer>) -> Result<u64, Renewal> {
    let failed = |e: etcd_client::Error| match e.to_string() {
        text if text.contains("not found") => Renewal::Gone,
        text => Renewal::Failed(text),
    };
    if stream.is_none() {
        *stream = Some(client.lease_client().keep_alive(lease).await.map_err(failed)?);
    }
    let (keeper, answers) = stream.as_mut().expect("opened above");
    keeper.keep_alive().await.map_err(failed)?;
    match answers.message().await.map_err(failed)? {
        Some(r) if r.ttl() > 0 => Ok(r.ttl() as u64),
        Some(_) => Err(Renewal::Gone),
        None => Err(Renewal::Failed("the keep-alive stream ended".into())),
    }
}

async fn wait_lost(valid: &mut watch::Receiver<Option<Instant>>) {
    loop {
        if valid.borrow().is_none() || valid.changed().await.is_err() {
            return;
        }
    }
}

/// Who the election names as leader now: its `name@endpoint` value, and the endpoint with the
/// term; `None` when there is none or etcd did not answer.
async fn named_leader(
    election: &mut etcd_client::ElectionClient,
) -> Option<(Vec<u8>, Option<(String, Term)>)> {
    let r = election.leader(ELECTION_NAME).await.ok()?;
    let kv = r.kv()?;
    Some((
        kv.value().to_vec(),
        endpoint_of(kv.value()).map(|e| (e, Term(kv.create_revision() as u64))),
    ))
}

/// Keeps the leader view current (the simulated etcd has no watch, so poll). A leader that
/// etcd stops naming is trusted for one election TTL after it was last named (see
/// [`LeaderView`]), then no more: this node cannot tell clients where to go, and its health
/// says so.
async fn observe_leader(client: Client, view: LeaderView, every: Duration) {
    let mut election = client.election_client();
    loop {
        if let Some((_, Some((endpoint, term)))) = named_leader(&mut election).await {
            view.observe(endpoint, term);
        }
        tokio::time::sleep(every).await;
    }
}

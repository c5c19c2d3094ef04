//! A warm standby: while a meta node does not lead, it loads the catalog from etcd once and then
//! follows every change through a watch, so that on winning it can lead from a catalog it
//! already holds instead of reading a million tables anew (about 25 s on this machine while
//! the cluster is busy, five times the election TTL plus 5 s).
//!
//! Handing over is safe because of how the catalog is written: every transaction that changes
//! it puts the fence record last, so the fence's modification revision, read after winning
//! (when no one else can write any more), names the last change. The standby hands over only
//! once it has applied the fence put of that revision, i.e. that whole transaction and all
//! before it. If it cannot get there (still paused after a failed load, watch broken, no
//! progress within the store timeout) it says so and the new leader loads cold, as before.
//!
//! madsim's etcd has no watch, so under madsim the standby holds nothing and every new leader
//! loads cold: the simulated path is the cold one.

use crate::core::storage::Snapshot;
#[cfg(not(madsim))]
pub use warm::Standby;

/// The madsim standby: never warm.
#[cfg(madsim)]
pub struct Standby;

#[cfg(madsim)]
impl Standby {
    pub fn start(_store: super::etcd::EtcdStore) -> Standby {
        Standby
    }

    pub async fn take_over(self) -> Option<Snapshot> {
        None
    }
}

#[cfg(not(madsim))]
mod warm {
    use tokio::sync::{mpsc, oneshot};

    use super::Snapshot;
    use crate::core::storage::FENCE_KEY;
    use crate::server::storage::etcd::{EtcdStore, SNAPSHOT_PAGE_BYTES_MAX};
    use crate::server::storage::load::{LoadBackoff, LoadCause, LoadError};

    /// The pause before opening a watch again after etcd refused one.
    const WATCH_RETRY: std::time::Duration = std::time::Duration::from_millis(500);

    /// The new leader's request: the catalog once it holds every change up to `revision`.
    struct Takeover {
        revision: i64,
        reply: oneshot::Sender<Option<Snapshot>>,
    }

    /// Follows the catalog in a task of its own until [`take_over`](Self::take_over) or drop.
    pub struct Standby {
        store: EtcdStore,
        takeovers: mpsc::Sender<Takeover>,
        task: tokio::task::JoinHandle<()>,
    }

    impl Drop for Standby {
        fn drop(&mut self) {
            self.task.abort();
        }
    }

    impl Standby {
        pub fn start(store: EtcdStore) -> Standby {
            let (takeovers, requests) = mpsc::channel(1);
            let task = tokio::task::spawn(run(store.clone(), requests));
            Standby { store, takeovers, task }
        }

        /// Called after winning the election: the standby's catalog, current to the newest
        /// write, or `None` if the standby cannot vouch for that (then load cold).
        pub async fn take_over(self) -> Option<Snapshot> {
            match self.store.fence_revision().await {
                Ok(revision) => self.take_over_at(revision).await,
                Err(e) => {
                    tracing::info!(error = %e, "cannot read the fence revision; loading the catalog cold");
                    None
                }
            }
        }

        /// The standby's catalog once it holds every transaction up to etcd revision
        /// `revision`, waiting for them as long as changes keep coming within the store timeout.
        pub async fn take_over_at(self, revision: i64) -> Option<Snapshot> {
            let started = std::time::Instant::now();
            let (reply, answer) = oneshot::channel();
            self.takeovers.send(Takeover { revision, reply }).await.ok()?;
            let snapshot = answer.await.ok().flatten();
            match &snapshot {
                Some(_) => tracing::info!(
                    revision,
                    ms = started.elapsed().as_millis() as u64,
                    "took over the warm standby's catalog"
                ),
                None => tracing::info!(
                    revision,
                    "the standby cannot hand over a current catalog; loading it cold"
                ),
            }
            snapshot
        }
    }

    fn refuse(takeover: Option<Takeover>) {
        if let Some(t) = takeover {
            let _ = t.reply.send(None);
        }
    }

    async fn run(store: EtcdStore, mut takeovers: mpsc::Receiver<Takeover>) {
        let mut backoff = LoadBackoff::default();
        loop {
            // A takeover asked for during the load waits for it: a cold load would only start over.
            let failure = match store.snapshot_at().await {
                Ok((snapshot, revision)) => {
                    backoff.succeeded();
                    tracing::info!(revision, "standby holds the catalog; following its changes");
                    match follow(&store, snapshot, revision, &mut takeovers).await {
                        Some(e) => e,
                        None => return,
                    }
                }
                Err(e) => e,
            };
            let pause =
                backoff.failed("the standby cannot hold the catalog; loading it again", &failure);
            tokio::select! {
                biased; // a fixed order: see `client::node`
                _ = tokio::time::sleep(pause) => {}
                t = takeovers.recv() => return refuse(t),
            }
        }
    }

    /// Applies changes from `revision + 1` on until a takeover is answered (`None`) or the
    /// standby loses its place (the error; it must load again).
    async fn follow(
        store: &EtcdStore,
        mut snapshot: Snapshot,
        revision: i64,
        takeovers: &mut mpsc::Receiver<Takeover>,
    ) -> Option<LoadError> {
        // Every transaction up to `at` is applied whole; `txn` gathers the next one.
        let mut at = revision;
        let mut txn = Transaction::default();
        let mut pending: Option<Takeover> = None;
        let mut watch = None;
        loop {
            if pending.as_ref().is_some_and(|t| at >= t.revision) {
                let _ = pending.take().expect("checked").reply.send(Some(snapshot));
                return None;
            }
            let stream = match &mut watch {
                Some(stream) => stream,
                None => match store.watch_from(at + 1).await {
                    Ok(stream) => watch.insert(stream),
                    Err(e) if pending.is_some() => {
                        tracing::info!(error = %e, "the standby cannot watch the catalog");
                        refuse(pending);
                        return None;
                    }
                    // An etcd member restarting should not cost a full load: try the watch again.
                    Err(e) if matches!(e.cause, LoadCause::Timeout | LoadCause::Unavailable) => {
                        tracing::debug!(error = %e, "the standby cannot watch the catalog; trying again");
                        tokio::select! {
                            biased; // a fixed order: see `client::node`
                            _ = tokio::time::sleep(WATCH_RETRY) => {}
                            t = takeovers.recv() => match t {
                                Some(t) => pending = Some(t),
                                None => return None,
                            },
                        }
                        continue;
                    }
                    Err(e) => return Some(e),
                },
            };
            tokio::select! {
                biased; // a fixed order: see `client::node`
                t = takeovers.recv(), if pending.is_none() => match t {
                    Some(t) => pending = Some(t),
                    None => return None,
                },
                // No progress within the store timeout while a new leader waits: it loads cold.
                _ = tokio::time::sleep(store.timeout()), if pending.is_some() => {
                    refuse(pending);
                    return None;
                }
                message = stream.message() => {
                    let response = match message {
                        Ok(Some(r)) => r,
                        // A broken stream is reopened after the last whole transaction; the one
                        // under way is gathered again from its start.
                        Ok(None) | Err(_) => {
                            (watch, txn) = (None, Transaction::default());
                            continue;
                        }
                    };
                    if response.canceled() {
                        let e = LoadError::new(LoadCause::Compacted, format!("the watch from revision {} was cancelled (compacted at {}): {}", at + 1, response.compact_revision(), response.cancel_reason()));
                        refuse(pending);
                        return Some(e);
                    }
                    if let Err(e) = apply(&mut snapshot, &mut txn, response.events(), &mut at) {
                        refuse(pending);
                        return Some(e);
                    }
                }
            }
        }
    }

    /// The changes of the transaction under way, gathered until its fence put (always its last
    /// op) arrives, then applied as one.
    #[derive(Default)]
    struct Transaction {
        changes: Vec<(String, Option<Vec<u8>>)>,
        bytes: usize,
    }

    fn apply(
        snapshot: &mut Snapshot,
        txn: &mut Transaction,
        events: &[etcd_client::Event],
        at: &mut i64,
    ) -> Result<(), LoadError> {
        for event in events {
            let Some(kv) = event.kv() else { continue };
            let key = std::str::from_utf8(kv.key())
                .map_err(|e| LoadError::new(LoadCause::Corrupt, format!("non-UTF-8 key: {e}")))?;
            let put = event.event_type() == etcd_client::EventType::Put;
            txn.bytes += key.len() + kv.value().len();
            if txn.bytes > SNAPSHOT_PAGE_BYTES_MAX {
                return Err(LoadError::new(
                    LoadCause::TooLarge,
                    format!("over {SNAPSHOT_PAGE_BYTES_MAX} bytes of changes without a fence put"),
                ));
            }
            txn.changes.push((key.to_owned(), put.then(|| kv.value().to_vec())));
            if put && key == FENCE_KEY {
                snapshot.apply_transaction(
                    txn.changes.iter().map(|(k, v)| (k.as_str(), v.as_deref())),
                )?;
                *txn = Transaction::default();
                *at = (*at).max(kv.mod_revision());
            }
        }
        Ok(())
    }
}

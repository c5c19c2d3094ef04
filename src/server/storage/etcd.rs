//! The etcd store. Every transaction compares the leader's election key value (so a deposed
//! leader's write fails: the key vanishes with its lease) and the fence record (the write
//! chain), then applies the batch and advances the fence. Value compares only, which is what
//! madsim's simulated etcd supports too.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use etcd_client::{Client, Compare, CompareOp, GetOptions, Txn, TxnOp, TxnOpResponse};
use prost::Message;

use super::load::{LoadCause, LoadError};
use super::page_window::PageWindow;
use crate::core::model::FenceRecord;
use crate::core::storage::{
    Op, Snapshot, SnapshotLoader, WriteBatch, WriteResult, FENCE_KEY, SNAPSHOT_PREFIXES,
};
use crate::core::Term;

/// Keys per snapshot page. At 1 KiB records a page is about 1 MiB: large enough that a million
/// tables take about a thousand round trips, small enough to decode between other work.
pub const SNAPSHOT_PAGE_KEYS: i64 = 1_024;

/// Reads of one page before the load fails: a page at a fixed revision can be read again, and a
/// load of a thousand pages should not start over because one read met a dead etcd member.
pub const PAGE_ATTEMPTS_MAX: u32 = 3;

/// Pages read ahead of the decoder.
pub const PAGES_AHEAD: usize = 2;

/// The decode limit for snapshot pages. etcd bounds each record by its request limit (1.5 MiB by
/// default); a page of large records that still exceeds this is read again with half the keys.
pub const SNAPSHOT_PAGE_BYTES_MAX: usize = 64 << 20;

/// The pause before a failed transaction is sent again, times the attempt (up to 5).
const TXN_RETRY_PAUSE: Duration = Duration::from_millis(50);

/// Whether sending a transaction again may help: etcd or the way to it was unavailable. A
/// refusal of the request itself (too large, malformed) would be refused again.
fn retryable(e: &etcd_client::Error) -> bool {
    match e {
        etcd_client::Error::GRpcStatus(s) => matches!(
            s.code(),
            tonic::Code::Unavailable
                | tonic::Code::DeadlineExceeded
                | tonic::Code::Cancelled
                | tonic::Code::Aborted
                | tonic::Code::Unknown
        ),
        etcd_client::Error::TransportError(_) | etcd_client::Error::IoError(_) => true,
        _ => false,
    }
}

struct Page {
    kvs: Vec<etcd_client::KeyValue>,
    more: bool,
    /// etcd's revision when it answered; for the first page, read at the newest revision, the
    /// revision that every later page is read at.
    revision: i64,
}

fn read_error(e: etcd_client::Error) -> LoadError {
    let text = e.to_string();
    let cause = if text.contains("message length too large") || text.contains("larger than max") {
        LoadCause::TooLarge
    } else if text.contains("compacted") {
        LoadCause::Compacted
    } else {
        LoadCause::Unavailable
    };
    LoadError::new(cause, text)
}

/// The election key this node holds while it leads, and the term it stands for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaderFence {
    pub key: Vec<u8>,
    pub value: Vec<u8>,
    pub term: Term,
}

/// How a call sent to the members ended without an answer.
enum MemberError {
    /// etcd refused the request itself: sending it again would not help.
    Refused(etcd_client::Error),
    /// No member answered within the store's timeout.
    Exhausted { error: String, attempts: u32 },
}

#[derive(Clone)]
pub struct EtcdStore {
    /// Over every endpoint, balanced: for watches.
    client: Client,
    /// One client per endpoint, for writes and reads: see [`EtcdStore::on_members`].
    members: Arc<[Client]>,
    /// The member calls go to while it answers.
    current: Arc<AtomicUsize>,
    fence: Arc<Mutex<Option<LeaderFence>>>,
    timeout: Duration,
}

impl EtcdStore {
    /// `members`: one client per endpoint (`client` itself when there is one endpoint).
    pub fn new(client: Client, members: Vec<Client>, timeout: Duration) -> EtcdStore {
        let members = if members.is_empty() { vec![client.clone()] } else { members };
        EtcdStore {
            client,
            members: members.into(),
            current: Arc::default(),
            fence: Arc::default(),
            timeout,
        }
    }

    /// Set by the election when this node wins, cleared when it loses.
    pub fn set_fence(&self, fence: Option<LeaderFence>) {
        *self.fence.lock().expect("fence lock") = fence;
    }

    /// The transaction ops that delete every key under `prefix`: one range delete on etcd.
    #[cfg(not(madsim))]
    async fn prefix_deletes(&self, prefix: &str) -> Result<Vec<TxnOp>, etcd_client::Error> {
        Ok(vec![TxnOp::delete(prefix, Some(etcd_client::DeleteOptions::new().with_prefix()))])
    }

    /// madsim's etcd deletes one key at a time: the keys are listed first. Nothing else can add
    /// one under a dropped cluster's prefix meanwhile (only the leader writes, one batch at a
    /// time, and the fence compare refuses the batch if another leader wrote).
    #[cfg(madsim)]
    async fn prefix_deletes(&self, prefix: &str) -> Result<Vec<TxnOp>, etcd_client::Error> {
        let listed =
            self.client.kv_client().get(prefix, Some(GetOptions::new().with_prefix())).await?;
        Ok(listed.kvs().iter().map(|kv| TxnOp::delete(kv.key().to_vec(), None)).collect())
    }

    pub async fn write(&self, batch: &WriteBatch) -> WriteResult {
        let Some(fence) =
            self.fence.lock().expect("fence lock").clone().filter(|f| f.term == batch.term)
        else {
            return WriteResult::Conflict; // this node no longer holds that term
        };
        let Some(expected) = batch.expected_fence.clone() else {
            // The election writes the first fence record before the core writes anything.
            tracing::error!("a batch without an expected fence on etcd");
            return WriteResult::Conflict;
        };
        let mut ops: Vec<TxnOp> = Vec::with_capacity(batch.ops.len() + 1);
        for op in &batch.ops {
            match op {
                Op::Put { key, value } => ops.push(TxnOp::put(key.as_str(), value.clone(), None)),
                Op::Delete { key } => ops.push(TxnOp::delete(key.as_str(), None)),
                Op::DeletePrefix { prefix } => match self.prefix_deletes(prefix).await {
                    Ok(deletes) => ops.extend(deletes),
                    Err(e) => {
                        tracing::warn!(error = %e, "listing keys to delete failed; nothing written");
                        return WriteResult::Error;
                    }
                },
            }
        }
        ops.push(TxnOp::put(FENCE_KEY, batch.fence.clone(), None));
        let txn = Txn::new()
            .when([
                Compare::value(fence.key.clone(), CompareOp::Equal, fence.value.clone()),
                Compare::value(FENCE_KEY, CompareOp::Equal, expected),
            ])
            .and_then(ops)
            .or_else([TxnOp::get(FENCE_KEY, None)]);
        let Some(response) = self.send_fenced(txn).await else { return WriteResult::Error };
        if response.succeeded() {
            return WriteResult::Ok;
        }
        let current = response.op_responses().into_iter().find_map(|r| match r {
            TxnOpResponse::Get(g) => Some(g.kvs().first().map(|kv| kv.value().to_vec())),
            _ => None,
        });
        match current {
            Some(current) if batch.landed_already(current.as_deref()) => WriteResult::Ok,
            current => {
                let decode = |v: &[u8]| FenceRecord::decode(v).map(|f| (f.term, f.seq)).ok();
                let found = current.flatten().as_deref().and_then(decode);
                let (expected, mine) =
                    (batch.expected_fence.as_deref().and_then(decode), decode(&batch.fence));
                tracing::warn!(
                    ?found,
                    ?expected,
                    ?mine,
                    "etcd refused the batch: the fence or the election key has moved on"
                );
                WriteResult::Conflict
            }
        }
    }

    /// Sends a fenced transaction, again and again within the store's timeout while etcd does
    /// not answer (a member down, refusing connections, paused, or electing its own leader).
    /// Sending it again is safe whatever became of an earlier attempt: the transaction compares
    /// the fence record, so a copy that lands after another has landed fails its compare, and
    /// the caller tells "already landed" from a conflict by the fence it reads back. `None`: the
    /// outcome is unknown after all.
    ///
    /// Writes go to one member while it answers, and to the next once it does not: a paused
    /// member costs one attempt, not one per write (a balancer would keep choosing it, as its
    /// connection looks healthy).
    async fn send_fenced(&self, txn: Txn) -> Option<etcd_client::TxnResponse> {
        match self
            .on_members(|member| {
                let txn = txn.clone();
                async move { member.kv_client().txn(txn).await }
            })
            .await
        {
            Ok(r) => Some(r),
            Err(MemberError::Refused(e)) => {
                tracing::warn!(error = %e, "etcd refused the transaction; outcome unknown");
                None
            }
            Err(MemberError::Exhausted { error, attempts }) => {
                tracing::warn!(%error, attempt = attempts, "etcd transaction failed until the timeout; outcome unknown");
                None
            }
        }
    }

    /// Sends `call` to one member while it answers, and to the next once it does not, again
    /// and again within the store's timeout. A call stuck on a paused or cut-off member gives
    /// up after a fifth of the timeout, leaving time for the others: a balanced client would
    /// keep choosing that member, whose connection looks healthy, until the timeout.
    async fn on_members<T, F, Fut>(&self, mut call: F) -> Result<T, MemberError>
    where
        F: FnMut(Client) -> Fut,
        Fut: std::future::Future<Output = Result<T, etcd_client::Error>>,
    {
        let started = tokio::time::Instant::now();
        let attempt_max = (self.timeout / 5).max(Duration::from_millis(1_000));
        for attempt in 1.. {
            let member = self.current.load(Ordering::Relaxed) % self.members.len();
            let left = self.timeout.saturating_sub(started.elapsed());
            let error = match tokio::time::timeout(
                left.min(attempt_max),
                call(self.members[member].clone()),
            )
            .await
            {
                Ok(Ok(r)) => return Ok(r),
                Ok(Err(e)) if !retryable(&e) => return Err(MemberError::Refused(e)),
                Ok(Err(e)) => e.to_string(),
                Err(_) => format!("no answer within {} ms", left.min(attempt_max).as_millis()),
            };
            // Another caller may have moved on already; move on from this member only once.
            let _ = self.current.compare_exchange(
                member,
                (member + 1) % self.members.len(),
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
            let pause = TXN_RETRY_PAUSE * attempt.min(5);
            if started.elapsed() + pause >= self.timeout {
                return Err(MemberError::Exhausted { error, attempts: attempt });
            }
            tracing::debug!(%error, attempt, member, "etcd call failed; sending it to the next member");
            tokio::time::sleep(pause).await;
        }
        unreachable!("the loop returns")
    }

    /// A read through [`on_members`](Self::on_members), its failure as a load error.
    async fn read<T, F, Fut>(&self, call: F) -> Result<T, LoadError>
    where
        F: FnMut(Client) -> Fut,
        Fut: std::future::Future<Output = Result<T, etcd_client::Error>>,
    {
        self.on_members(call).await.map_err(|e| match e {
            MemberError::Refused(e) => read_error(e),
            MemberError::Exhausted { error, attempts } => LoadError::new(
                LoadCause::Timeout,
                format!(
                    "no etcd member answered within {} ms ({attempts} attempts): {error}",
                    self.timeout.as_millis()
                ),
            ),
        })
    }

    /// Reads the snapshot ranges in pages of at most [`SNAPSHOT_PAGE_KEYS`], every page at the
    /// revision of the first, so that the pages form one point in time even if a deposed
    /// leader's write were still landing, and each in a tight window (see `page_window`: etcd
    /// walks a read's whole range to count it). A reader task fetches pages ahead while this one
    /// decodes them into the catalog, so a round trip to etcd overlaps decoding, and at most
    /// [`PAGES_AHEAD`] pages of raw pairs are held.
    pub async fn snapshot(&self) -> Result<Snapshot, LoadError> {
        Ok(self.snapshot_at().await?.0)
    }

    /// [`snapshot`](Self::snapshot), with the revision it was read at (0 under madsim).
    pub async fn snapshot_at(&self) -> Result<(Snapshot, i64), LoadError> {
        let started = std::time::Instant::now();
        let (tx, mut rx) = tokio::sync::mpsc::channel(PAGES_AHEAD);
        tokio::task::spawn({
            let store = self.clone();
            async move { store.read_pages(tx).await }
        });
        let mut loader = SnapshotLoader::default();
        let (mut revision, mut pages) = (0, 0u64);
        // A decode error returns early and drops the receiver, which stops the reader.
        while let Some(page) = rx.recv().await {
            let page: Page = page?;
            if pages == 0 {
                revision = page.revision;
            }
            pages += 1;
            for pair in &page.kvs {
                let key = std::str::from_utf8(pair.key()).map_err(|e| {
                    LoadError::new(LoadCause::Corrupt, format!("non-UTF-8 key: {e}"))
                })?;
                loader.feed(key, pair.value())?;
            }
        }
        if pages == 0 {
            return Err(LoadError::new(
                LoadCause::Unavailable,
                "the page reader stopped before the first page",
            ));
        }
        let (keys, bytes) = (loader.keys(), loader.bytes());
        let snapshot = loader.finish()?;
        tracing::info!(
            keys,
            bytes,
            pages,
            revision,
            ms = started.elapsed().as_millis() as u64,
            "snapshot loaded from etcd"
        );
        crate::server::metrics::metrics().snapshot_loaded(keys, bytes, started.elapsed());
        Ok((snapshot, revision))
    }

    /// Sends every page of every snapshot range in order, then closes the channel; an error is
    /// sent as the last item. Stops when the decoder has gone.
    async fn read_pages(&self, pages: tokio::sync::mpsc::Sender<Result<Page, LoadError>>) {
        let mut revision = 0;
        for prefix in SNAPSHOT_PREFIXES {
            let mut window = PageWindow::new(prefix.as_bytes());
            let (mut limit, mut attempts) = (SNAPSHOT_PAGE_KEYS, 1);
            loop {
                let (start, end) = window.next();
                let page = match self.read_page(start, end, limit, revision).await {
                    Ok(page) => page,
                    Err(e)
                        if matches!(e.cause, LoadCause::Timeout | LoadCause::Unavailable)
                            && attempts < PAGE_ATTEMPTS_MAX =>
                    {
                        tracing::debug!(error = %e, attempts, "snapshot page read failed; reading it again");
                        attempts += 1;
                        continue;
                    }
                    // Records can be up to etcd's request limit each: fewer keys until a page fits.
                    Err(e) if e.cause == LoadCause::TooLarge && limit > 1 => {
                        limit /= 2;
                        continue;
                    }
                    Err(e) => {
                        let _ = pages.send(Err(e)).await;
                        return;
                    }
                };
                // etcd's header names its current revision, not the one read at: keep the first.
                if revision == 0 {
                    revision = page.revision;
                }
                attempts = 1;
                let go_on = window.advance(
                    page.kvs.len(),
                    page.kvs.last().map(|kv| kv.key()),
                    page.more,
                    limit as usize,
                );
                if pages.send(Ok(page)).await.is_err() {
                    return; // the decoder has gone
                }
                if !go_on {
                    break;
                }
            }
        }
    }

    /// One page: keys in `[start, end)`, at most `limit`, at `revision` (0: the newest).
    #[cfg(not(madsim))]
    async fn read_page(
        &self,
        start: &[u8],
        end: &[u8],
        limit: i64,
        revision: i64,
    ) -> Result<Page, LoadError> {
        let options = GetOptions::new().with_range(end).with_limit(limit).with_revision(revision);
        let get = |member: Client| {
            let (start, options) = (start.to_vec(), options.clone());
            // Set on purpose: tonic's default (4 MiB) is what broke loading above ~12,000 tables.
            async move {
                member
                    .kv_client()
                    .max_decoding_message_size(SNAPSHOT_PAGE_BYTES_MAX)
                    .get(start, Some(options))
                    .await
            }
        };
        let mut response = self.read(get).await?;
        let revision = response.header().map_or(revision, |h| h.revision());
        Ok(Page { more: response.more(), revision, kvs: response.take_kvs() })
    }

    /// madsim's etcd has no range end, limit or revision reads: a page there is the whole prefix,
    /// read at the newest revision. No other node writes while a new leader loads (a deposed
    /// leader's transactions compare an election key that is gone), so it is one point in time
    /// all the same; the paging loop above runs once per range.
    #[cfg(madsim)]
    async fn read_page(
        &self,
        start: &[u8],
        _end: &[u8],
        _limit: i64,
        _revision: i64,
    ) -> Result<Page, LoadError> {
        let get = |member: Client| {
            let start = start.to_vec();
            async move { member.kv_client().get(start, Some(GetOptions::new().with_prefix())).await }
        };
        let response = self.read(get).await?;
        Ok(Page { more: false, revision: 0, kvs: response.kvs().to_vec() })
    }

    #[cfg(not(madsim))]
    async fn timed<T>(
        &self,
        call: impl std::future::Future<Output = Result<T, etcd_client::Error>>,
    ) -> Result<T, LoadError> {
        match tokio::time::timeout(self.timeout, call).await {
            Err(_) => Err(LoadError::new(
                LoadCause::Timeout,
                format!("no answer within {} ms", self.timeout.as_millis()),
            )),
            Ok(Err(e)) => Err(read_error(e)),
            Ok(Ok(r)) => Ok(r),
        }
    }

    /// The revision of the newest write to the catalog: every transaction that changes it puts
    /// the fence record last (see `write` and `ensure_fence`), so the fence's modification
    /// revision is where the catalog last changed. 0 while storage is empty.
    #[cfg(not(madsim))]
    pub async fn fence_revision(&self) -> Result<i64, LoadError> {
        let response = self
            .read(|member: Client| async move { member.kv_client().get(FENCE_KEY, None).await })
            .await?;
        Ok(response.kvs().first().map_or(0, |kv| kv.mod_revision()))
    }

    /// Every change under the storage root from `revision` on, in the store's order. Responses
    /// come in fragments of etcd's request size, so one big transaction never exceeds the
    /// decode limit; a transaction is whole once its fence put has arrived.
    #[cfg(not(madsim))]
    pub async fn watch_from(&self, revision: i64) -> Result<etcd_client::WatchStream, LoadError> {
        let options = etcd_client::WatchOptions::new()
            .with_prefix()
            .with_start_revision(revision)
            .with_fragment();
        let mut watch =
            self.client.watch_client().max_decoding_message_size(SNAPSHOT_PAGE_BYTES_MAX);
        self.timed(watch.watch(crate::core::storage::ROOT, Some(options))).await
    }

    /// How long one etcd call may take.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Writes the first fence record if storage has none, under the election compare only: no
    /// one else can write while this node holds the election key.
    pub async fn ensure_fence(&self, fence: &LeaderFence, initial: Vec<u8>) -> Result<(), String> {
        let txn = Txn::new()
            .when([Compare::value(fence.key.clone(), CompareOp::Equal, fence.value.clone())])
            .and_then([TxnOp::put(FENCE_KEY, initial, None)]);
        let mut kv = self.client.kv_client();
        let response = tokio::time::timeout(self.timeout, kv.txn(txn))
            .await
            .map_err(|_| "etcd fence initialisation timed out".to_string())?
            .map_err(|e| format!("etcd fence initialisation: {e}"))?;
        if response.succeeded() {
            Ok(())
        } else {
            Err("lost the election while initialising the fence".into())
        }
    }
}

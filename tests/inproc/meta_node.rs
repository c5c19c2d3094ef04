//! A simulated meta node: one core plus the bits of driver a real runtime has (election
//! renewals, write timeouts, snapshot reads page by page).

use std::collections::BTreeSet;

use shardmeta::core::*;

pub struct MetaNode {
    /// `None` while crashed.
    pub core: Option<MetaCore>,
    pub incarnation: u64,
    /// While paused the process does nothing; everything addressed to it waits.
    pub paused_until: Option<Instant>,
    pub in_flight: Option<WriteId>,
    /// Requests delivered to this incarnation and not yet answered: the driver numbers them
    /// itself, as a gRPC server does per call, and keeps the client's number and the deadline
    /// (for L4) of each.
    pub dispatch: Dispatch<(RequestId, Instant)>,
    /// Wake-ups already scheduled, so that each is scheduled once.
    pub wakes: BTreeSet<Instant>,
    /// A snapshot being read, page by page.
    pub loading: Option<Loading>,
    next_load: u64,
    /// After a failed load the node stands aside from the election until then, as the runtime's
    /// election backs off.
    pub campaign_after: Instant,
}

/// What a snapshot is being read for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoadPurpose {
    /// Won `term` (renewed as late as `sent`): lead once loaded.
    Lead { term: Term, sent: Instant },
    /// The leader of `term` reloads after a write of unknown outcome.
    Reload(Term),
}

pub struct Loading {
    pub id: u64,
    pub purpose: LoadPurpose,
    pub loader: storage::SnapshotLoader,
    pub pages: u64,
}

impl MetaNode {
    pub fn new(core: MetaCore) -> MetaNode {
        MetaNode {
            core: Some(core),
            incarnation: 1,
            paused_until: None,
            in_flight: None,
            dispatch: Dispatch::default(),
            wakes: BTreeSet::new(),
            loading: None,
            next_load: 0,
            campaign_after: Instant::ZERO,
        }
    }

    /// Starts a load (dropping any other); returns its id.
    pub fn begin_load(&mut self, purpose: LoadPurpose) -> u64 {
        self.next_load += 1;
        self.loading =
            Some(Loading { id: self.next_load, purpose, loader: Default::default(), pages: 0 });
        self.next_load
    }

    /// The load in progress, if it is `id`.
    pub fn load_mut(&mut self, id: u64) -> Option<&mut Loading> {
        self.loading.as_mut().filter(|l| l.id == id)
    }

    /// Hands the core a request the client numbered `client`.
    pub fn request(&mut self, now: Instant, caller: (RequestId, Instant), request: &Request) {
        let core = self.core.as_mut().expect("only running metas take requests");
        self.dispatch.request(core, now, caller, request);
    }

    /// The core and its dispatch, out of the node while the world carries out their outputs.
    pub fn take_core(&mut self) -> (MetaCore, Dispatch<(RequestId, Instant)>) {
        (
            self.core.take().expect("only running metas are drained"),
            std::mem::take(&mut self.dispatch),
        )
    }

    pub fn put_core(&mut self, core: MetaCore, dispatch: Dispatch<(RequestId, Instant)>) {
        (self.core, self.dispatch) = (Some(core), dispatch);
    }

    pub fn running(&self, now: Instant) -> bool {
        self.core.is_some() && self.paused_until.is_none_or(|t| now >= t)
    }

    pub fn crash(&mut self) {
        self.core = None;
        self.in_flight = None;
        self.dispatch.forget();
        self.wakes.clear();
        self.paused_until = None;
        self.loading = None;
    }

    pub fn restart(&mut self, core: MetaCore) {
        self.core = Some(core);
        self.incarnation += 1;
    }
}

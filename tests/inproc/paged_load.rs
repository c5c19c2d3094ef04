//! A meta node reads its snapshot as the runtime does against etcd: page by page, at the store
//! revision the load began at, each page decoded into the real `SnapshotLoader` as it arrives.
//! A page can fail (a store error, a page lost on the network, the store moving on because
//! leadership changed mid-load): a load for leading then gives the term up and stands aside
//! for a while, and a failed reload is reported to the core, which asks again after its pause.

use shardmeta::core::*;

use super::meta_node::LoadPurpose;
use super::net::{Addr, Msg, PageAt};
use super::{Event, World};

/// A page not answered by then counts as failed.
const PAGE_TIMEOUT_MS: u64 = 1_000;
/// How long a node that could not load stands aside from the election.
const LOAD_BACKOFF_MS: u64 = 1_000;

impl World {
    pub(super) fn start_load(&mut self, i: usize, purpose: LoadPurpose) {
        let load = self.metas[i].begin_load(purpose);
        self.read_page(i, load, None);
    }

    fn read_page(&mut self, i: usize, load: u64, at: Option<PageAt>) {
        let inc = self.metas[i].incarnation;
        let page = self.metas[i].load_mut(load).expect("a page of the current load").pages;
        self.send(Addr::Meta(i), Addr::Store, Msg::ReadPage { incarnation: inc, load, page, at });
        self.schedule(Duration(PAGE_TIMEOUT_MS), Event::MetaPageTimeout(i, inc, load, page));
    }

    /// Page `page` arrived: decode it, then ask for the next one or hand the snapshot over.
    pub(super) fn on_page(
        &mut self,
        i: usize,
        load: u64,
        page: u64,
        pairs: Vec<(String, Vec<u8>)>,
        next: Option<PageAt>,
    ) {
        // A duplicate of a page already read, or a page of a load given up.
        let Some(l) = self.metas[i].load_mut(load).filter(|l| l.pages == page) else { return };
        for (k, v) in &pairs {
            l.loader.feed(k, v).expect("the store holds only what cores wrote");
        }
        l.pages += 1;
        self.coverage.snapshot_pages += 1;
        if next.is_some() {
            return self.read_page(i, load, next);
        }
        let l = self.metas[i].loading.take().expect("the load just read a page");
        let snapshot = l.loader.finish().expect("the store holds only what cores wrote");
        let now = self.now;
        match l.purpose {
            LoadPurpose::Lead { term, sent } => {
                let valid_until = sent + Duration(super::ELECTION_TTL_MS);
                self.core(i).handle(
                    now,
                    Input::Leadership(Leadership::Gained { term, valid_until, snapshot }),
                );
            }
            LoadPurpose::Reload(term) => {
                self.core(i).handle(now, Input::Snapshot { term, snapshot });
                self.coverage.snapshot_reloads += 1;
            }
        }
    }

    /// The page timer of page `page` of `load` fired.
    pub(super) fn page_timed_out(&mut self, i: usize, load: u64, page: u64) {
        self.page_failed(i, load, page, false);
    }

    pub(super) fn page_failed(&mut self, i: usize, load: u64, page: u64, moved_on: bool) {
        if self.metas[i].load_mut(load).is_none_or(|l| l.pages != page) {
            return; // that page was read after all, or the load is over
        }
        let l = self.metas[i].loading.take().expect("checked above");
        self.coverage.loads_failed += 1;
        self.coverage.loads_moved_on += moved_on as u64;
        match l.purpose {
            LoadPurpose::Lead { term, .. } => {
                let inc = self.metas[i].incarnation;
                self.send(Addr::Meta(i), Addr::Store, Msg::Resign { incarnation: inc, term });
                self.metas[i].campaign_after = self.now + Duration(LOAD_BACKOFF_MS);
            }
            // The core times the next attempt.
            LoadPurpose::Reload(term) => {
                let now = self.now;
                self.core(i).handle(
                    now,
                    Input::SnapshotFailed { term, cause: storage::LoadCause::Unavailable },
                );
            }
        }
    }
}

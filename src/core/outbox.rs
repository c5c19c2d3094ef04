//! Outputs waiting to be polled, and the requests still owed a reply. Every accepted request
//! leaves through exactly one `Output::Reply`: its answer, or a deadline error.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::error::MetaError;
use super::ids::RequestId;
use super::output::{Output, Response};
use super::time::{Duration, Instant};

#[derive(Default)]
pub struct Outbox {
    pub outputs: VecDeque<Output>,
    deadlines: BTreeMap<RequestId, Instant>,
    by_deadline: BTreeSet<(Instant, RequestId)>,
}

impl Outbox {
    pub fn push(&mut self, o: Output) {
        self.outputs.push_back(o);
    }

    pub fn pending_requests(&self) -> usize {
        self.deadlines.len()
    }

    /// Starts the clock on a request. False if the id is already pending.
    pub fn accept(&mut self, id: RequestId, now: Instant, timeout: Duration) -> bool {
        if self.deadlines.contains_key(&id) {
            return false;
        }
        let deadline = now + timeout;
        self.deadlines.insert(id, deadline);
        self.by_deadline.insert((deadline, id));
        true
    }

    /// Answers a pending request; an answer for a request that already timed out is dropped.
    pub fn reply(&mut self, id: RequestId, result: Result<Response, MetaError>) {
        if let Some(deadline) = self.deadlines.remove(&id) {
            self.by_deadline.remove(&(deadline, id));
            self.outputs.push_back(Output::Reply { request: id, result });
        }
    }

    /// Answers every request whose deadline has passed.
    pub fn expire(&mut self, now: Instant) {
        while let Some(&(deadline, id)) = self.by_deadline.first() {
            if deadline > now {
                break;
            }
            self.reply(id, Err(MetaError::DeadlineExceeded));
        }
    }

    pub fn fail_all(&mut self, err: &MetaError) {
        let ids: Vec<RequestId> = self.deadlines.keys().copied().collect();
        for id in ids {
            self.reply(id, Err(err.clone()));
        }
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.by_deadline.first().map(|&(d, _)| d)
    }
}

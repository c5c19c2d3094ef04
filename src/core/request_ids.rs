//! Request ids, handed out in one place. The core needs ids that are unique among pending
//! requests, and every driver keeps, per pending request, what it needs to deliver the reply (a
//! reply channel, a client's own number, a deadline). [`RequestIds`] does both, so no driver
//! counts ids or pairs them with callers on its own.

use std::collections::BTreeMap;

use super::ids::RequestId;

/// The requests a driver has handed in and not yet answered, each with its caller `T`.
pub struct RequestIds<T> {
    /// Ids only grow, so a late reply to a forgotten request never matches a new one.
    last: u64,
    waiting: BTreeMap<RequestId, T>,
}

impl<T> Default for RequestIds<T> {
    fn default() -> Self {
        RequestIds { last: 0, waiting: BTreeMap::new() }
    }
}

impl<T> RequestIds<T> {
    /// A fresh id for a request from `caller`.
    pub fn admit(&mut self, caller: T) -> RequestId {
        self.last += 1;
        let id = RequestId(self.last);
        self.waiting.insert(id, caller);
        id
    }

    /// Who asked request `id`, handed over once, when its reply comes out.
    pub fn answer(&mut self, id: RequestId) -> Option<T> {
        self.waiting.remove(&id)
    }

    /// The requests still waiting for a reply, oldest first.
    pub fn waiting(&self) -> impl Iterator<Item = (RequestId, &T)> + '_ {
        self.waiting.iter().map(|(&id, t)| (id, t))
    }

    /// How many requests wait for a reply.
    pub fn len(&self) -> usize {
        self.waiting.len()
    }

    /// Whether no request waits for a reply.
    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }

    /// Forgets every waiting request (its core is gone); ids keep growing.
    pub fn clear(&mut self) {
        self.waiting.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_never_reused_and_each_caller_is_answered_once() {
        let mut ids = RequestIds::default();
        let a = ids.admit("a");
        ids.clear();
        let b = ids.admit("b");
        assert!(b > a);
        assert_eq!(ids.answer(a), None, "a forgotten request is not answered");
        assert_eq!(ids.answer(b), Some("b"));
        assert_eq!(ids.answer(b), None);
        assert!(ids.is_empty());
    }
}

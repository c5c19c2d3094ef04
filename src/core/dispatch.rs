//! One dispatch for every driver. The tokio driver, the in-process simulator and the test
//! harness each do different things with an output (a gRPC stream versus a simulated message),
//! but the same things *happen*: requests get ids, every output of a pass is handed out in
//! order, a reply finds its caller once, and the driver learns when to wake the core next. That
//! part lives here, once; a driver supplies only its [`Effects`].

use super::error::MetaError;
use super::ids::*;
use super::input::{Input, Request};
use super::meta::{MetaCore, Timer};
use super::output::{NodeMessage, Output, Redirect, ResignReason, Response, RouteUpdate};
use super::request_ids::RequestIds;
use super::storage::WriteBatch;
use super::time::Instant;

/// What a driver does with each kind of output (see [`Output`] for what each must do).
pub trait Effects {
    /// What the driver keeps per request to deliver its reply: a channel, a client's number.
    type Caller;
    /// Writes `batch` to storage, all or nothing, and hands its result back as an input.
    fn persist(&mut self, batch: WriteBatch);
    /// Sends `message` down the heartbeat stream `session`.
    fn to_node(&mut self, session: SessionId, message: NodeMessage);
    /// Ends the heartbeat stream `session` with `error`, sending the node to `redirect` if any.
    fn close_stream(&mut self, session: SessionId, redirect: Option<Redirect>, error: MetaError);
    /// The reply to request `id`, asked by `caller`.
    fn reply(&mut self, id: RequestId, caller: Self::Caller, result: Result<Response, MetaError>);
    /// Reads the catalog from storage for `term`, and hands it back as an input.
    fn load_snapshot(&mut self, term: Term);
    /// Gives up leadership of `term`, so that another meta node can be elected.
    fn resign(&mut self, term: Term, reason: ResignReason);
    /// Sends `update` to the route watch `watch`.
    fn to_watcher(&mut self, watch: WatchId, update: RouteUpdate);
    /// Ends the route watch `watch` with `error`.
    fn end_watch(&mut self, watch: WatchId, error: MetaError);
}

/// The callers of a core's pending requests, and the loop that hands its outputs out.
pub struct Dispatch<C> {
    callers: RequestIds<C>,
}

impl<C> Default for Dispatch<C> {
    fn default() -> Self {
        Dispatch { callers: RequestIds::default() }
    }
}

impl<C> Dispatch<C> {
    /// Gives `request` from `caller` a fresh id and hands it to the core; its id.
    pub fn request(
        &mut self,
        core: &mut MetaCore,
        now: Instant,
        caller: C,
        request: &Request,
    ) -> RequestId {
        let id = self.callers.admit(caller);
        core.handle(now, Input::Request { id, request });
        id
    }

    /// Hands every output the core holds to `effects`, in order, and returns when the core next
    /// wants an [`Input::Timeout`] and why.
    pub fn drain<E: Effects<Caller = C>>(
        &mut self,
        core: &mut MetaCore,
        effects: &mut E,
    ) -> Option<(Instant, Timer)> {
        while let Some(output) = core.poll_output() {
            match output {
                Output::Persist(batch) => effects.persist(batch),
                Output::ToNode { session, message } => effects.to_node(session, message),
                Output::CloseStream { session, redirect, error } => {
                    effects.close_stream(session, redirect, error)
                }
                Output::Reply { request, result } => match self.callers.answer(request) {
                    Some(caller) => effects.reply(request, caller, result),
                    None => debug_assert!(
                        false,
                        "a reply to request {request:?}, which no caller waits for"
                    ),
                },
                Output::LoadSnapshot { term } => effects.load_snapshot(term),
                Output::Resign { term, reason } => effects.resign(term, reason),
                Output::ToWatcher { watch, update } => effects.to_watcher(watch, update),
                Output::EndWatch { watch, error } => effects.end_watch(watch, error),
            }
        }
        core.poll_timeout()
    }

    /// Requests asked and not yet answered, oldest first.
    pub fn waiting(&self) -> impl Iterator<Item = (RequestId, &C)> + '_ {
        self.callers.waiting()
    }

    /// Forgets every waiting caller: their core is gone (a crash, a restart).
    pub fn forget(&mut self) {
        self.callers.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::config::CoreConfig;
    use crate::core::PageRequest;

    /// Replies only, each with the caller it came with.
    #[derive(Default)]
    struct Replies(Vec<(RequestId, &'static str, bool)>);

    impl Effects for Replies {
        type Caller = &'static str;
        fn persist(&mut self, _: WriteBatch) {}
        fn to_node(&mut self, _: SessionId, _: NodeMessage) {}
        fn close_stream(&mut self, _: SessionId, _: Option<Redirect>, _: MetaError) {}
        fn reply(
            &mut self,
            id: RequestId,
            caller: &'static str,
            result: Result<Response, MetaError>,
        ) {
            self.0.push((id, caller, result.is_ok()));
        }
        fn load_snapshot(&mut self, _: Term) {}
        fn resign(&mut self, _: Term, _: ResignReason) {}
        fn to_watcher(&mut self, _: WatchId, _: RouteUpdate) {}
        fn end_watch(&mut self, _: WatchId, _: MetaError) {}
    }

    #[test]
    fn each_reply_reaches_its_caller_once_and_a_forgotten_caller_none() {
        let mut core = MetaCore::new(CoreConfig::default(), 1);
        let mut dispatch = Dispatch::default();
        let list = Request::ListClusters { page: PageRequest::default() };
        let a = dispatch.request(&mut core, Instant(1), "a", &list);
        let b = dispatch.request(&mut core, Instant(1), "b", &list);
        let mut replies = Replies::default();
        dispatch.drain(&mut core, &mut replies);
        // A follower that knows no leader refuses at once.
        assert_eq!(replies.0, vec![(a, "a", false), (b, "b", false)]);
        assert_eq!(dispatch.waiting().count(), 0);
        dispatch.forget();
        let c = dispatch.request(&mut core, Instant(2), "c", &list);
        assert!(c > b, "ids are never reused");
    }
}

//! Operator requests about the placement rule: read it with how it stands, and replace it.

use super::clusters::cluster_named;
use super::requests::Handled;
use super::writes::Change;
use super::{Ctx, Leader};
use crate::core::cause::Cause;
use crate::core::error::{MetaError, MetaResult};
use crate::core::ids::RequestId;
use crate::core::live::LiveCluster;
use crate::core::model::{Mutation, PlacementRecord};
use crate::core::output::{PlacementInfo, Response};

impl Leader {
    pub(super) fn get_placement(&self, ctx: &Ctx, cluster: &str) -> MetaResult<Handled> {
        let c = cluster_named(&self.catalog, &self.pending_clusters, cluster, ctx.config)?;
        let live = &self.clusters[&c.id()];
        let rule = live.placement_written(c).cloned().unwrap_or_default();
        Ok(Handled::Reply(Response::Placement(info(rule, live))))
    }

    /// Stores `rule` one version above the rule in force (the last one queued, if its write has
    /// not landed), unless `expected` names another version. The scheduler moves shards to meet
    /// it once it lands.
    pub(super) fn set_placement(
        &mut self,
        ctx: &mut Ctx,
        id: RequestId,
        cluster: &str,
        rule: &PlacementRecord,
        expected: Option<u64>,
    ) -> MetaResult<Handled> {
        let c = cluster_named(&self.catalog, &self.pending_clusters, cluster, ctx.config)?;
        self.check_backlog(ctx)?;
        let cid = c.id();
        let live = self.clusters.get_mut(&cid).expect("every cluster has its live state");
        let old = live.placement_written(c).cloned().unwrap_or_default();
        if let Some(v) = expected.filter(|&v| v != old.version) {
            return Err(MetaError::FailedPrecondition(format!(
                "the placement rule is at version {}, not {v}: read it again and retry",
                old.version
            )));
        }
        let new = PlacementRecord { version: old.version + 1, ..rule.clone() };
        let text = format!("placement rule v{} set: {}", new.version, new.describe());
        live.log_event(ctx.now, Cause::Operator, None, text, ctx.config);
        live.placement_queued(new.clone());
        let response = Response::Placement(info(new.clone(), live));
        let mut change = Change::new(cid);
        change.mutations.push(Mutation::PutPlacement(cid, new));
        self.queue_reply(ctx, id, change, response)
    }
}

fn info(rule: PlacementRecord, live: &LiveCluster) -> PlacementInfo {
    let unsatisfied = live.unsatisfied();
    PlacementInfo { rule, unsatisfied: unsatisfied.shards, example: unsatisfied.example.clone() }
}

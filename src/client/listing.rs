//! Following a listing's pages to the end. Every listing RPC answers in pages (id order, an
//! opaque `next_page_token`); [`MetaClient::for_each_page`] walks them, so a caller can stream a
//! catalog of any size without holding it, and [`MetaClient::list_all`] collects them.

use std::future::Future;

use tonic::{Response, Status};

use super::credentials::Grpc;
use super::MetaClient;
use crate::proto;

/// A listing request whose answer comes in pages.
pub trait Paged: Clone + Send + 'static {
    type Page: Send;
    type Item;
    fn set_token(&mut self, token: String);
    fn split(page: Self::Page) -> (Vec<Self::Item>, String);
    fn call(
        client: Grpc,
        req: Self,
    ) -> impl Future<Output = Result<Response<Self::Page>, Status>> + Send;
}

macro_rules! paged {
    ($req:ident, $resp:ident, $items:ident, $item:ident, $rpc:ident) => {
        impl Paged for proto::$req {
            type Page = proto::$resp;
            type Item = proto::$item;
            fn set_token(&mut self, token: String) {
                self.page_token = token;
            }
            fn split(page: proto::$resp) -> (Vec<proto::$item>, String) {
                (page.$items, page.next_page_token)
            }
            fn call(
                mut client: Grpc,
                req: Self,
            ) -> impl Future<Output = Result<Response<proto::$resp>, Status>> + Send {
                async move { client.$rpc(req).await }
            }
        }
    };
}

paged!(ListClustersRequest, ListClustersResponse, clusters, ClusterInfo, list_clusters);
paged!(ListNodesRequest, ListNodesResponse, nodes, NodeInfo, list_nodes);
paged!(ListShardsRequest, ListShardsResponse, shards, ShardInfo, list_shards);
paged!(ListTablesRequest, ListTablesResponse, tables, TableInfo, list_tables);

impl MetaClient {
    /// Hands every page of the listing `req` to `each`, in order. Each page is one call, retried
    /// across leader changes like any other.
    pub async fn for_each_page<R: Paged>(
        &mut self,
        mut req: R,
        mut each: impl FnMut(Vec<R::Item>),
    ) -> Result<(), Status> {
        let mut last = String::new();
        loop {
            let sent = req.clone();
            let page = self.call(|c| R::call(c, sent.clone())).await?;
            let (items, token) = R::split(page);
            each(items);
            if token.is_empty() {
                return Ok(());
            }
            // Tokens only move forward; one handed back unchanged would page for ever.
            if token == last {
                return Err(Status::internal(format!(
                    "the listing handed back page token {token:?} twice"
                )));
            }
            last.clone_from(&token);
            req.set_token(token);
        }
    }

    /// Every item of the listing `req`, from all its pages.
    pub async fn list_all<R: Paged>(&mut self, req: R) -> Result<Vec<R::Item>, Status> {
        let mut all = Vec::new();
        self.for_each_page(req, |items| all.extend(items)).await?;
        Ok(all)
    }
}

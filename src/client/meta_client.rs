//! The meta client that frontends, operators and data nodes embed: it finds the leader from a
//! list of endpoints (any meta node answers `GetLeader`, and followers forward anyway), and
//! retries calls that meet a leader change with capped exponential backoff and jitter.

use std::future::Future;
use std::time::Duration;

use tonic::transport::Channel;
use tonic::{Code, Response, Status};

use crate::proto;
use crate::proto::meta_client::MetaClient as Grpc;

/// Attempts per call before the last error is returned.
const ATTEMPTS_MAX: u32 = 8;
const BACKOFF_FIRST: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(2);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Largest message the client accepts.
pub const MESSAGE_BYTES_MAX: usize = 16 * 1024 * 1024;

pub struct MetaClient {
    endpoints: Vec<String>,
    leader: Option<(String, Grpc<Channel>)>,
    timeout: Duration,
    /// Jitter state: a cheap xorshift seeded per client, so clients do not retry in lockstep.
    jitter: u64,
    /// Where the next leader lookup starts, so that one bad endpoint is not always asked first.
    first: usize,
}

/// `http://` unless the endpoint names its scheme.
pub fn uri(endpoint: &str) -> String {
    if endpoint.contains("://") {
        endpoint.to_owned()
    } else {
        format!("http://{endpoint}")
    }
}

pub async fn connect(endpoint: &str, timeout: Duration) -> Result<Grpc<Channel>, Status> {
    let channel = tonic::transport::Endpoint::from_shared(uri(endpoint))
        .map_err(|e| Status::invalid_argument(format!("endpoint {endpoint:?}: {e}")))?
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(timeout)
        .connect()
        .await
        .map_err(|e| Status::unavailable(format!("cannot reach {endpoint}: {e}")))?;
    Ok(Grpc::new(channel).max_decoding_message_size(MESSAGE_BYTES_MAX).max_encoding_message_size(MESSAGE_BYTES_MAX))
}

impl MetaClient {
    /// `timeout` bounds each call; the retries of one call take at most `ATTEMPTS_MAX` of them.
    pub fn new(endpoints: Vec<String>, timeout: Duration) -> Result<MetaClient, Status> {
        if endpoints.is_empty() {
            return Err(Status::invalid_argument("no meta endpoints given"));
        }
        let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64) | 1;
        let first = (seed >> 8) as usize % endpoints.len();
        Ok(MetaClient { endpoints, leader: None, timeout, jitter: seed, first })
    }

    /// The leader's endpoint and a client for it, found through any endpoint that answers.
    /// Endpoints are asked in turn, from a different one each lookup; one that knows no leader
    /// (a node cut off from etcd, or mid-election) is used, as a forwarder, only when no other
    /// endpoint names a leader.
    pub async fn leader(&mut self) -> Result<(String, Grpc<Channel>), Status> {
        if let Some(l) = &self.leader {
            return Ok(l.clone());
        }
        let mut last = Status::unavailable("no meta endpoint answered");
        let mut fallback = None;
        let n = self.endpoints.len();
        self.first = (self.first + 1) % n;
        for endpoint in (0..n).map(|i| self.endpoints[(self.first + i) % n].clone()) {
            let mut client = match connect(&endpoint, self.timeout).await {
                Ok(c) => c,
                Err(e) => {
                    last = e;
                    continue;
                }
            };
            let leader = match client.get_leader(proto::GetLeaderRequest {}).await {
                Ok(r) => r.into_inner().leader,
                Err(e) => {
                    last = e;
                    continue;
                }
            };
            let found = if leader == endpoint {
                (endpoint, client)
            } else if leader.is_empty() {
                fallback.get_or_insert((endpoint, client));
                continue;
            } else {
                match connect(&leader, self.timeout).await {
                    Ok(c) => (leader, c),
                    Err(_) => {
                        fallback.get_or_insert((endpoint, client));
                        continue;
                    }
                }
            };
            self.leader = Some(found.clone());
            return Ok(found);
        }
        let found = fallback.ok_or(last)?;
        self.leader = Some(found.clone());
        Ok(found)
    }

    /// Forgets the leader, so the next call looks it up again.
    pub fn reset(&mut self) {
        self.leader = None;
    }

    fn backoff(&mut self, attempt: u32) -> Duration {
        self.jitter ^= self.jitter << 13;
        self.jitter ^= self.jitter >> 7;
        self.jitter ^= self.jitter << 17;
        let base = BACKOFF_FIRST.saturating_mul(1 << attempt.min(10)).min(BACKOFF_MAX);
        // Between half and all of the base.
        base / 2 + Duration::from_millis(self.jitter % (base.as_millis() as u64 / 2 + 1))
    }

    /// Runs a call against the leader, retrying while the service is unavailable (a leader
    /// change, a restart). Other errors are final and returned at once.
    pub async fn call<T, F, Fut>(&mut self, mut f: F) -> Result<T, Status>
    where
        F: FnMut(Grpc<Channel>) -> Fut,
        Fut: Future<Output = Result<Response<T>, Status>>,
    {
        let mut last = Status::unavailable("no attempt made");
        for attempt in 0..ATTEMPTS_MAX {
            match self.leader().await {
                Ok((_, client)) => match f(client).await {
                    Ok(r) => return Ok(r.into_inner()),
                    Err(e) if e.code() == Code::Unavailable => last = e,
                    Err(e) => return Err(e),
                },
                Err(e) => last = e,
            }
            self.reset();
            let pause = self.backoff(attempt);
            tokio::time::sleep(pause).await;
        }
        Err(last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_with_jitter_and_is_capped() {
        let mut c = MetaClient::new(vec!["x:1".into()], Duration::from_secs(1)).unwrap();
        let first = c.backoff(0);
        assert!(first >= BACKOFF_FIRST / 2 && first <= BACKOFF_FIRST, "{first:?}");
        for attempt in 0..20 {
            assert!(c.backoff(attempt) <= BACKOFF_MAX);
        }
        assert!(c.backoff(10) >= BACKOFF_MAX / 2);
    }

    #[test]
    fn no_endpoints_is_an_error() {
        assert!(MetaClient::new(vec![], Duration::from_secs(1)).is_err());
    }
}

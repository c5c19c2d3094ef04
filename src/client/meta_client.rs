//! The meta client that frontends, operators and data nodes embed: it finds the leader from a
//! list of endpoints (any meta node answers `GetLeader`, and followers forward anyway), and
//! retries calls that meet a leader change with capped exponential backoff and jitter.

use std::future::Future;
use std::time::Duration;

use tonic::{Code, Response, Status};

use super::credentials::Credentials;
pub use super::credentials::{Grpc, MESSAGE_BYTES_MAX};
use crate::proto;

/// Attempts per call before the last error is returned.
const ATTEMPTS_MAX: u32 = 8;
const BACKOFF_FIRST: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(2);
/// How long a leader lookup waits on one endpoint: a live meta answers `GetLeader` from memory
/// at once, so one that takes longer is stopped, cut off or overloaded.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(2);

pub struct MetaClient {
    endpoints: Vec<String>,
    leader: Option<(String, Grpc)>,
    timeout: Duration,
    credentials: Credentials,
    /// Jitter state: a cheap xorshift seeded per client, so clients do not retry in lockstep.
    jitter: u64,
}

/// The URI of an endpoint dialled without TLS.
pub fn uri(endpoint: &str) -> String {
    Credentials::default().uri(endpoint)
}

/// Connects to one meta node without TLS or a token.
pub async fn connect(endpoint: &str, timeout: Duration) -> Result<Grpc, Status> {
    Credentials::default().connect(endpoint, timeout).await
}

impl MetaClient {
    /// `timeout` bounds each call; the retries of one call take at most `ATTEMPTS_MAX` of them.
    pub fn new(endpoints: Vec<String>, timeout: Duration) -> Result<MetaClient, Status> {
        if endpoints.is_empty() {
            return Err(Status::invalid_argument("no meta endpoints given"));
        }
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
            | 1;
        Ok(MetaClient {
            endpoints,
            leader: None,
            timeout,
            credentials: Credentials::default(),
            jitter: seed,
        })
    }

    /// Presents these credentials (TLS, a token) on every call.
    pub fn with_credentials(mut self, credentials: Credentials) -> MetaClient {
        self.credentials = credentials;
        self.leader = None;
        self
    }

    /// Starts from an open channel to the first endpoint, taken as the leader until a call finds
    /// otherwise: a caller that makes many short-lived clients to one node (the admin port)
    /// shares one connection. Set the credentials first.
    pub fn with_connection(mut self, channel: tonic::transport::Channel) -> MetaClient {
        let grpc =
            proto::meta_client::MetaClient::with_interceptor(channel, self.credentials.clone());
        self.leader = Some((
            self.endpoints[0].clone(),
            grpc.max_decoding_message_size(MESSAGE_BYTES_MAX)
                .max_encoding_message_size(MESSAGE_BYTES_MAX),
        ));
        self
    }

    /// Connects to one meta node with this client's credentials.
    pub async fn connect_to(&self, endpoint: &str) -> Result<Grpc, Status> {
        self.credentials.connect(endpoint, self.timeout).await
    }

    /// The leader's endpoint and a client for it, found through any endpoint that answers.
    /// Every endpoint is asked at once, and the first that names itself is the leader. When
    /// none does, a leader the others name is dialled (unless it is an endpoint that did not
    /// answer); failing that, an endpoint that answered (a node cut off from etcd, or
    /// mid-election) is used as a forwarder of unary calls.
    pub async fn leader(&mut self) -> Result<(String, Grpc), Status> {
        self.lookup(true).await
    }

    /// [`leader`](Self::leader) for a heartbeat stream, which only the leader serves: never a
    /// forwarder. A follower would only redirect the stream to the leader it names, and while
    /// etcd still names a leader that died (until its election lease runs out) that redirect
    /// leads nowhere; a node that looked again at once would be redirected again and again.
    pub async fn stream_leader(&mut self) -> Result<(String, Grpc), Status> {
        self.lookup(false).await
    }

    async fn lookup(&mut self, forwarder_ok: bool) -> Result<(String, Grpc), Status> {
        if let Some(l) = &self.leader {
            return Ok(l.clone());
        }
        let n = self.endpoints.len();
        // Every endpoint is asked at once: a meta that is stopped (SIGSTOP, a hung host) still
        // accepts connections and never answers, and asking in turn would wait out its timeout
        // before the next endpoint, the new leader perhaps, were asked at all.
        let (tx, mut answers) = tokio::sync::mpsc::channel(n);
        let within = self.timeout.min(LOOKUP_TIMEOUT);
        for endpoint in self.endpoints.iter().cloned() {
            let (credentials, tx) = (self.credentials.clone(), tx.clone());
            tokio::task::spawn(async move {
                let asked = async {
                    let mut client = credentials.connect(&endpoint, within).await?;
                    let leader =
                        client.get_leader(proto::GetLeaderRequest {}).await?.into_inner().leader;
                    Ok::<_, Status>((leader, client))
                };
                let answer = tokio::time::timeout(within, asked).await.unwrap_or_else(|_| {
                    Err(Status::deadline_exceeded(format!(
                        "{endpoint} did not answer within {within:?}"
                    )))
                });
                let _ = tx.send((endpoint, answer)).await;
            });
        }
        drop(tx);
        let mut last = Status::unavailable("no meta endpoint answered");
        let (mut named, mut fallback, mut silent) = (None, None, Vec::new());
        while let Some((endpoint, answer)) = answers.recv().await {
            match answer {
                Ok((leader, client)) if leader == endpoint => {
                    self.leader = Some((endpoint, client));
                    return Ok(self.leader.clone().expect("just set"));
                }
                Ok((leader, client)) => {
                    if !leader.is_empty() {
                        named.get_or_insert(leader);
                    }
                    fallback.get_or_insert((endpoint, client));
                }
                Err(e) => {
                    silent.push(endpoint);
                    last = e;
                }
            }
        }
        // Nobody named itself. A leader named by others is dialled, unless it is one of ours
        // that did not answer for itself: a stopped or cut-off leader, whose election lease
        // has yet to run out.
        if let Some(leader) = named {
            if silent.contains(&leader) {
                last = Status::unavailable(format!(
                    "the meta leader {leader} named by the others does not answer"
                ));
            } else {
                match self.connect_to(&leader).await {
                    Ok(c) => {
                        self.leader = Some((leader, c));
                        return Ok(self.leader.clone().expect("just set"));
                    }
                    Err(e) => {
                        last = Status::unavailable(format!(
                            "the meta leader {leader} is unreachable: {}",
                            e.message()
                        ))
                    }
                }
            }
        }
        let found = fallback.filter(|_| forwarder_ok).ok_or(last)?;
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
        F: FnMut(Grpc) -> Fut,
        Fut: Future<Output = Result<Response<T>, Status>>,
    {
        let mut last = Status::unavailable("no attempt made");
        for attempt in 0..ATTEMPTS_MAX {
            match self.leader().await {
                Ok((_, client)) => match f(client).await {
                    Ok(r) => return Ok(r.into_inner()),
                    Err(e) if e.code() == Code::Unavailable => last = e,
                    Err(e) => {
                        // A call that timed out or broke may have met a leader that is paused
                        // or gone: the next call looks the leader up again instead of waiting on
                        // it once more. (This one is not retried: its outcome is unknown here.)
                        if matches!(
                            e.code(),
                            Code::DeadlineExceeded | Code::Cancelled | Code::Unknown
                        ) {
                            self.reset();
                        }
                        return Err(explained(e));
                    }
                },
                // No endpoint answered: worth retrying only when none could be reached; a
                // refusal (a token, a certificate) will not change.
                Err(e) if e.code() == Code::Unavailable => last = e,
                Err(e) => return Err(explained(e)),
            }
            self.reset();
            let pause = self.backoff(attempt);
            tokio::time::sleep(pause).await;
        }
        Err(last)
    }
}

/// A status that came from the transport, not from meta, with the transport's reasons in its
/// message: tonic says only "transport error" where the cause is a refused certificate, or a
/// plain client talking to a TLS port.
fn explained(status: Status) -> Status {
    use std::error::Error as _;
    let Some(source) = status.source() else { return status };
    let mut message = super::credentials::transport_error(source);
    if message.contains("http2 error") || message.contains("frame with invalid size") {
        message.push_str(" (is the server serving TLS? then give the client its CA)");
    } else if message.contains("CertificateRequired") {
        message.push_str(" (the server asks for a client certificate: mutual TLS)");
    }
    Status::new(status.code(), format!("{}: {message}", status.message()))
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

//! How a client proves itself to meta: TLS (the CA it trusts, and its own certificate where meta
//! asks for mutual TLS) and the bearer token it presents on every call, as gRPC's standard
//! `authorization: Bearer <token>`.
//!
//! Meta keeps two tokens (`server::auth`): the admin token for DDL and operations, and the node
//! token for heartbeats. Either reads. Operators give `metactl` the first, data nodes the second.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tonic::metadata::AsciiMetadataValue;
use tonic::service::Interceptor;
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Status};

use crate::proto;

/// The metadata key the token travels under.
pub const AUTHORIZATION: &str = "authorization";
/// A token is visible ASCII, no shorter than this (a guessable token protects nothing) …
pub const TOKEN_BYTES_MIN: usize = 16;
/// … and no longer than this (it travels on every call).
pub const TOKEN_BYTES_MAX: usize = 1024;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Largest message a client accepts or sends.
pub const MESSAGE_BYTES_MAX: usize = 16 * 1024 * 1024;

/// A client of meta, with its credentials attached to every call.
#[cfg(not(madsim))]
pub type Grpc = proto::meta_client::MetaClient<
    tonic::service::interceptor::InterceptedService<Channel, Credentials>,
>;
#[cfg(madsim)]
pub type Grpc = proto::meta_client::MetaClient<Channel, Credentials>;

/// What a client presents: nothing by default (a meta server without TLS or tokens).
#[derive(Clone, Default)]
pub struct Credentials {
    bearer: Option<AsciiMetadataValue>,
    #[cfg(not(madsim))]
    tls: Option<tonic::transport::ClientTlsConfig>,
}

/// A client's TLS settings (PEM files), as config files and flags give them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Deserialize), serde(deny_unknown_fields, default))]
pub struct ClientTls {
    /// The CA that signed meta's certificates: setting it turns TLS on.
    pub ca: Option<PathBuf>,
    /// This client's certificate and key, for a meta that asks for mutual TLS.
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// The name meta's certificate must carry, when it is not the endpoint's host.
    pub domain: Option<String>,
}

impl ClientTls {
    pub fn is_set(&self) -> bool {
        *self != ClientTls::default()
    }
}

/// A token given in a variable or a flag: kept out of `Debug`, so that no log shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A token from a file or from the variable `var` (whose value is `value`), not both.
pub fn token_from(
    file: Option<&Path>,
    value: Option<&Secret>,
    var: &str,
) -> Result<Option<String>, String> {
    match (file, value) {
        (Some(path), Some(_)) => {
            Err(format!("a token is given both in {} and in {var}; give one", path.display()))
        }
        (Some(path), None) => read_token(path).map(Some),
        (None, Some(Secret(v))) => token(v, var).map(Some),
        (None, None) => Ok(None),
    }
}

impl fmt::Debug for Credentials {
    // The token never reaches a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("token", &self.bearer.as_ref().map(|_| "<redacted>"))
            .field("tls", &self.tls_on())
            .finish()
    }
}

/// Checks a token as read from a file or a variable: one trailing newline is dropped (files end
/// with one), and what remains must be visible ASCII of a sane length.
pub fn token(text: &str, source: &str) -> Result<String, String> {
    let t = text.strip_suffix('\n').map(|t| t.strip_suffix('\r').unwrap_or(t)).unwrap_or(text);
    if !(TOKEN_BYTES_MIN..=TOKEN_BYTES_MAX).contains(&t.len()) {
        return Err(format!(
            "{source}: a token must be {TOKEN_BYTES_MIN} to {TOKEN_BYTES_MAX} bytes long, not {}",
            t.len()
        ));
    }
    if !t.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!("{source}: a token must be visible ASCII, without spaces"));
    }
    Ok(t.to_owned())
}

/// Reads a token file (see [`token`]).
pub fn read_token(path: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read token file {}: {e}", path.display()))?;
    token(&text, &path.display().to_string())
}

/// Reads a PEM file, checking that it holds what it should (`CERTIFICATE` or `PRIVATE KEY`), so
/// that a wrong path fails at start with its name rather than at the first handshake.
pub fn read_pem(path: &Path, holds: &str) -> Result<Vec<u8>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let text = String::from_utf8_lossy(&pem);
    if !text.lines().any(|l| l.starts_with("-----BEGIN ") && l.contains(holds)) {
        return Err(format!("{} holds no PEM {holds}", path.display()));
    }
    Ok(pem)
}

impl Credentials {
    /// Presents `token` on every call.
    pub fn with_token(mut self, token: &str) -> Result<Credentials, String> {
        let value = format!("Bearer {}", self::token(token, "token")?);
        let mut bearer: AsciiMetadataValue =
            value.parse().map_err(|_| "token: not valid in a gRPC header".to_string())?;
        // Kept out of HTTP/2 header compression tables and out of `Debug`.
        bearer.set_sensitive(true);
        self.bearer = Some(bearer);
        Ok(self)
    }

    /// TLS as `tls` says (none when it is unset) and the token, if any.
    pub fn from_settings(tls: &ClientTls, token: Option<&str>) -> Result<Credentials, String> {
        let mut c = Credentials::default();
        if tls.is_set() {
            c = c.with_tls(tls)?;
        }
        match token {
            Some(t) => c.with_token(t),
            None => Ok(c),
        }
    }

    /// Dials over TLS, trusting `tls.ca`.
    #[cfg(not(madsim))]
    pub fn with_tls(mut self, settings: &ClientTls) -> Result<Credentials, String> {
        use tonic::transport::{Certificate, ClientTlsConfig, Identity};
        let ca = settings.ca.as_ref().ok_or("tls: ca is needed: it is what the client trusts")?;
        let mut tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(read_pem(ca, "CERTIFICATE")?));
        match (&settings.cert, &settings.key) {
            (Some(cert), Some(key)) => {
                tls = tls.identity(Identity::from_pem(
                    read_pem(cert, "CERTIFICATE")?,
                    read_pem(key, "PRIVATE KEY")?,
                ))
            }
            (None, None) => {}
            _ => return Err("tls: cert and key are set together".into()),
        }
        if let Some(domain) = &settings.domain {
            tls = tls.domain_name(domain.clone());
        }
        self.tls = Some(tls);
        Ok(self)
    }

    /// Under simulation there is no TLS: the network is madsim's.
    #[cfg(madsim)]
    pub fn with_tls(self, _settings: &ClientTls) -> Result<Credentials, String> {
        Err("TLS is not available under simulation".into())
    }

    /// Whether calls go over TLS.
    pub fn tls_on(&self) -> bool {
        #[cfg(not(madsim))]
        return self.tls.is_some();
        #[cfg(madsim)]
        false
    }

    /// The URI for an endpoint: `https://` over TLS, `http://` otherwise, unless the endpoint
    /// names its scheme.
    pub fn uri(&self, endpoint: &str) -> String {
        match (endpoint.contains("://"), self.tls_on()) {
            (true, _) => endpoint.to_owned(),
            (false, true) => format!("https://{endpoint}"),
            (false, false) => format!("http://{endpoint}"),
        }
    }

    /// An endpoint to dial, with this TLS, each call bounded by `timeout`.
    pub fn endpoint(&self, endpoint: &str, timeout: Duration) -> Result<Endpoint, Status> {
        let e = Endpoint::from_shared(self.uri(endpoint))
            .map_err(|e| Status::invalid_argument(format!("endpoint {endpoint:?}: {e}")))?
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(timeout);
        #[cfg(not(madsim))]
        let e = match &self.tls {
            Some(tls) => e
                .tls_config(tls.clone())
                .map_err(|e| Status::invalid_argument(format!("TLS for {endpoint}: {e}")))?,
            None => e,
        };
        Ok(e)
    }

    /// Connects to one meta node.
    pub async fn connect(&self, endpoint: &str, timeout: Duration) -> Result<Grpc, Status> {
        let channel = self.endpoint(endpoint, timeout)?.connect().await.map_err(|e| {
            Status::unavailable(format!("cannot reach {endpoint}: {}", transport_error(&e)))
        })?;
        Ok(proto::meta_client::MetaClient::with_interceptor(channel, self.clone())
            .max_decoding_message_size(MESSAGE_BYTES_MAX)
            .max_encoding_message_size(MESSAGE_BYTES_MAX))
    }
}

/// A transport error with its causes: tonic's own text is only "transport error", and the
/// reason (a refused certificate, a closed port) is further down.
pub fn transport_error(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

impl Interceptor for Credentials {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        // A forwarded call carries its caller's token already; it is not replaced.
        if let Some(bearer) = &self.bearer {
            if !request.metadata().contains_key(AUTHORIZATION) {
                request.metadata_mut().insert(AUTHORIZATION, bearer.clone());
            }
        }
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_checked_and_a_files_newline_dropped() {
        assert_eq!(token("0123456789abcdef\n", "f").unwrap(), "0123456789abcdef");
        assert!(token("short", "f").unwrap_err().contains("16 to 1024"));
        assert!(token("0123456789 abcdef", "f").unwrap_err().contains("visible ASCII"));
        assert!(token(&"x".repeat(2000), "f").is_err());
    }

    #[test]
    fn the_token_rides_every_call_but_a_forwarded_one_keeps_its_own() {
        let mut c = Credentials::default().with_token("0123456789abcdef").unwrap();
        let r = c.call(Request::new(())).unwrap();
        assert_eq!(r.metadata().get(AUTHORIZATION).unwrap(), "Bearer 0123456789abcdef");
        let mut forwarded = Request::new(());
        forwarded.metadata_mut().insert(AUTHORIZATION, "Bearer theirs-0123456789".parse().unwrap());
        assert_eq!(
            c.call(forwarded).unwrap().metadata().get(AUTHORIZATION).unwrap(),
            "Bearer theirs-0123456789"
        );
        assert!(!format!("{c:?}").contains("0123456789abcdef"), "the token is redacted");
    }

    #[test]
    fn the_scheme_follows_tls() {
        assert_eq!(Credentials::default().uri("m:1"), "http://m:1");
        assert_eq!(Credentials::default().uri("https://m:1"), "https://m:1");
    }
}

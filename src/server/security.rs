//! The meta server's TLS and tokens, read from the files the configuration names: what the gRPC
//! port serves with, how this node dials other meta nodes and etcd, and who may call
//! (`server::auth`). Everything is read and checked once, at start, so that a wrong path or a
//! file of the wrong kind stops the server with its name instead of failing the first handshake.

use super::auth::Auth;
use super::config::ServerConfig;
#[cfg(not(madsim))]
use crate::client::credentials::read_pem;
use crate::client::credentials::{ClientTls, Credentials};

pub struct Security {
    pub auth: Auth,
    /// How this node dials meta nodes: other ones when it forwards, itself from the admin port.
    pub dial: Credentials,
    /// The gRPC port's TLS; `None` serves plain HTTP/2.
    #[cfg(not(madsim))]
    pub serve: Option<tonic::transport::ServerTlsConfig>,
    /// etcd's TLS; `None` dials etcd in the clear.
    #[cfg(not(madsim))]
    pub etcd: Option<etcd_client::TlsOptions>,
}

impl Security {
    pub fn load(config: &ServerConfig) -> Result<Security, String> {
        let auth = match config.auth.tokens()? {
            Some((admin, node)) => Auth::new(admin, node)?,
            None => Auth::off(),
        };
        let tls = &config.tls;
        let mut dial = Credentials::default();
        if let (Some(cert), Some(key), Some(ca)) = (&tls.cert, &tls.key, &tls.ca) {
            // Under mutual TLS this node proves itself with its own certificate when it dials.
            let (cert, key) = if tls.client_auth {
                (Some(cert.clone()), Some(key.clone()))
            } else {
                (None, None)
            };
            dial = dial
                .with_tls(&ClientTls { ca: Some(ca.clone()), cert, key, domain: None })
                .map_err(|e| format!("tls: {e}"))?;
        }
        Ok(Security {
            auth,
            dial,
            #[cfg(not(madsim))]
            serve: serve_tls(config)?,
            #[cfg(not(madsim))]
            etcd: etcd_tls(config)?,
        })
    }

    /// One line for the start-up log.
    pub fn describe(&self) -> String {
        format!(
            "tls={} tokens={}",
            if self.dial.tls_on() { "on" } else { "off" },
            if self.auth.on() { "on" } else { "off" }
        )
    }
}

#[cfg(not(madsim))]
fn serve_tls(config: &ServerConfig) -> Result<Option<tonic::transport::ServerTlsConfig>, String> {
    use tonic::transport::{Certificate, Identity, ServerTlsConfig};
    let tls = &config.tls;
    let (Some(cert), Some(key)) = (&tls.cert, &tls.key) else { return Ok(None) };
    let identity = Identity::from_pem(
        read_pem(cert, "CERTIFICATE").map_err(tls_err)?,
        read_pem(key, "PRIVATE KEY").map_err(tls_err)?,
    );
    let mut serve = ServerTlsConfig::new().identity(identity);
    if tls.client_auth {
        let ca = tls.ca.as_ref().expect("validated: client_auth has a ca");
        serve = serve
            .client_ca_root(Certificate::from_pem(read_pem(ca, "CERTIFICATE").map_err(tls_err)?));
    }
    Ok(Some(serve))
}

#[cfg(not(madsim))]
fn etcd_tls(config: &ServerConfig) -> Result<Option<etcd_client::TlsOptions>, String> {
    use etcd_client::{Certificate, Identity, TlsOptions};
    let e = &config.etcd_tls;
    let Some(ca) = &e.ca else { return Ok(None) };
    let etcd_err = |e: String| format!("etcd_tls: {e}");
    let mut tls = TlsOptions::new()
        .ca_certificate(Certificate::from_pem(read_pem(ca, "CERTIFICATE").map_err(etcd_err)?));
    if let (Some(cert), Some(key)) = (&e.cert, &e.key) {
        tls = tls.identity(Identity::from_pem(
            read_pem(cert, "CERTIFICATE").map_err(etcd_err)?,
            read_pem(key, "PRIVATE KEY").map_err(etcd_err)?,
        ));
    }
    Ok(Some(tls))
}

#[cfg(not(madsim))]
fn tls_err(e: String) -> String {
    format!("tls: {e}")
}

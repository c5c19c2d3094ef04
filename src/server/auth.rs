//! Who may call: two bearer tokens, checked on every gRPC call (and every `/api/v1` call of the
//! admin port). The admin token is for operators: DDL, drains, the scheduler. The node token is
//! for data nodes: heartbeats. Either may read (routes, listings, the leader), which is what
//! frontends and data nodes do besides.
//!
//! A missing or wrong token is `UNAUTHENTICATED`; a right token used for what its role may not do
//! is `PERMISSION_DENIED`. With no tokens configured every call is let through, as before.

use tonic::metadata::MetadataMap;
use tonic::Status;

use crate::client::credentials::AUTHORIZATION;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Admin,
    Node,
}

/// What a call does, for deciding which roles may make it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Routes, listings, views, the leader.
    Read,
    /// DDL and operations.
    Change,
    /// A heartbeat stream: joining the cluster as a data node.
    Join,
}

/// The configured tokens; `None` when authentication is off.
#[derive(Clone, Default)]
pub struct Auth {
    tokens: Option<Tokens>,
}

#[derive(Clone)]
struct Tokens {
    admin: Vec<u8>,
    node: Vec<u8>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.tokens.is_some() { "Auth(on)" } else { "Auth(off)" })
    }
}

impl Auth {
    pub fn off() -> Auth {
        Auth::default()
    }

    /// Both tokens, which must differ: the role is read off the token.
    pub fn new(admin: String, node: String) -> Result<Auth, String> {
        if admin == node {
            return Err("the admin and node tokens must differ".into());
        }
        Ok(Auth { tokens: Some(Tokens { admin: admin.into_bytes(), node: node.into_bytes() }) })
    }

    pub fn on(&self) -> bool {
        self.tokens.is_some()
    }

    /// The caller's role, from its `authorization: Bearer <token>`; `None` when tokens are off.
    pub fn authenticate(&self, metadata: &MetadataMap) -> Result<Option<Role>, Status> {
        let header = metadata.get(AUTHORIZATION).map(|v| v.to_str().map_err(|_| ()));
        self.role_of(header.map(|h| h.unwrap_or("")))
    }

    /// As [`Auth::authenticate`], from a header's text (the admin port's HTTP header).
    pub fn role_of(&self, header: Option<&str>) -> Result<Option<Role>, Status> {
        let Some(tokens) = &self.tokens else { return Ok(None) };
        let Some(header) = header else {
            return Err(Status::unauthenticated(
                "this meta service needs a token: send authorization: Bearer <token>",
            ));
        };
        let presented = header.strip_prefix("Bearer ").unwrap_or("").as_bytes();
        if same(presented, &tokens.admin) {
            Ok(Some(Role::Admin))
        } else if same(presented, &tokens.node) {
            Ok(Some(Role::Node))
        } else {
            Err(Status::unauthenticated("the token is not valid here"))
        }
    }

    /// Authenticates the caller and checks that its role may do `access`.
    pub fn check(&self, metadata: &MetadataMap, access: Access) -> Result<(), Status> {
        permit(self.authenticate(metadata)?, access)
    }
}

/// Whether `role` may do `access` (`None`: tokens are off, everything is let through).
pub fn permit(role: Option<Role>, access: Access) -> Result<(), Status> {
    match (role, access) {
        (None, _)
        | (Some(_), Access::Read)
        | (Some(Role::Admin), Access::Change)
        | (Some(Role::Node), Access::Join) => Ok(()),
        (Some(Role::Node), Access::Change) => Err(Status::permission_denied(
            "the node token cannot change the catalog or the cluster: use the admin token",
        )),
        (Some(Role::Admin), Access::Join) => Err(Status::permission_denied(
            "the admin token cannot join as a data node: use the node token",
        )),
    }
}

/// Compares in time that depends only on the lengths, so that a caller cannot find a token a
/// byte at a time by timing refusals.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    const ADMIN: &str = "admin-token-0123456789";
    const NODE: &str = "node-token-0123456789";

    fn with(header: Option<&str>) -> MetadataMap {
        let mut m = MetadataMap::new();
        if let Some(h) = header {
            m.insert(AUTHORIZATION, h.parse().unwrap());
        }
        m
    }

    #[test]
    fn each_token_may_do_what_its_role_may_and_nothing_else() {
        let auth = Auth::new(ADMIN.into(), NODE.into()).unwrap();
        let admin = with(Some(&format!("Bearer {ADMIN}")));
        let node = with(Some(&format!("Bearer {NODE}")));
        assert!(
            auth.check(&admin, Access::Change).is_ok() && auth.check(&admin, Access::Read).is_ok()
        );
        assert!(auth.check(&node, Access::Join).is_ok() && auth.check(&node, Access::Read).is_ok());
        assert_eq!(
            auth.check(&node, Access::Change).unwrap_err().code(),
            tonic::Code::PermissionDenied
        );
        assert_eq!(
            auth.check(&admin, Access::Join).unwrap_err().code(),
            tonic::Code::PermissionDenied
        );
        for refused in [
            with(None),
            with(Some("Bearer wrong-token-0123456789")),
            with(Some(ADMIN)),
            with(Some(&format!("Basic {ADMIN}"))),
        ] {
            assert_eq!(
                auth.check(&refused, Access::Read).unwrap_err().code(),
                tonic::Code::Unauthenticated
            );
        }
    }

    #[test]
    fn without_tokens_everything_passes_and_equal_tokens_are_refused() {
        assert!(Auth::off().check(&with(None), Access::Change).is_ok());
        assert!(Auth::new(ADMIN.into(), ADMIN.into()).unwrap_err().contains("differ"));
    }
}

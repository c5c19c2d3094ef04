//! Bad requests through the real core: each gets a typed error that names what was wrong, and
//! changes nothing.

use std::collections::BTreeMap;

use crate::harness::*;
use shardmeta::core::*;

#[test]
fn bad_requests_get_typed_errors_and_change_nothing() {
    let (mut h, _) = steady_cluster(2);
    let before = h.store.clone();
    let err = |r: Result<Response, MetaError>| r.expect_err("refused");
    assert!(
        matches!(err(h.create_table("", false)), MetaError::InvalidArgument(m) if m.contains("empty"))
    );
    assert!(matches!(err(h.create_table("bad name", false)), MetaError::InvalidArgument(_)));
    assert!(
        matches!(err(h.create_table(&"x".repeat(200), false)), MetaError::InvalidArgument(m) if m.contains("limit"))
    );
    assert!(
        matches!(err(h.create_table("__t_0", false)), MetaError::InvalidArgument(m) if m.contains("reserved"))
    );
    assert_eq!(h.store, before, "refused requests write nothing");

    let created = h.create_table("t", false).unwrap();
    assert!(matches!(err(h.create_table("t", false)), MetaError::AlreadyExists(_)));
    let again = h.create_table("t", true).unwrap();
    let (
        Response::TableCreated { table: a, created: true },
        Response::TableCreated { table: b, created: false },
    ) = (created, again)
    else {
        panic!()
    };
    assert_eq!(a, b, "if-not-exists answers with the existing table");

    let id = h.request(Request::RouteTables {
        cluster: "nope".into(),
        schema: "public".into(),
        tables: vec!["t".into()],
    });
    assert!(
        matches!(&h.outputs()[..], [Output::Reply { request, result: Err(MetaError::NotFound(m)) }] if *request == id && m.contains("nope"))
    );
    let id = h.request(Request::DropTable {
        cluster: "c".into(),
        schema: "public".into(),
        name: "missing".into(),
    });
    assert!(
        matches!(&h.outputs()[..], [Output::Reply { request, result: Err(MetaError::NotFound(_)) }] if *request == id)
    );
    let big = CreateTable {
        cluster: "c".into(),
        schema: "public".into(),
        name: "big".into(),
        encoded_schema: vec![0; CoreConfig::default().encoded_schema_bytes_max + 1],
        options: BTreeMap::new(),
        if_not_exists: false,
        partition: None,
    };
    let id = h.request(Request::CreateTable(big));
    assert!(
        matches!(&h.outputs()[..], [Output::Reply { request, result: Err(MetaError::InvalidArgument(m)) }] if *request == id && m.contains("bytes"))
    );
}

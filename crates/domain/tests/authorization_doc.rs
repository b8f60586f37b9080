//! `docs/authorization.md` must be exactly what the policy generates.
//! `UPDATE_DOCS=1 cargo test -p inventiv-domain --test authorization_doc` (what `make docs`
//! runs) rewrites it instead.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use inventiv_domain::authorization_markdown;

const DOC_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/authorization.md");

#[test]
fn authorization_doc_is_up_to_date() {
    let generated = authorization_markdown();
    if std::env::var("UPDATE_DOCS").as_deref() == Ok("1") {
        std::fs::write(DOC_PATH, &generated).expect("write docs/authorization.md");
        return;
    }
    let on_disk = std::fs::read_to_string(DOC_PATH).unwrap_or_default();
    assert!(
        on_disk == generated,
        "docs/authorization.md is stale: run `make docs`"
    );
}

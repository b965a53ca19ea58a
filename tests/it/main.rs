//! Cross-crate integration tests: one binary, modules per scenario.

#[test]
fn workspace_crates_link_together() {
    // Filled with the end-to-end scenario by the action issue.
    assert_eq!(env!("CARGO_PKG_NAME"), "flow-tests");
}

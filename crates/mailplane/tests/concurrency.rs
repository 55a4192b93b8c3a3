//! Concurrent changes through the HTTP API of one node: none is lost, none is
//! half-applied, no answer is a 5xx. The scenarios are in `common/concurrency.rs`;
//! `two_nodes.rs` runs them with the clients spread over two nodes.

mod common;

use common::concurrency::*;
use common::*;

backend_tests!(
    concurrent_identity_additions_are_all_kept,
    concurrent_changes_of_different_fields_all_land,
    concurrent_reorders_end_in_one_submitted_permutation,
    concurrent_claims_of_one_address_have_one_winner,
);

async fn concurrent_identity_additions_are_all_kept() {
    let app = TestApp::demo();
    identity_additions_are_all_kept(&[&app], 32).await;
}

async fn concurrent_changes_of_different_fields_all_land() {
    let app = TestApp::demo();
    changes_of_different_fields_all_land(&[&app], 10).await;
}

async fn concurrent_reorders_end_in_one_submitted_permutation() {
    let app = TestApp::demo();
    reorders_end_in_one_submitted_permutation(&[&app], 21).await;
}

async fn concurrent_claims_of_one_address_have_one_winner() {
    let app = TestApp::demo();
    claims_of_one_address_have_one_winner(&[&app], 6, 10).await;
}

// The end-to-end tests have PostgreSQL variants and a Postfix test: the probes that
// decide whether they run, shared with the store (see `crates/store/probes.rs`).
include!("../store/probes.rs");

fn main() {
    probe_postgres();
    probe_mail_server();
    probe_browser();
}

// The store's tests have PostgreSQL variants: the probe that decides whether they run.
include!("probes.rs");

fn main() {
    probe_postgres();
}

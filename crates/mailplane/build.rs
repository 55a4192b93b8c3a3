// The store's probe for a PostgreSQL server, shared so that both crates' tests decide
// alike whether their PostgreSQL variants run (see the comment at its top).
include!("../store/build.rs");

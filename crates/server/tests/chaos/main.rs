//! Fault tests (issue 9, SPEC §7), run by `make chaos` — never by a bare `cargo test`: they
//! kill processes, stop a PostgreSQL server and take tens of seconds.
//!
//! - [`kill9`]: two replicas (real server processes) over one database; one is killed with
//!   SIGKILL during a write load. No acknowledged change is lost, none is half-written, the
//!   survivor keeps serving and finishes what the dead one left mid-way.
//! - [`outage`]: a private PostgreSQL server, stopped and restarted under load. The server
//!   answers 503 `database_unavailable` meanwhile (never hangs, never a bare 500), `/readyz`
//!   says so, and service resumes by itself.
//! - [`usage`]: a server killed with SIGKILL under proxy load: every call answered 200 has its
//!   usage row once the process has restarted (its journal is replayed).
//! - [`takeover`]: a replica killed with SIGKILL mid-bring-up: the survivor takes its
//!   instances over when their leases lapse and finishes them, with no restart.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../api/helpers/mod.rs"]
mod helpers;
mod kill9;
mod load;
mod outage;
mod process;
mod takeover;
mod usage;

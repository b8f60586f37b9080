//! The `inventiv-server` binary's library: settings, telemetry, and [`Application`], which
//! wires persistence, services and the HTTP adapter together.
//!
//! Contract: this crate decides nothing about the product. It loads typed settings
//! (`config/*.toml`, built in and overridable on disk, then `INVENTIV__SECTION__KEY`
//! variables), connects and migrates the
//! database, runs the idempotent bootstrap, and serves. It is a library too so tests can start
//! the real application on port 0 against their own database (`Application::build`).

mod application;
pub mod settings;
pub mod telemetry;

pub use application::{Application, bootstrap_settings, build_deps, connect};
pub use settings::{Environment, Settings};

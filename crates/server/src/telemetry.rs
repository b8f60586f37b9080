//! Structured logs with tracing: human-readable in development, JSON in production.

use crate::Settings;
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber (once per process; later calls are ignored, which tests rely on).
pub fn init(settings: &Settings) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&settings.log.level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if settings.log.format == "json" {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init()
    } else {
        builder.compact().try_init()
    };
}

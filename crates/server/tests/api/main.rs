//! HTTP integration tests: each test starts the real `Application` on port 0 against its own
//! fresh database — a temporary SQLite file, or a new PostgreSQL database when
//! `INVENTIV_TEST_DATABASE_URL` is set — with a real SMTP sink on loopback.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod activation;
mod audit;
mod auth;
mod bootstrap;
mod compression;
mod contracts;
mod database_tls;
mod dates;
mod defaults;
mod helpers;
mod hostile;
mod instances;
mod key_bounds;
mod keys_users_finops;
mod login_load;
mod logs;
mod mail;
mod marketplace;
mod me_cache;
mod memory;
mod mock_model;
mod model_key_activation;
mod money;
mod my_invitations;
mod namespaces;
mod ops;
mod orgs;
mod platform_audit;
mod pool_round_trips;
mod proxy;
mod refresh_reuse;
mod replicas;
mod scale;
mod sockets;
mod ssrf;
mod workbench;
mod workspace_header;

//! The URL a pool connects with: the operator's, plus `sslmode=disable` for a PostgreSQL on
//! this host when nothing chose a TLS mode.
//!
//! Why: without a mode, libpq and sqlx use `prefer`, which means TLS whenever the server
//! offers it (Debian's PostgreSQL does, with a self-signed certificate), never verified. On
//! loopback that protects nothing: only root on this host can read loopback traffic, and root
//! can read the keys too. It still costs every round trip an encryption and a decryption on
//! each side. Issue 18's profile of a sign-in storm found rustls in the server and OpenSSL in
//! PostgreSQL, about 13 % of PostgreSQL's CPU. A remote host is left alone. So is any mode the
//! URL (`sslmode`, `ssl-mode`) or the `PGSSLMODE` environment variable chose, so an operator
//! who wants TLS on loopback keeps it.

use std::borrow::Cow;
use std::net::IpAddr;

/// `url`, completed for connecting (see the module). Anything that is not a PostgreSQL URL
/// on this host is returned as given.
pub(crate) fn completed(url: &str) -> Cow<'_, str> {
    completed_with(url, std::env::var_os("PGSSLMODE").is_some())
}

fn completed_with(url: &str, mode_from_env: bool) -> Cow<'_, str> {
    if mode_from_env {
        return Cow::Borrowed(url);
    }
    let Ok(mut parsed) = url::Url::parse(url) else {
        return Cow::Borrowed(url);
    };
    if !matches!(parsed.scheme(), "postgres" | "postgresql") {
        return Cow::Borrowed(url);
    }
    // sqlx reads the query after the authority: a `host` or `hostaddr` there wins.
    let mut host = parsed.host_str().map(str::to_owned);
    for (key, value) in parsed.query_pairs() {
        match &*key {
            "sslmode" | "ssl-mode" => return Cow::Borrowed(url),
            "host" | "hostaddr" => host = Some(value.into_owned()),
            _ => {}
        }
    }
    if !host.as_deref().is_some_and(on_this_host) {
        return Cow::Borrowed(url);
    }
    parsed.query_pairs_mut().append_pair("sslmode", "disable");
    Cow::Owned(parsed.into())
}

/// `localhost`, a loopback address, or a Unix socket's directory (plain or percent-encoded).
fn on_this_host(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host.starts_with('/')
        || host.get(..3).is_some_and(|p| p.eq_ignore_ascii_case("%2f"))
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::completed_with;

    fn completed(url: &str) -> String {
        completed_with(url, false).into_owned()
    }

    #[test]
    fn a_postgresql_on_this_host_gets_no_tls_unless_asked() {
        for (given, expected) in [
            (
                "postgres://postgres@127.0.0.1:5432/postgres",
                "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable",
            ),
            (
                "postgresql://u:p%40ss@localhost/db?application_name=x",
                "postgresql://u:p%40ss@localhost/db?application_name=x&sslmode=disable",
            ),
            ("postgres://[::1]/db", "postgres://[::1]/db?sslmode=disable"),
            (
                "postgres://127.8.9.10/db",
                "postgres://127.8.9.10/db?sslmode=disable",
            ),
            (
                "postgres://%2Fvar%2Frun%2Fpostgresql/db",
                "postgres://%2Fvar%2Frun%2Fpostgresql/db?sslmode=disable",
            ),
            (
                "postgres://db.example/db?host=/var/run/postgresql",
                "postgres://db.example/db?host=/var/run/postgresql&sslmode=disable",
            ),
        ] {
            assert_eq!(completed(given), expected, "{given}");
        }
    }

    #[test]
    fn a_remote_host_or_a_chosen_mode_is_left_alone() {
        for url in [
            "postgres://postgres@db.example:5432/postgres",
            "postgres://10.0.0.7/db",
            "postgres://[2001:db8::1]/db",
            // The query's host wins over the authority's.
            "postgres://127.0.0.1/db?host=db.example",
            "postgres://localhost/db?hostaddr=10.0.0.7",
            // A mode the operator chose, in either spelling sqlx reads.
            "postgres://127.0.0.1/db?sslmode=require",
            "postgres://localhost/db?ssl-mode=verify-full",
            // No host: sqlx falls back to PGHOST, which may be anywhere.
            "postgres:///db",
            "sqlite://data/inventiv.db?mode=rwc",
            "sqlite::memory:",
            "not a url",
        ] {
            assert_eq!(completed(url), url);
        }
        // A mode from the environment wins too.
        let url = "postgres://127.0.0.1/db";
        assert_eq!(completed_with(url, true), url);
    }
}

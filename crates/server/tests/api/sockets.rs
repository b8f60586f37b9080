//! Accepted sockets (SPEC §5, issue 18 item 4): TCP_NODELAY is set on every connection the
//! server accepts. The server reads the option back from each accepted socket and counts it in
//! `/metrics` (`inventiv_http_connections_accepted_total{tcp_nodelay="…"}`); without the option
//! the connections would be counted under `"false"` and this test fails.

use crate::helpers::spawn_app;

/// The count of accepted connections with `tcp_nodelay` = `value` in the metrics text.
fn accepted(metrics: &str, value: &str) -> u64 {
    let prefix = format!("inventiv_http_connections_accepted_total{{tcp_nodelay=\"{value}\"}} ");
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .map_or(0, |n| n.trim().parse().unwrap())
}

#[tokio::test]
async fn every_accepted_connection_has_tcp_nodelay() {
    let app = spawn_app().await;
    // Three connections of their own: clients that keep none open.
    for _ in 0..3 {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .unwrap();
        let res = client.get(app.url("/healthz")).send().await.unwrap();
        assert_eq!(res.status(), 200);
    }
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert_eq!(accepted(&metrics, "false"), 0, "{metrics}");
    // The three, and the one that asked for the metrics.
    assert!(accepted(&metrics, "true") >= 4, "{metrics}");
}

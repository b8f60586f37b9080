//! The money path of the proxy (issue 15; SPEC §5.2, §5.3 v2): spend caps that are never
//! exceeded, under concurrency and across replicas, and metering that never fails open
//! (hang-ups, answers without usage, non-boolean stream flags, a process that dies).

use crate::helpers::upstream::{COMPLETION_TOKENS, PROMPT_TOKENS};
use crate::helpers::{TestApp, assert_error, json_with_status};
use crate::proxy::{Market, market};
use futures_util::StreamExt;
use inventiv_domain::{ApiKeyId, UsageId};
use inventiv_persistence::repo::spend::{self, Subject, SubjectKind};
use inventiv_persistence::repo::usage;
use inventiv_service::Clock;
use reqwest::Method;
use serde_json::{Value, json};
use std::sync::atomic::Ordering;

/// What one chat call costs at the market's prices (1000 in, 500 out at 1000/2000 µ€ per 1k).
const CHAT_CHARGE: i64 = 2_000;
/// Its reservation with `max_tokens: 500` on the 8192-token model: 8192 + 1000.
const RESERVATION: i64 = 8_192 + 1_000;

/// A consumer key with `cap` (set by the consumer's owner); returns (secret, id).
async fn capped_key(m: &Market, cap: Option<i64>) -> (String, String) {
    let body = json!({"name": "capped", "monthly_cap_micros": cap});
    let created = json_with_status(
        m.app.post_as(&m.consumer.owner, "/api_keys", body).await,
        201,
    )
    .await;
    crate::instances::approve_key(&m.app, &m.consumer.owner, &created).await;
    (
        created["secret"].as_str().unwrap().to_owned(),
        created["key"]["id"].as_str().unwrap().to_owned(),
    )
}

async fn call(app: &TestApp, key: &str, max_tokens: Option<u64>) -> reqwest::Response {
    let mut body = json!({"model": "prov/chat", "messages": [{"role": "user", "content": "Hi"}]});
    if let Some(max) = max_tokens {
        body["max_tokens"] = json!(max);
    }
    app.post_as(key, "/v1/chat/completions", body).await
}

fn key_id(id: &str) -> ApiKeyId {
    ApiKeyId::from_uuid(id.parse().unwrap())
}

async fn key_view(m: &Market, id: &str) -> Value {
    let keys = json_with_status(m.app.get_as(&m.consumer.owner, "/api_keys").await, 200).await;
    keys["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == id)
        .cloned()
        .unwrap()
}

/// Fires `n` concurrent calls spread over `apps`; returns (200s, 402s).
async fn storm(apps: &[&TestApp], key: &str, n: usize) -> (usize, usize) {
    let calls = (0..n).map(|i| {
        let app = apps[i % apps.len()];
        async move { call(app, key, Some(500)).await.status().as_u16() }
    });
    let statuses = futures_util::future::join_all(calls).await;
    let ok = statuses.iter().filter(|s| **s == 200).count();
    let refused = statuses.iter().filter(|s| **s == 402).count();
    assert_eq!(ok + refused, n, "only 200 or 402: {statuses:?}");
    (ok, refused)
}

/// The invariant of SPEC §5.2 for a key: what is recorded never passes the cap, and the
/// counters agree with the rows.
async fn assert_within_cap(m: &Market, apps: &[&TestApp], id: &str, cap: i64, ok: usize) {
    for app in apps {
        app.deps.proxy.meter.flush().await;
    }
    let recorded = usage::reconciliation::charged_to_key(&m.app.db, key_id(id))
        .await
        .unwrap();
    assert_eq!(recorded, ok as i64 * CHAT_CHARGE, "every 200 is charged");
    assert!(recorded <= cap, "recorded {recorded} > cap {cap}");
    let subject = Subject {
        kind: SubjectKind::ApiKey,
        id: key_id(id).as_uuid(),
    };
    let month = spend::month_of(m.clock.now());
    let (spent, leased) = spend::counter(&m.app.db, subject, month).await.unwrap();
    assert_eq!(spent, recorded);
    assert!(
        spent + leased <= cap,
        "spent {spent} + leased {leased} > {cap}"
    );
}

#[tokio::test]
async fn a_key_cap_is_never_exceeded_by_concurrent_calls() {
    let m = market().await;
    // Room for exactly 4 reservations at once; each call then spends 2000 of its 9192.
    let cap = 4 * RESERVATION + 10;
    let (key, id) = capped_key(&m, Some(cap)).await;
    let (ok, refused) = storm(&[&m.app], &key, 40).await;
    assert!(ok >= 1 && refused >= 1, "{ok} admitted, {refused} refused");
    assert_within_cap(&m, &[&m.app], &id, cap, ok).await;
    // Calls one after another: admitted until what is left cannot hold a reservation.
    let mut sequential = 0;
    while call(&m.app, &key, Some(500)).await.status() == 200 {
        sequential += 1;
        assert!(sequential < 100);
    }
    let res = call(&m.app, &key, Some(500)).await;
    let body = assert_error(res, 402, "spend_cap_reached").await;
    assert_eq!(body["error"]["type"], "insufficient_quota");
    assert_within_cap(&m, &[&m.app], &id, cap, ok + sequential).await;
    // A smaller request still fits what is left.
    let view = key_view(&m, &id).await;
    let left = cap - view["spent_this_month_micros"].as_i64().unwrap();
    assert!(left < RESERVATION, "{view}");
    assert_eq!(view["monthly_cap_micros"], cap);
    // The key's view shows the month's spend; what is reserved goes back once idle.
    tokio::time::sleep(std::time::Duration::from_millis(3_500)).await;
    let view = key_view(&m, &id).await;
    assert_eq!(
        view["spent_this_month_micros"].as_i64().unwrap(),
        (ok + sequential) as i64 * CHAT_CHARGE
    );
    assert_eq!(view["reserved_micros"], 0, "{view}");
}

#[tokio::test]
async fn two_replicas_share_one_cap_without_overshoot() {
    let m = market().await;
    let replica = m.app.spawn_replica(|_| {}).await;
    let cap = 6 * RESERVATION;
    let (key, id) = capped_key(&m, Some(cap)).await;
    let mut total = 0;
    for _ in 0..3 {
        let (ok, _) = storm(&[&m.app, &replica], &key, 30).await;
        total += ok;
    }
    assert!(total >= 1);
    assert_within_cap(&m, &[&m.app, &replica], &id, cap, total).await;
}

#[tokio::test]
async fn the_cap_bounds_the_worst_case_and_lowering_it_blocks_new_calls() {
    let m = market().await;
    let (key, id) = capped_key(&m, Some(RESERVATION - 1)).await;
    // Without max_tokens the worst case is the whole context on both sides: refused.
    assert_error(call(&m.app, &key, None).await, 402, "spend_cap_reached").await;
    assert_error(
        call(&m.app, &key, Some(500)).await,
        402,
        "spend_cap_reached",
    )
    .await;
    // A smaller max_tokens fits.
    json_with_status(call(&m.app, &key, Some(100)).await, 200).await;
    // n multiplies the output.
    let body = json!({"model": "prov/chat", "messages": [], "max_tokens": 100, "n": 100});
    assert_error(
        m.app.post_as(&key, "/v1/chat/completions", body).await,
        402,
        "spend_cap_reached",
    )
    .await;
    // A max_tokens past the context is clamped to it before it is forwarded.
    let (open_key, _) = capped_key(&m, None).await;
    json_with_status(call(&m.app, &open_key, Some(1_000_000)).await, 200).await;
    assert_eq!(m.upstream.last_request()["max_tokens"], 8192);
    // Cap 0: nothing priced goes through; removing the cap (null) lets calls through again.
    let path = format!("/api_keys/{id}");
    let set = |cap: Value| {
        m.app
            .as_bearer(Method::PUT, &path, &m.consumer.manager)
            .json(&json!({"monthly_cap_micros": cap}))
            .send()
    };
    json_with_status(set(json!(0)).await.unwrap(), 200).await;
    assert_error(call(&m.app, &key, Some(1)).await, 402, "spend_cap_reached").await;
    json_with_status(set(Value::Null).await.unwrap(), 200).await;
    json_with_status(call(&m.app, &key, Some(500)).await, 200).await;
    json_with_status(set(json!(-1)).await.unwrap(), 400).await;
}

#[tokio::test]
async fn only_the_economic_side_sets_key_caps() {
    let m = market().await;
    // An admin creates keys, but not with a cap; a manager sets caps, but does not rename.
    let body = json!({"name": "k", "monthly_cap_micros": 1000});
    assert_error(
        m.app.post_as(&m.consumer.admin, "/api_keys", body).await,
        403,
        "forbidden",
    )
    .await;
    let created = json_with_status(
        m.app
            .post_as(&m.consumer.admin, "/api_keys", json!({"name": "k"}))
            .await,
        201,
    )
    .await;
    let path = format!("/api_keys/{}", created["key"]["id"].as_str().unwrap());
    let put = |token: &str, body: Value| {
        m.app
            .as_bearer(Method::PUT, &path, token)
            .json(&body)
            .send()
    };
    let cap = json!({"monthly_cap_micros": 5000});
    assert_error(
        put(&m.consumer.admin, cap.clone()).await.unwrap(),
        403,
        "forbidden",
    )
    .await;
    assert_error(
        put(&m.consumer.user, cap.clone()).await.unwrap(),
        403,
        "forbidden",
    )
    .await;
    let view = json_with_status(put(&m.consumer.manager, cap.clone()).await.unwrap(), 200).await;
    assert_eq!(view["monthly_cap_micros"], 5000);
    assert_eq!(view["spent_this_month_micros"], 0);
    assert_error(
        put(&m.consumer.manager, json!({"name": "renamed"}))
            .await
            .unwrap(),
        403,
        "forbidden",
    )
    .await;
    // Another org's manager: not found.
    assert_error(
        put(&m.provider.manager, cap).await.unwrap(),
        404,
        "not_found",
    )
    .await;
    // The change is in the org's audit trail.
    let audit = json_with_status(
        m.app
            .get_as(
                &m.consumer.owner,
                "/organizations/current/audit?action=api_key.cap_changed",
            )
            .await,
        200,
    )
    .await;
    assert_eq!(audit["items"].as_array().unwrap().len(), 1, "{audit}");
}

/// A model server that reports more than the request allows (1,000,000 output tokens for a
/// `max_tokens` of 500) is metered at what the request allows, capped or not, and the row is
/// flagged: the provider's server is not trusted past it. Uncapped, nothing else bounded the
/// charge, and a consumer was billed whatever was reported.
#[tokio::test]
async fn an_upstream_that_reports_more_than_the_request_allows_is_clamped_and_flagged() {
    let m = market().await;
    m.upstream.knobs.inflate_usage.store(true, Ordering::SeqCst);
    for cap in [Some(100 * RESERVATION), None] {
        let (key, _) = capped_key(&m, cap).await;
        let res = call(&m.app, &key, Some(500)).await;
        let id = usage_id(&res);
        json_with_status(res, 200).await;
        m.app.deps.proxy.meter.flush().await;
        let row = usage::reconciliation::find(&m.app.db, id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (row.output_tokens, row.charged_micros, row.clamped),
            (500, CHAT_CHARGE, true),
            "cap {cap:?}: {row:?}"
        );
    }
}

fn usage_id(res: &reqwest::Response) -> UsageId {
    UsageId::from_uuid(
        res.headers()["x-inventiv-usage-id"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap(),
    )
}

/// Starts a streamed call that the upstream holds after its first chunk: its usage id, and
/// its stream with that first chunk read.
async fn held_stream(
    m: &Market,
) -> (
    UsageId,
    impl futures_util::Stream<Item = reqwest::Result<bytes::Bytes>>,
) {
    m.upstream.knobs.hold_streams.store(true, Ordering::SeqCst);
    let body = json!({"model": "prov/chat", "stream": true, "messages": []});
    let res = m.app.post_as(&m.key, "/v1/chat/completions", body).await;
    assert_eq!(res.status(), 200);
    let id = usage_id(&res);
    let mut stream = Box::pin(res.bytes_stream());
    let first = stream.next().await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&first).contains("Hel"));
    (id, stream)
}

#[tokio::test]
async fn a_client_that_hangs_up_mid_stream_is_still_metered() {
    let m = market().await;
    let (id, stream) = held_stream(&m).await;
    drop(stream); // the client goes away with most of the answer unread
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    m.upstream.knobs.release.notify_one();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let row = loop {
        m.app.deps.proxy.meter.flush().await;
        if let Some(row) = usage::reconciliation::find(&m.app.db, id).await.unwrap() {
            break row;
        }
        assert!(std::time::Instant::now() < deadline, "no usage row");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    // The rest of the stream was read for its usage: the upstream's own count.
    assert_eq!(row.usage_source, "upstream");
    assert_eq!(
        (row.input_tokens, row.output_tokens, row.charged_micros),
        (PROMPT_TOKENS as i64, COMPLETION_TOKENS as i64, CHAT_CHARGE)
    );
}

#[tokio::test]
async fn answers_without_usage_are_metered_from_what_was_relayed() {
    let m = market().await;
    m.upstream.knobs.omit_usage.store(true, Ordering::SeqCst);
    let res = chat_body(
        &m,
        json!({"model": "prov/chat", "messages": [{"role": "user", "content": "Hi"}]}),
    )
    .await;
    let id = usage_id(&res);
    json_with_status(res, 200).await;
    let res = chat_body(
        &m,
        json!({"model": "prov/chat", "stream": true, "messages": []}),
    )
    .await;
    let streamed = usage_id(&res);
    let text = res.text().await.unwrap();
    assert!(
        text.contains("[DONE]") && !text.contains("prompt_tokens"),
        "{text}"
    );
    m.app.deps.proxy.meter.flush().await;
    for id in [id, streamed] {
        let row = usage::reconciliation::find(&m.app.db, id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(row.usage_source, "estimated", "{row:?}");
        // "Hello!" is 6 characters: 2 tokens at 4 a token; the prompt counts from its bytes.
        assert_eq!(row.output_tokens, 2, "{row:?}");
        assert!(row.input_tokens > 0 && row.charged_micros > 0, "{row:?}");
    }
}

async fn chat_body(m: &Market, body: Value) -> reqwest::Response {
    m.app.post_as(&m.key, "/v1/chat/completions", body).await
}

#[tokio::test]
async fn stream_flags_must_be_booleans_and_only_four_routes_are_served() {
    let m = market().await;
    for body in [
        json!({"model": "prov/chat", "stream": 1, "messages": []}),
        json!({"model": "prov/chat", "stream": "yes", "messages": []}),
        json!({"model": "prov/chat", "stream": true, "stream_options": {"include_usage": 1}, "messages": []}),
        json!({"model": "prov/chat", "n": 0, "messages": []}),
    ] {
        let body = assert_error(chat_body(&m, body).await, 400, "invalid_body").await;
        assert_eq!(body["error"]["type"], "invalid_request_error");
    }
    assert_eq!(m.upstream.knobs.received.lock().unwrap().len(), 0);
    // No catch-all: other /v1 paths are not forwarded, and answer in OpenAI's shape.
    for path in [
        "/v1/files",
        "/v1/chat/completions/x",
        "/v1/images/generations",
    ] {
        let res = m
            .app
            .post_as(&m.key, path, json!({"model": "prov/chat"}))
            .await;
        let status = res.status().as_u16();
        assert!(status == 404 || status == 405, "{path}: {status}");
        let body: Value = res.json().await.unwrap();
        assert!(body["error"]["code"].is_string(), "{path}: {body}");
    }
    assert_eq!(m.upstream.knobs.received.lock().unwrap().len(), 0);
    // The usage id is the server's own, whatever request id the client sends.
    let res = m
        .app
        .as_bearer(Method::POST, "/v1/chat/completions", &m.key)
        .header("x-request-id", "client-chosen-id")
        .json(&json!({"model": "prov/chat", "messages": []}))
        .send()
        .await
        .unwrap();
    let id = usage_id(&res);
    assert_ne!(id.to_string(), "client-chosen-id");
    // Errors of the management API keep their own shape.
    assert_error(
        m.app.get_as(&m.key, "/no-such-route").await,
        404,
        "not_found",
    )
    .await;
}

/// A process that dies with rows still queued leaves them in its journal; the next process to
/// start on that directory stores them (once: ingestion is idempotent) and deletes the file.
#[tokio::test]
async fn journaled_rows_of_a_dead_process_are_replayed_once() {
    let m = market().await;
    let dir = m.app.settings.server.data_dir.join("replay-test");
    let rows = crate::proxy::usage_rows(5, m.clock.now());
    {
        let journal = inventiv_service::proxy::journal::Journal::open(&dir).unwrap();
        for row in &rows {
            journal.append(row).unwrap();
        }
        // Dropped without `close`: as if killed (the lock goes with the file handle).
    }
    // One row was already stored before the death: it must not be stored twice.
    usage::insert_batch(&m.app.db, &rows[..1], m.clock.now())
        .await
        .unwrap();
    let before = usage::reconciliation::count_all(&m.app.db).await.unwrap();
    let meter = inventiv_service::proxy::Meter::start(
        m.app.db.clone(),
        std::time::Duration::from_millis(5),
        16,
        None,
        Some(dir.clone()),
    );
    meter.flush().await;
    assert_eq!(
        usage::reconciliation::count_all(&m.app.db).await.unwrap(),
        before + 4
    );
    for row in &rows {
        assert_eq!(
            usage::reconciliation::count_request(&m.app.db, &row.request_id)
                .await
                .unwrap(),
            1
        );
    }
    let left: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
    assert!(left.is_empty(), "replayed journals are deleted: {left:?}");
    // A live process's journal (locked) is left alone.
    let live = inventiv_service::proxy::journal::Journal::open(&dir).unwrap();
    live.append(&crate::proxy::usage_rows(1, m.clock.now())[0])
        .unwrap();
    let (orphans, _) = inventiv_service::proxy::journal::orphans(&dir).unwrap();
    assert!(orphans.is_empty());
}

/// A lease whose holder died lapses: its unspent budget comes back, and a charge of it that is
/// replayed later is still recorded, flagged `late`.
#[tokio::test]
async fn a_dead_holders_lease_lapses_and_its_replayed_rows_are_late() {
    let m = market().await;
    let cap = 3 * RESERVATION;
    let (key, id) = capped_key(&m, Some(cap)).await;
    let subject = Subject {
        kind: SubjectKind::ApiKey,
        id: key_id(&id).as_uuid(),
    };
    let now = m.clock.now();
    let month = spend::month_of(now);
    // A replica that died holding most of the budget, its lease expired a second ago.
    let dead = spend::grant(
        &m.app.db,
        subject,
        month,
        "dead-replica",
        (2 * RESERVATION, 2 * RESERVATION),
        now - time::Duration::minutes(5),
        now - time::Duration::seconds(1),
    )
    .await
    .unwrap()
    .unwrap();
    // While it is held, only one more reservation fits.
    json_with_status(call(&m.app, &key, Some(500)).await, 200).await;
    assert_error(
        call(&m.app, &key, Some(500)).await,
        402,
        "spend_cap_reached",
    )
    .await;
    assert_eq!(
        spend::sweep_lapsed(&m.app.db, m.clock.now()).await.unwrap(),
        1
    );
    // Its budget is back.
    json_with_status(call(&m.app, &key, Some(500)).await, 200).await;
    // The dead replica's journal held one call made under that lease: replayed, it is late.
    let mut row = crate::proxy::usage_rows(1, now).remove(0);
    row.api_key_id = Some(key_id(&id));
    row.charged_micros = CHAT_CHARGE;
    row.key_lease = Some(dead.id);
    usage::insert_batch(&m.app.db, std::slice::from_ref(&row), now)
        .await
        .unwrap();
    let stored = usage::reconciliation::find(&m.app.db, row.id)
        .await
        .unwrap()
        .unwrap();
    assert!(stored.late);
    m.app.deps.proxy.meter.flush().await;
    let (spent, leased) = spend::counter(&m.app.db, subject, month).await.unwrap();
    assert_eq!(spent, 3 * CHAT_CHARGE);
    assert!(
        leased >= 0 && spent + leased <= cap + CHAT_CHARGE,
        "{spent} + {leased}"
    );
}

/// A cap the consumer sets on a received share bounds every key of the consumer together; the
/// consumer sees its spend, the provider sees neither the cap nor the spend.
#[tokio::test]
async fn a_share_cap_is_never_exceeded_and_only_the_consumer_sees_it() {
    let m = market().await;
    let cap = 3 * RESERVATION + 5;
    let path = format!("/organizations/current/shares/{}", m.share);
    let set_cap = |token: &str, cap: Value| {
        m.app
            .as_bearer(Method::PATCH, &path, token)
            .json(&json!({"monthly_cap_micros": cap}))
            .send()
    };
    assert_error(
        set_cap(&m.consumer.admin, json!(cap)).await.unwrap(),
        403,
        "forbidden",
    )
    .await;
    json_with_status(set_cap(&m.consumer.manager, json!(cap)).await.unwrap(), 200).await;
    // Two keys of the consumer (the market's, uncapped, and a capped one) share the share's cap.
    let (second, _) = capped_key(&m, Some(100 * RESERVATION)).await;
    let calls = (0..30).map(|i| {
        let key = if i % 2 == 0 {
            m.key.clone()
        } else {
            second.clone()
        };
        let app = &m.app;
        async move { call(app, &key, Some(500)).await.status().as_u16() }
    });
    let statuses = futures_util::future::join_all(calls).await;
    let ok = statuses.iter().filter(|s| **s == 200).count() as i64;
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 402),
        "{statuses:?}"
    );
    assert!((1..30).contains(&ok), "{statuses:?}");
    m.app.deps.proxy.meter.flush().await;
    let subject = Subject {
        kind: SubjectKind::Share,
        id: m.share.parse().unwrap(),
    };
    let month = spend::month_of(m.clock.now());
    let (spent, leased) = spend::counter(&m.app.db, subject, month).await.unwrap();
    assert_eq!(spent, ok * CHAT_CHARGE);
    // A share at its cap stays listed (SPEC §5.2): its calls get 402, it is not hidden.
    let listed = json_with_status(m.app.get_as(&m.key, "/v1/models").await, 200).await;
    assert!(
        listed["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["id"] == "prov/chat"),
        "{listed}"
    );
    assert!(spent + leased <= cap, "{spent} + {leased} > {cap}");
    // The consumer's view has the figures; the provider's has none of them.
    let consumer = json_with_status(
        m.app
            .get_as(
                &m.consumer.user,
                "/organizations/current/shares?side=consumer",
            )
            .await,
        200,
    )
    .await;
    let share = &consumer["items"][0];
    assert_eq!(share["monthly_cap_micros"], cap);
    assert_eq!(share["spent_this_month_micros"], ok * CHAT_CHARGE);
    assert!(share["reserved_micros"].as_i64().is_some(), "{share}");
    let provider = json_with_status(
        m.app
            .get_as(
                &m.provider.owner,
                "/organizations/current/shares?side=provider",
            )
            .await,
        200,
    )
    .await;
    let share = &provider["items"][0];
    for field in [
        "monthly_cap_micros",
        "spent_this_month_micros",
        "reserved_micros",
    ] {
        assert!(
            share.get(field).is_none(),
            "{field} shown to the provider: {share}"
        );
    }
}

/// Model servers differ on which output limit wins (vLLM: `max_completion_tokens or
/// max_tokens`, so a 0 falls through): the reservation covers the larger, or the whole
/// context when one is 0. Reserving for the smaller let `{"max_tokens":1,
/// "max_completion_tokens":8000}` pass a cap sized for one token, and billed one.
#[tokio::test]
async fn both_output_limits_are_reserved_for_whichever_the_server_obeys() {
    let m = market().await;
    // Room for the prompt's worst case (8,192) and a few hundred output tokens.
    let (key, _) = capped_key(&m, Some(10_000)).await;
    let send = |limits: Value| {
        let mut body =
            json!({"model": "prov/chat", "messages": [{"role": "user", "content": "Hi"}]});
        for (field, value) in limits.as_object().unwrap() {
            body[field] = value.clone();
        }
        m.app.post_as(&key, "/v1/chat/completions", body)
    };
    for limits in [
        json!({"max_tokens": 1, "max_completion_tokens": 8000}),
        json!({"max_tokens": 8000, "max_completion_tokens": 1}),
        json!({"max_tokens": 1, "max_completion_tokens": 0}),
        json!({"max_completion_tokens": 0}),
    ] {
        assert_error(send(limits.clone()).await, 402, "spend_cap_reached").await;
    }
    json_with_status(
        send(json!({"max_tokens": 100, "max_completion_tokens": 100})).await,
        200,
    )
    .await;
}

/// A stream still running when a graceful shutdown's grace period ends is cut off, and still
/// metered, from what it relayed, before the process is done: the worker that relayed it is
/// gone, but its drain runs on the proxy's runtime, and the shutdown waits for it before the
/// final flush. It was lost: the drain was spawned on the worker's runtime as it stopped.
#[tokio::test]
async fn a_stream_cut_off_by_a_shutdown_is_still_metered() {
    let m = crate::proxy::market_with(|s| {
        s.server.shutdown_timeout_secs = 1;
        // The held stream stays silent while the shutdown waits, and is not cut for it.
        s.proxy.upstream_timeout_secs = 30;
    })
    .await;
    // The client stays connected (`_client` lives to the end) through the stop.
    let (id, _client) = held_stream(&m).await;
    // A graceful stop, with the stream held upstream past its grace period.
    m.app.handle.stop(true).await;
    // The app's pool is closed with the server: read through a connection of our own.
    let db = inventiv_persistence::Db::connect(
        &m.app.database.url(),
        &inventiv_persistence::DbOptions::default(),
    )
    .await
    .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let row = loop {
        if let Some(row) = usage::reconciliation::find(&db, id).await.unwrap() {
            break row;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no usage row for a stream cut off by the shutdown"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    // Metered from what was relayed: the held stream never sent its usage.
    assert_eq!(row.usage_source, "estimated", "{row:?}");
    assert!(row.output_tokens > 0, "{row:?}");
    db.close().await.unwrap();
}

/// A spend lease whose return fails (the database was away) is returned once it is back. It
/// used to be forgotten: this process kept renewing it with its other leases, so its unused
/// budget stayed reserved until a restart, and calls were refused below the cap.
#[tokio::test]
async fn a_lease_whose_return_failed_is_returned_once_the_database_is_back() {
    let m = market().await;
    let (key, id) = capped_key(&m, Some(10 * RESERVATION)).await;
    json_with_status(call(&m.app, &key, Some(500)).await, 200).await;
    let reserved = key_view(&m, &id).await["reserved_micros"].as_i64().unwrap();
    assert!(reserved > 0, "the call took a lease");
    // The leases' table is away while the lease goes idle and is given back.
    m.app
        .db
        .execute_unprepared("ALTER TABLE spend_leases RENAME TO spend_leases_away")
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(3_500)).await;
    m.app
        .db
        .execute_unprepared("ALTER TABLE spend_leases_away RENAME TO spend_leases")
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let view = key_view(&m, &id).await;
        if view["reserved_micros"] == 0 {
            assert_eq!(view["spent_this_month_micros"], CHAT_CHARGE, "{view}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the lease's budget is still reserved: {view}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

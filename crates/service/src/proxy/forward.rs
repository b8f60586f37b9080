//! Forwarding to the chosen instance and metering the answer.

use super::client;
use super::resolve::{Target, resolve};
use crate::auth::Principal;
use crate::{Deps, ServiceError};
use bytes::Bytes;
use futures_util::stream::{BoxStream, StreamExt};
use http_body_util::BodyExt;
use inventiv_domain::{UsageId, charged_micros};
use inventiv_persistence::repo::usage::UsageRecord;
use rand::RngExt;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The OpenAI endpoints the proxy serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    ChatCompletions = 0,
    Completions = 1,
    Embeddings = 2,
}

impl Endpoint {
    pub(super) const ALL: [Endpoint; 3] = [
        Endpoint::ChatCompletions,
        Endpoint::Completions,
        Endpoint::Embeddings,
    ];

    pub(super) fn path(self) -> &'static str {
        match self {
            Endpoint::ChatCompletions => "/v1/chat/completions",
            Endpoint::Completions => "/v1/completions",
            Endpoint::Embeddings => "/v1/embeddings",
        }
    }

    fn streams(self) -> bool {
        match self {
            Endpoint::ChatCompletions | Endpoint::Completions => true,
            Endpoint::Embeddings => false,
        }
    }
}

pub enum ProxyBody {
    Full(Bytes),
    /// Server-sent events, passed through chunk by chunk as they arrive.
    Stream(BoxStream<'static, Result<Bytes, std::io::Error>>),
}

pub struct ProxyResponse {
    pub status: u16,
    pub content_type: String,
    pub body: ProxyBody,
    /// Time spent waiting for the upstream's answer (excluded from the proxy's overhead).
    pub upstream_wait: Duration,
    /// The `request_id` of the usage row this call writes once it completes successfully.
    pub usage_id: UsageId,
}

/// Token counts reported by the upstream.
#[derive(Debug, Default, Clone, Copy)]
struct Usage {
    input: u64,
    output: u64,
}

/// What the proxy reads of an upstream answer (or of one SSE chunk): only `usage`. Every other
/// field is skipped by the parser without being built (answers can be large).
#[derive(Deserialize)]
struct Reported {
    usage: Option<Value>,
}

/// The usage of an answer (or SSE chunk), if it reports one.
fn usage_in(json: &[u8]) -> Option<Usage> {
    let usage = serde_json::from_slice::<Reported>(json).ok()?.usage?;
    let usage = usage.as_object()?;
    let count = |field: &str| usage.get(field).and_then(Value::as_u64).unwrap_or(0);
    Some(Usage {
        input: count("prompt_tokens"),
        output: count("completion_tokens"),
    })
}

/// An OpenAI request body, field by field, each value kept as its raw JSON text: only
/// `model`, `stream` and `stream_options` are read, and the body is written back without
/// parsing or rebuilding the rest (prompts can be large).
struct RequestBody<'a> {
    fields: BTreeMap<String, &'a RawValue>,
}

/// How deeply a relayed body may nest: serde_json's own limit for the values it builds. Raw
/// values are not built, so the limit is checked here, before they are relayed.
const MAX_DEPTH: usize = 128;

/// Whether `json` nests arrays and objects deeper than `limit` (strings are skipped).
fn nests_deeper_than(json: &[u8], limit: usize) -> bool {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in json {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > limit {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

impl<'a> RequestBody<'a> {
    fn parse(body: &'a [u8]) -> Result<Self, ServiceError> {
        if nests_deeper_than(body, MAX_DEPTH) {
            return Err(ServiceError::invalid(
                "body",
                format!("nested deeper than {MAX_DEPTH} levels"),
            ));
        }
        match serde_json::from_slice(body) {
            Ok(fields) => Ok(Self { fields }),
            Err(e) if e.is_data() => Err(ServiceError::invalid("body", "a JSON object")),
            Err(e) => Err(ServiceError::invalid(
                "body",
                format!("not valid JSON: {e}"),
            )),
        }
    }

    fn get<T: serde::de::DeserializeOwned>(&self, field: &str) -> Option<T> {
        serde_json::from_str(self.fields.get(field)?.get()).ok()
    }

    /// The body with `model` replaced and, when asked, `stream_options.include_usage` set.
    fn rewrite(&self, model: &str, include_usage: bool) -> Result<Vec<u8>, ServiceError> {
        let model = serde_json::to_vec(model).map_err(ServiceError::internal)?;
        let mut out = Vec::with_capacity(self.fields.values().map(|v| v.get().len() + 16).sum());
        for (key, raw) in &self.fields {
            match key.as_str() {
                "model" => write(&mut out, key, &model)?,
                "stream_options" if include_usage => {}
                _ => write(&mut out, key, raw.get().as_bytes())?,
            }
        }
        if !self.fields.contains_key("model") {
            write(&mut out, "model", &model)?;
        }
        if include_usage {
            // Ask for the usage in the final chunk: that is what gets metered.
            let mut options = self
                .get::<Map<String, Value>>("stream_options")
                .unwrap_or_default();
            options.insert("include_usage".to_owned(), Value::Bool(true));
            let options = serde_json::to_vec(&options).map_err(ServiceError::internal)?;
            write(&mut out, "stream_options", &options)?;
        }
        if out.is_empty() {
            out.push(b'{');
        }
        out.push(b'}');
        Ok(out)
    }
}

/// Appends `"key":value` (`value` already JSON text) to an object being written into `out`.
fn write(out: &mut Vec<u8>, key: &str, value: &[u8]) -> Result<(), ServiceError> {
    out.push(if out.is_empty() { b'{' } else { b',' });
    serde_json::to_writer(&mut *out, key).map_err(ServiceError::internal)?;
    out.push(b':');
    out.extend_from_slice(value);
    Ok(())
}

fn upstream_error(status: u16, code: &'static str, message: &str) -> ServiceError {
    ServiceError::Upstream {
        status,
        code,
        message: message.to_owned(),
    }
}

/// Forwards one OpenAI request for `principal`.
pub async fn forward(
    deps: &Deps,
    principal: &Principal,
    endpoint: Endpoint,
    body: &[u8],
) -> Result<ProxyResponse, ServiceError> {
    let request = RequestBody::parse(body)?;
    let requested: String = request
        .get("model")
        .ok_or_else(|| ServiceError::invalid("model", "required"))?;
    let target = resolve(deps, principal, &requested).await?;
    let streaming = endpoint.streams() && request.get::<bool>("stream").unwrap_or(false);
    let payload = request.rewrite(&target.upstream_model, streaming)?;
    let pick = rand::rng().random_range(0..target.instances.len());
    let upstream = target
        .instances
        .get(pick)
        .ok_or_else(|| upstream_error(503, "no_ready_instance", "no instance"))?;
    let instance_id = upstream.id;
    let operator = upstream.operator;
    let request = client::post(upstream.uri(endpoint), payload).map_err(ServiceError::internal)?;

    // The upstream timeout bounds the wait for the answer's head and, unless it streams, for
    // its whole body; a stream may last longer, but never stays silent longer than that.
    let timeout = deps.proxy.settings.upstream_timeout;
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + timeout;
    let answer = match tokio::time::timeout_at(
        deadline,
        deps.proxy.client().request(operator, request),
    )
    .await
    {
        Ok(Ok(answer)) => answer,
        Ok(Err(err)) => {
            // The client learns only that it is unreachable; the operator, why.
            if crate::outbound::is_not_allowed(&err) {
                tracing::warn!(instance = %instance_id, "not connecting: the instance's endpoint is outside the allowed networks");
            }
            return Err(upstream_error(
                502,
                "upstream_unreachable",
                "The model server could not be reached.",
            ));
        }
        Err(_) => return Err(timed_out()),
    };
    let (head, body) = answer.into_parts();
    let status = head.status.as_u16();
    if status >= 500 {
        return Err(upstream_error(
            502,
            "upstream_error",
            &format!("The model server failed (HTTP {status})."),
        ));
    }
    let content_type = head
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
        .to_owned();
    let usage_id = UsageId::new();
    let meter = Metering {
        meter: deps.proxy.meter.clone(),
        clock: deps.clock.clone(),
        usage_id,
        principal_user: principal.user_id,
        api_key: principal.api_key.as_ref().map(|k| k.id),
        target,
        instance_id,
    };

    if streaming && status < 300 && content_type.starts_with("text/event-stream") {
        let upstream_wait = started.elapsed();
        let relay = StreamRelay {
            body,
            silence: timeout,
            scanner: SseScanner::default(),
            meter,
        };
        let chunks = futures_util::stream::unfold(Some(relay), StreamRelay::next).boxed();
        return Ok(ProxyResponse {
            status,
            content_type,
            body: ProxyBody::Stream(chunks),
            upstream_wait,
            usage_id,
        });
    }

    let bytes = match tokio::time::timeout_at(deadline, body.collect()).await {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(_)) => {
            return Err(upstream_error(
                502,
                "upstream_error",
                "The model server's answer was cut off.",
            ));
        }
        Err(_) => return Err(timed_out()),
    };
    let upstream_wait = started.elapsed();
    if status < 300 {
        meter.record(usage_in(&bytes)).await;
    }
    Ok(ProxyResponse {
        status,
        content_type,
        body: ProxyBody::Full(bytes),
        upstream_wait,
        usage_id,
    })
}

fn timed_out() -> ServiceError {
    upstream_error(
        504,
        "upstream_timeout",
        "The model server did not answer in time.",
    )
}

/// A streamed answer being passed on: each chunk goes out as it arrives, scanned for the
/// usage on the way; the usage row is written when the stream ends, however it ends (the
/// client got a 200 either way).
struct StreamRelay {
    body: client::Incoming,
    /// The longest wait for the next chunk.
    silence: Duration,
    scanner: SseScanner,
    meter: Metering,
}

impl StreamRelay {
    /// One step of the relay (for `stream::unfold`): the next chunk and the state after it.
    async fn next(
        relay: Option<StreamRelay>,
    ) -> Option<(Result<Bytes, std::io::Error>, Option<StreamRelay>)> {
        let mut relay = relay?;
        let failure =
            match tokio::time::timeout(relay.silence, client::next_chunk(&mut relay.body)).await {
                Ok(Some(Ok(chunk))) => {
                    relay.scanner.feed(&chunk);
                    return Some((Ok(chunk), Some(relay)));
                }
                Ok(None) => None,
                Ok(Some(Err(err))) => Some(std::io::Error::other(err)),
                Err(_) => Some(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "the model server went silent",
                )),
            };
        relay.meter.record(relay.scanner.usage).await;
        failure.map(|err| (Err(err), None))
    }
}

/// What a finished request needs to write its usage row.
struct Metering {
    meter: super::Meter,
    clock: Arc<dyn crate::Clock>,
    usage_id: UsageId,
    principal_user: inventiv_domain::UserId,
    api_key: Option<inventiv_domain::ApiKeyId>,
    target: Arc<Target>,
    instance_id: inventiv_domain::InstanceId,
}

impl Metering {
    async fn record(self, usage: Option<Usage>) {
        let usage = usage.unwrap_or_else(|| {
            tracing::warn!(model = %self.target.requested, "the upstream reported no usage; metering 0 tokens");
            Usage::default()
        });
        let (p_in, p_out) = self.target.prices;
        let charged = match charged_micros(usage.input, usage.output, p_in, p_out) {
            Ok(charged) => charged,
            Err(err) => {
                tracing::error!(error = %err, "charge overflow; metering tokens at 0 charge");
                0
            }
        };
        let id = self.usage_id;
        self.meter
            .record(UsageRecord {
                id,
                // A fresh id per proxied call: ingestion is idempotent by it, and a client cannot
                // make two calls share one (as it could with its own X-Request-Id).
                request_id: id.to_string(),
                occurred_at: self.clock.now(),
                api_key_id: self.api_key,
                user_id: Some(self.principal_user),
                consumer_organization_id: self.target.consumer,
                provider_organization_id: self.target.provider,
                offering_id: self.target.offering,
                share_id: self.target.share,
                model_id: self.target.model_id,
                instance_id: self.instance_id,
                input_tokens: i64::try_from(usage.input).unwrap_or(i64::MAX),
                output_tokens: i64::try_from(usage.output).unwrap_or(i64::MAX),
                price_input_micros_per_1k: p_in,
                price_output_micros_per_1k: p_out,
                charged_micros: charged,
            })
            .await;
    }
}

/// Finds the usage in an SSE stream, across chunk boundaries, without buffering the stream.
#[derive(Default)]
struct SseScanner {
    partial: Vec<u8>,
    usage: Option<Usage>,
}

impl SseScanner {
    fn feed(&mut self, bytes: &[u8]) {
        self.partial.extend_from_slice(bytes);
        while let Some(end) = self.partial.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line);
            if let Some(data) = line.trim_end().strip_prefix("data:")
                && data.contains("\"usage\"")
                && let Some(usage) = usage_in(data.trim().as_bytes())
            {
                self.usage = Some(usage);
            }
        }
        // A line longer than this is not one we need (usage chunks are small).
        if self.partial.len() > 1 << 20 {
            self.partial.clear();
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::{RequestBody, SseScanner, usage_in};
    use serde_json::{Value, json};

    fn rewritten(body: &str, include_usage: bool) -> Value {
        let request = RequestBody::parse(body.as_bytes()).unwrap();
        let out = request.rewrite("upstream/model", include_usage).unwrap();
        serde_json::from_slice(&out).unwrap()
    }

    #[test]
    fn the_body_is_relayed_as_it_came_but_for_the_model_and_the_usage_option() {
        let body = r#"{"model":"acme/chat","messages":[{"role":"user","content":"h\u00e9 \"x\""}],"temperature":0.70,"n":1}"#;
        let request = RequestBody::parse(body.as_bytes()).unwrap();
        let text = String::from_utf8(request.rewrite("upstream/model", false).unwrap()).unwrap();
        // Untouched values keep their exact text (escapes, number formatting).
        assert!(text.contains(r#""content":"h\u00e9 \"x\"""#), "{text}");
        assert!(text.contains(r#""temperature":0.70"#), "{text}");
        assert_eq!(
            rewritten(body, false),
            json!({"model": "upstream/model", "messages": [{"role": "user", "content": "hé \"x\""}], "temperature": 0.70, "n": 1})
        );
        let streamed = rewritten(
            r#"{"model":"m","stream":true,"stream_options":{"other":1,"include_usage":false}}"#,
            true,
        );
        assert_eq!(
            streamed["stream_options"],
            json!({"other": 1, "include_usage": true})
        );
        let fresh = rewritten(r#"{"model":"m","stream":true}"#, true);
        assert_eq!(fresh["stream_options"], json!({"include_usage": true}));
        assert_eq!(rewritten("{}", false), json!({"model": "upstream/model"}));
    }

    #[test]
    fn nesting_is_limited_but_brackets_in_strings_do_not_count() {
        use super::nests_deeper_than;
        let deep = format!("{{\"a\":{}{}}}", "[".repeat(200), "]".repeat(200));
        assert!(nests_deeper_than(deep.as_bytes(), 128));
        assert!(RequestBody::parse(deep.as_bytes()).is_err());
        let fine = format!("{{\"a\":{}{}}}", "[".repeat(100), "]".repeat(100));
        assert!(!nests_deeper_than(fine.as_bytes(), 128));
        let quoted = format!("{{\"a\":\"{}\\\"{}\"}}", "[".repeat(500), "{".repeat(500));
        assert!(!nests_deeper_than(quoted.as_bytes(), 128), "{quoted}");
        assert!(RequestBody::parse(quoted.as_bytes()).is_ok());
    }

    #[test]
    fn a_body_that_is_not_a_json_object_is_refused() {
        for body in ["[1,2]", "\"text\"", "3", "{\"model\":", "not json", ""] {
            assert!(RequestBody::parse(body.as_bytes()).is_err(), "{body}");
        }
    }

    #[test]
    fn usage_is_read_from_the_answer_and_nothing_else_is_needed() {
        let answer = br#"{"id":"x","choices":[{"message":{"content":"long"}}],"usage":{"prompt_tokens":7,"completion_tokens":9,"total_tokens":16}}"#;
        let usage = usage_in(answer).unwrap();
        assert_eq!((usage.input, usage.output), (7, 9));
        assert!(usage_in(br#"{"choices":[]}"#).is_none());
        assert!(usage_in(br#"{"usage":null}"#).is_none());
        let partial = usage_in(br#"{"usage":{"prompt_tokens":3}}"#).unwrap();
        assert_eq!((partial.input, partial.output), (3, 0));
    }

    #[test]
    fn usage_is_found_across_chunk_boundaries() {
        let mut scanner = SseScanner::default();
        let stream = "data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}],\"usage\":null}\n\n\
                      data: {\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":34}}\n\ndata: [DONE]\n\n";
        for chunk in stream.as_bytes().chunks(7) {
            scanner.feed(chunk);
        }
        let usage = scanner.usage.unwrap_or_default();
        assert_eq!((usage.input, usage.output), (12, 34));
    }
}

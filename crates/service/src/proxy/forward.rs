//! Forwarding to the chosen instance and metering the answer.

use super::budget::{Capped, Reservation};
use super::client;
use super::resolve::{Target, resolve};
use crate::Ctx;
use crate::{Deps, ServiceError};
use bytes::Bytes;
use futures_util::stream::{BoxStream, StreamExt};
use http_body_util::BodyExt;
use inventiv_domain::ErrorCode;
use inventiv_domain::{UsageId, charged_micros, worst_case_micros};
use inventiv_persistence::repo::spend::{Subject, SubjectKind};
use inventiv_persistence::repo::usage::{UsageRecord, UsageSource};
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

    /// The raw JSON text of `field`; `null` counts as absent.
    fn raw(&self, field: &str) -> Option<&str> {
        self.fields
            .get(field)
            .map(|v| v.get().trim())
            .filter(|v| *v != "null")
    }

    /// A whole number in `range`, if the field is given.
    fn count(
        &self,
        field: &str,
        range: std::ops::RangeInclusive<u64>,
    ) -> Result<Option<u64>, ServiceError> {
        let Some(raw) = self.raw(field) else {
            return Ok(None);
        };
        match whole_number(raw) {
            Some(n) if range.contains(&n) => Ok(Some(n)),
            _ => Err(invalid_body(format!(
                "`{field}` must be a whole number from {} to {}",
                range.start(),
                range.end()
            ))),
        }
    }

    /// How many prompts `field` holds: a list of texts (or of token lists) is one prompt each;
    /// a text or a single token list is one.
    fn prompts(&self, field: &str) -> u64 {
        let Some(raw) = self.raw(field) else { return 1 };
        if !raw.starts_with('[') {
            return 1;
        }
        match serde_json::from_str::<Vec<&RawValue>>(raw) {
            Ok(items)
                if items
                    .first()
                    .is_some_and(|i| i.get().trim_start().starts_with(['"', '['])) =>
            {
                (items.len() as u64).max(1)
            }
            _ => 1,
        }
    }

    /// Checks the fields the proxy acts on and reads what bounds the request's cost. `stream`
    /// and `stream_options.include_usage` must be JSON booleans (a `"stream": 1` relayed as
    /// it is would stream without the usage the proxy asks for, and meter nothing).
    fn shape(&self, endpoint: Endpoint) -> Result<Shape, ServiceError> {
        let streaming = match self.raw("stream") {
            None | Some("false") => false,
            Some("true") => true,
            Some(_) => return Err(invalid_body("`stream` must be a JSON boolean")),
        };
        if let Some(raw) = self.raw("stream_options") {
            let options: Map<String, Value> = serde_json::from_str(raw)
                .map_err(|_| invalid_body("`stream_options` must be a JSON object"))?;
            if options
                .get("include_usage")
                .is_some_and(|v| !(v.is_boolean() || v.is_null()))
            {
                return Err(invalid_body(
                    "`stream_options.include_usage` must be a JSON boolean",
                ));
            }
        }
        let n = self.count("n", 1..=128)?.unwrap_or(1);
        // An embedding generates nothing: no output to reserve for.
        let choices = if endpoint == Endpoint::Embeddings {
            0
        } else {
            n
        };
        let limit = 0..=u64::from(u32::MAX);
        let max_output = match (
            self.count("max_tokens", limit.clone())?,
            self.count("max_completion_tokens", limit)?,
        ) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let prompts = match endpoint {
            Endpoint::ChatCompletions => 1,
            Endpoint::Completions => self.prompts("prompt"),
            Endpoint::Embeddings => self.prompts("input"),
        };
        Ok(Shape {
            streaming: streaming && endpoint.streams(),
            prompts,
            choices,
            max_output,
        })
    }

    /// The body with `model` replaced, output limits clamped to `max_output` (the model's
    /// context) and, when asked, `stream_options.include_usage` set.
    fn rewrite(
        &self,
        model: &str,
        include_usage: bool,
        max_output: u64,
    ) -> Result<Vec<u8>, ServiceError> {
        let model = serde_json::to_vec(model).map_err(ServiceError::internal)?;
        let clamped = max_output.to_string();
        let mut out = Vec::with_capacity(self.fields.values().map(|v| v.get().len() + 16).sum());
        for (key, raw) in &self.fields {
            match key.as_str() {
                "model" => write(&mut out, key, &model)?,
                "stream_options" if include_usage => {}
                "max_tokens" | "max_completion_tokens"
                    if raw
                        .get()
                        .trim()
                        .parse::<u64>()
                        .is_ok_and(|n| n > max_output) =>
                {
                    write(&mut out, key, clamped.as_bytes())?;
                }
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

/// A JSON number that is a whole number ≥ 0: `13`, or `13.0` (JSON Schema calls it an
/// integer too).
fn whole_number(raw: &str) -> Option<u64> {
    raw.parse::<u64>().ok().or_else(|| {
        raw.parse::<f64>()
            .ok()
            .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f < u64::MAX as f64)
            .map(|f| f as u64)
    })
}

/// What a request asks for that bounds its cost (see [`RequestBody::shape`]).
#[derive(Debug, Clone, Copy)]
struct Shape {
    streaming: bool,
    /// Prompts (a completion's list of prompts, an embedding's list of inputs), each at most
    /// the model's context.
    prompts: u64,
    /// Answers per prompt (`n`; 0 for embeddings, which generate nothing).
    choices: u64,
    /// `max_tokens` / `max_completion_tokens` (the smaller when both are given).
    max_output: Option<u64>,
}

fn invalid_body(message: impl Into<String>) -> ServiceError {
    ServiceError::BadRequest {
        code: ErrorCode::InvalidBody,
        message: message.into(),
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

fn bad_gateway(code: ErrorCode, message: &str) -> ServiceError {
    ServiceError::BadGateway {
        code,
        message: message.to_owned(),
    }
}

/// The caps that apply to a call of `target` by `principal`: the share's (its consumer's) and
/// the API key's.
fn caps(ctx: &Ctx, target: &Target) -> Vec<Capped> {
    let share = target.share.zip(target.share_cap).map(|(id, cap)| Capped {
        subject: Subject {
            kind: SubjectKind::Share,
            id: id.as_uuid(),
        },
        cap,
    });
    let key = ctx.principal.api_key().and_then(|k| {
        k.monthly_cap_micros.map(|cap| Capped {
            subject: Subject {
                kind: SubjectKind::ApiKey,
                id: k.id.as_uuid(),
            },
            cap,
        })
    });
    share.into_iter().chain(key).collect()
}

/// Reserves the worst-case charge of the call against its caps (SPEC §5.2).
async fn admit(
    deps: &Deps,
    ctx: &Ctx,
    target: &Target,
    shape: &Shape,
    max_output: u64,
) -> Result<Reservation, ServiceError> {
    let caps = caps(ctx, target);
    if caps.is_empty() {
        return Ok(Reservation::none());
    }
    let (p_in, p_out) = target.prices;
    let worst = worst_case_micros(
        shape.prompts,
        shape.choices,
        target.context_length,
        max_output,
        p_in,
        p_out,
    )
    // Beyond any i64 amount: no cap can take it.
    .unwrap_or(i64::MAX);
    deps.proxy.budgets.admit(&caps, worst).await
}

/// Tokens in `bytes` of text, counted generously (4 bytes a token, rounded up).
fn tokens_of(bytes: usize) -> u64 {
    (bytes as u64).div_ceil(4)
}

/// Forwards one OpenAI request for `principal`.
pub async fn forward(
    deps: &Deps,
    ctx: &Ctx,
    endpoint: Endpoint,
    body: &[u8],
) -> Result<ProxyResponse, ServiceError> {
    let request = RequestBody::parse(body)?;
    let requested: String = request
        .get("model")
        .ok_or_else(|| ServiceError::invalid("model", "required"))?;
    let shape = request.shape(endpoint)?;
    let target = resolve(deps, ctx, &requested).await?;
    let max_output = shape
        .max_output
        .unwrap_or(target.context_length)
        .min(target.context_length);
    let reservation = admit(deps, ctx, &target, &shape, max_output).await?;
    let payload = request.rewrite(
        &target.upstream_model,
        shape.streaming,
        target.context_length,
    )?;
    // Without the upstream's count, the prompt counts as its bytes / 4, within what the
    // request could hold.
    let input_estimate =
        tokens_of(body.len()).min(shape.prompts.saturating_mul(target.context_length));
    let pick = rand::rng().random_range(0..target.instances.len());
    let upstream = target
        .instances
        .get(pick)
        .ok_or_else(|| ServiceError::Unavailable {
            code: ErrorCode::NoReadyInstance,
            message: "no instance".to_owned(),
        })?;
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
            return Err(bad_gateway(
                ErrorCode::UpstreamUnreachable,
                "The model server could not be reached.",
            ));
        }
        Err(_) => return Err(timed_out()),
    };
    let (head, body) = answer.into_parts();
    let status = head.status.as_u16();
    if status >= 500 {
        return Err(bad_gateway(
            ErrorCode::UpstreamError,
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
        principal_user: ctx.user_id(),
        api_key: ctx.principal.api_key().map(|k| k.id),
        target,
        instance_id,
        input_estimate,
        reservation,
    };

    if shape.streaming && status < 300 && content_type.starts_with("text/event-stream") {
        let upstream_wait = started.elapsed();
        let relay = StreamRelay(Some(Relaying {
            body,
            silence: timeout,
            scanner: SseScanner::default(),
            meter,
        }));
        let chunks = futures_util::stream::unfold(relay, StreamRelay::next).boxed();
        return Ok(ProxyResponse {
            status,
            content_type,
            body: ProxyBody::Stream(chunks),
            upstream_wait,
            usage_id,
        });
    }

    let limited = http_body_util::Limited::new(body, deps.proxy.settings.max_response_bytes);
    let bytes = match tokio::time::timeout_at(deadline, limited.collect()).await {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(_)) => {
            return Err(bad_gateway(
                ErrorCode::UpstreamError,
                "The model server's answer was cut off or too large.",
            ));
        }
        Err(_) => return Err(timed_out()),
    };
    let upstream_wait = started.elapsed();
    if status < 300 {
        let metered = match usage_in(&bytes) {
            Some(usage) => Metered::Reported(usage),
            None => Metered::Estimated {
                output_chars: answer_chars(&bytes),
            },
        };
        meter.record(metered).await;
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
    ServiceError::GatewayTimeout {
        code: ErrorCode::UpstreamTimeout,
        message: "The model server did not answer in time.".to_owned(),
    }
}

/// A streamed answer being passed on: each chunk goes out as it arrives, scanned for the
/// usage on the way; the usage row is written when the stream ends, however it ends (the
/// client got a 200 either way), before the response's last byte leaves. If the client goes
/// away first, the relay is dropped: the rest of the stream is then read in the background,
/// for its usage, within the same silence bound (see `Drop`).
struct StreamRelay(Option<Relaying>);

struct Relaying {
    body: client::Incoming,
    /// The longest wait for the next chunk.
    silence: Duration,
    scanner: SseScanner,
    meter: Metering,
}

impl Relaying {
    /// The next chunk, `Ok(None)` at the end, or why the stream broke off.
    async fn next_chunk(&mut self) -> Result<Option<Bytes>, std::io::Error> {
        match tokio::time::timeout(self.silence, client::next_chunk(&mut self.body)).await {
            Ok(Some(Ok(chunk))) => {
                self.scanner.feed(&chunk);
                Ok(Some(chunk))
            }
            Ok(None) => Ok(None),
            Ok(Some(Err(err))) => Err(std::io::Error::other(err)),
            Err(_) => Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the model server went silent",
            )),
        }
    }

    /// Writes the usage row. On a task of its own, so that it completes even if the response
    /// is dropped meanwhile (the client left while the row waited for room in the queue);
    /// awaited, so that the row is journaled before the response's last byte leaves.
    async fn finish(self) {
        let metered = self.scanner.metered();
        let meter = self.meter;
        if let Err(err) = tokio::spawn(meter.record(metered)).await {
            tracing::error!(error = %err, "metering a stream failed");
        }
    }
}

impl StreamRelay {
    /// One step of the relay (for `stream::unfold`): the next chunk and the state after it.
    ///
    /// The relay stays inside `relay` while it waits for the upstream: if the response is
    /// dropped meanwhile, `relay`'s `Drop` finds it and finishes the metering.
    async fn next(mut relay: StreamRelay) -> Option<(Result<Bytes, std::io::Error>, StreamRelay)> {
        let chunk = relay.0.as_mut()?.next_chunk().await;
        match chunk {
            Ok(Some(chunk)) => Some((Ok(chunk), relay)),
            Ok(None) => {
                relay.0.take()?.finish().await;
                None
            }
            Err(err) => {
                relay.0.take()?.finish().await;
                Some((Err(err), relay))
            }
        }
    }
}

impl Drop for StreamRelay {
    /// The client hung up mid-stream: the call is still metered, from the rest of the stream.
    fn drop(&mut self) {
        let Some(mut relaying) = self.0.take() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::error!("a stream was dropped outside a runtime: its usage row is lost");
            return;
        };
        runtime.spawn(async move {
            while let Ok(Some(_)) = relaying.next_chunk().await {}
            relaying.finish().await;
        });
    }
}

/// How a call's tokens are known.
enum Metered {
    /// From the upstream's `usage`.
    Reported(Usage),
    /// The upstream sent none: counted from what was relayed.
    Estimated { output_chars: usize },
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
    /// The prompt's tokens, estimated from the request (used when the upstream reports none).
    input_estimate: u64,
    reservation: Reservation,
}

impl Metering {
    async fn record(self, metered: Metered) {
        let (usage, source) = match metered {
            Metered::Reported(usage) => (usage, UsageSource::Upstream),
            Metered::Estimated { output_chars } => {
                tracing::warn!(model = %self.target.requested, "the upstream reported no usage; metering an estimate of what was relayed");
                let usage = Usage {
                    input: self.input_estimate,
                    output: tokens_of(output_chars),
                };
                (usage, UsageSource::Estimated)
            }
        };
        let (p_in, p_out) = self.target.prices;
        let metered = charged_micros(usage.input, usage.output, p_in, p_out).unwrap_or_else(|err| {
            tracing::error!(error = %err, "charge overflow; charging the reservation (or 0 uncapped)");
            self.reservation.limit().unwrap_or(0)
        });
        // Never more than was reserved: an upstream that reports more is clamped, and flagged.
        let limit = self.reservation.limit();
        let clamped = limit.is_some_and(|limit| metered > limit);
        let charged = limit.map_or(metered, |limit| metered.min(limit));
        if clamped {
            tracing::warn!(model = %self.target.requested, metered, charged, "the upstream reported more than the reservation allows; charge clamped");
        }
        let share_lease = self.target.share.and_then(|id| {
            self.reservation.lease_of(Subject {
                kind: SubjectKind::Share,
                id: id.as_uuid(),
            })
        });
        let key_lease = self.api_key.and_then(|id| {
            self.reservation.lease_of(Subject {
                kind: SubjectKind::ApiKey,
                id: id.as_uuid(),
            })
        });
        let now = self.clock.now();
        let month = self
            .reservation
            .month()
            .unwrap_or_else(|| inventiv_persistence::repo::spend::month_of(now));
        self.reservation.settle(charged);
        let id = self.usage_id;
        self.meter
            .record(UsageRecord {
                id,
                // A fresh id per proxied call: ingestion is idempotent by it, and a client cannot
                // make two calls share one (as it could with its own X-Request-Id).
                request_id: id.to_string(),
                occurred_at: now,
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
                usage_source: source,
                clamped,
                month,
                share_lease,
                key_lease,
            })
            .await;
    }
}

/// The characters of the generated text in a whole (not streamed) answer: chat messages'
/// `content` and completions' `text`. Only read when the upstream reported no usage.
fn answer_chars(json: &[u8]) -> usize {
    #[derive(Deserialize)]
    struct Answer {
        #[serde(default)]
        choices: Vec<Choice>,
    }
    #[derive(Deserialize)]
    struct Choice {
        message: Option<Text>,
        delta: Option<Text>,
        text: Option<String>,
    }
    #[derive(Deserialize)]
    struct Text {
        content: Option<String>,
    }
    serde_json::from_slice::<Answer>(json).map_or(json.len(), |answer| {
        answer
            .choices
            .iter()
            .map(|c| {
                let content = c.message.as_ref().or(c.delta.as_ref());
                content
                    .and_then(|t| t.content.as_ref())
                    .map_or(0, String::len)
                    + c.text.as_ref().map_or(0, String::len)
            })
            .sum()
    })
}

/// Finds the usage in an SSE stream, across chunk boundaries, without buffering the stream.
#[derive(Default)]
struct SseScanner {
    partial: Vec<u8>,
    usage: Option<Usage>,
    /// Generated text relayed so far (for an estimate if no usage comes).
    output_chars: usize,
}

impl SseScanner {
    fn feed(&mut self, bytes: &[u8]) {
        self.partial.extend_from_slice(bytes);
        while let Some(end) = self.partial.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line);
            let Some(data) = line.trim_end().strip_prefix("data:") else {
                continue;
            };
            if data.contains("\"usage\"")
                && let Some(usage) = usage_in(data.trim().as_bytes())
            {
                self.usage = Some(usage);
                continue;
            }
            if self.usage.is_none() && data.contains("\"choices\"") {
                self.output_chars += answer_chars(data.trim().as_bytes());
            }
        }
        // A line longer than this is not one we need (usage chunks are small).
        if self.partial.len() > 1 << 20 {
            self.output_chars += self.partial.len();
            self.partial.clear();
        }
    }

    /// What the stream said of its tokens.
    fn metered(&self) -> Metered {
        match self.usage {
            Some(usage) => Metered::Reported(usage),
            None => Metered::Estimated {
                output_chars: self.output_chars,
            },
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::{Endpoint, Metered, RequestBody, SseScanner, answer_chars, usage_in};
    use serde_json::{Value, json};

    fn rewritten(body: &str, include_usage: bool) -> Value {
        let request = RequestBody::parse(body.as_bytes()).unwrap();
        let out = request
            .rewrite("upstream/model", include_usage, 4096)
            .unwrap();
        serde_json::from_slice(&out).unwrap()
    }

    #[test]
    fn the_body_is_relayed_as_it_came_but_for_the_model_and_the_usage_option() {
        let body = r#"{"model":"acme/chat","messages":[{"role":"user","content":"h\u00e9 \"x\""}],"temperature":0.70,"n":1}"#;
        let request = RequestBody::parse(body.as_bytes()).unwrap();
        let text =
            String::from_utf8(request.rewrite("upstream/model", false, 4096).unwrap()).unwrap();
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
    fn stream_flags_must_be_booleans_and_counts_whole_numbers() {
        let shape =
            |body: &str, endpoint| RequestBody::parse(body.as_bytes()).unwrap().shape(endpoint);
        for bad in [
            r#"{"stream":1}"#,
            r#"{"stream":"true"}"#,
            r#"{"stream":true,"stream_options":{"include_usage":1}}"#,
            r#"{"stream_options":[]}"#,
            r#"{"n":0}"#,
            r#"{"n":1.5}"#,
            r#"{"n":-1.0}"#,
            r#"{"n":1000}"#,
            r#"{"max_tokens":-1}"#,
            r#"{"max_tokens":"10"}"#,
            r#"{"max_completion_tokens":1e30}"#,
        ] {
            assert!(shape(bad, Endpoint::ChatCompletions).is_err(), "{bad}");
        }
        let ok = shape(
            r#"{"stream":true,"stream_options":{"include_usage":false},"n":3,"max_tokens":50,"max_completion_tokens":40}"#,
            Endpoint::ChatCompletions,
        )
        .unwrap();
        assert!(ok.streaming);
        assert_eq!((ok.prompts, ok.choices, ok.max_output), (1, 3, Some(40)));
        let null = shape(
            r#"{"stream":null,"n":null,"max_tokens":null}"#,
            Endpoint::ChatCompletions,
        )
        .unwrap();
        assert!(!null.streaming);
        assert_eq!((null.choices, null.max_output), (1, None));
        // Embeddings never stream and generate nothing; a list of inputs is one prompt each, a
        // token list is one.
        assert_eq!(
            shape(r#"{"input":"x"}"#, Endpoint::Embeddings)
                .unwrap()
                .choices,
            0
        );
        assert!(
            !shape(r#"{"stream":true}"#, Endpoint::Embeddings)
                .unwrap()
                .streaming
        );
        assert_eq!(
            shape(r#"{"input":["a","b","c"]}"#, Endpoint::Embeddings)
                .unwrap()
                .prompts,
            3
        );
        assert_eq!(
            shape(r#"{"input":[1,2,3]}"#, Endpoint::Embeddings)
                .unwrap()
                .prompts,
            1
        );
        assert_eq!(
            shape(r#"{"prompt":[[1],[2]]}"#, Endpoint::Completions)
                .unwrap()
                .prompts,
            2
        );
        assert_eq!(
            shape(r#"{"prompt":"x"}"#, Endpoint::Completions)
                .unwrap()
                .prompts,
            1
        );
    }

    #[test]
    fn output_limits_past_the_context_are_clamped() {
        let body = r#"{"model":"m","max_tokens":999999,"max_completion_tokens":100}"#;
        let request = RequestBody::parse(body.as_bytes()).unwrap();
        let out: Value =
            serde_json::from_slice(&request.rewrite("u", false, 4096).unwrap()).unwrap();
        assert_eq!(out["max_tokens"], 4096);
        assert_eq!(out["max_completion_tokens"], 100);
    }

    #[test]
    fn without_usage_the_relayed_text_is_counted() {
        let mut scanner = SseScanner::default();
        scanner
            .feed(b"data: {\"choices\":[{\"delta\":{\"content\":\"hello\"}}],\"usage\":null}\n\n");
        scanner.feed(
            b"data: {\"choices\":[{\"delta\":{\"content\":\" world\"}}]}\n\ndata: [DONE]\n\n",
        );
        assert!(
            matches!(scanner.metered(), Metered::Estimated { output_chars: 11 }),
            "no usage was sent: the relayed text is counted"
        );
        assert_eq!(
            answer_chars(br#"{"choices":[{"message":{"content":"abcd"}},{"text":"xy"}]}"#),
            6
        );
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

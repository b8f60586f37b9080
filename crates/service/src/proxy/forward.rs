//! Forwarding to the chosen instance and metering the answer.

use super::resolve::{Target, resolve};
use crate::auth::Principal;
use crate::{Deps, ServiceError};
use bytes::Bytes;
use futures_util::stream::{BoxStream, StreamExt};
use inventiv_domain::{UsageId, charged_micros};
use inventiv_persistence::repo::usage::UsageRecord;
use rand::RngExt;
use serde_json::{Map, Value, json};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The OpenAI endpoints the proxy serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    ChatCompletions,
    Completions,
    Embeddings,
}

impl Endpoint {
    fn path(self) -> &'static str {
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

fn usage_of(value: &Value) -> Option<Usage> {
    let usage = value.get("usage").filter(|u| u.is_object())?;
    Some(Usage {
        input: usage
            .get("prompt_tokens")
            .and_then(Value::as_u64)
            .unwrap_or(0),
        output: usage
            .get("completion_tokens")
            .and_then(Value::as_u64)
            .unwrap_or(0),
    })
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
    let mut request: Map<String, Value> = match serde_json::from_slice(body) {
        Ok(Value::Object(map)) => map,
        Ok(_) => return Err(ServiceError::invalid("body", "a JSON object")),
        Err(e) => {
            return Err(ServiceError::invalid(
                "body",
                format!("not valid JSON: {e}"),
            ));
        }
    };
    let requested = request
        .get("model")
        .and_then(Value::as_str)
        .ok_or_else(|| ServiceError::invalid("model", "required"))?
        .to_owned();
    let target = resolve(deps, principal, &requested).await?;
    request.insert(
        "model".to_owned(),
        Value::String(target.upstream_model.clone()),
    );
    let streaming = endpoint.streams()
        && request
            .get("stream")
            .and_then(Value::as_bool)
            .unwrap_or(false);
    if streaming {
        // Ask for the usage in the final chunk: that is what gets metered.
        let options = request.entry("stream_options").or_insert_with(|| json!({}));
        if let Value::Object(options) = options {
            options.insert("include_usage".to_owned(), Value::Bool(true));
        }
    }
    let payload = serde_json::to_vec(&request).map_err(ServiceError::internal)?;
    let pick = rand::rng().random_range(0..target.instances.len());
    let (instance_id, base) = target
        .instances
        .get(pick)
        .cloned()
        .ok_or_else(|| upstream_error(503, "no_ready_instance", "no instance"))?;

    let started = Instant::now();
    let sent = deps
        .proxy
        .client
        .post(format!("{base}{}", endpoint.path()))
        .header("content-type", "application/json")
        .body(payload)
        .send()
        .await;
    let upstream = match sent {
        Ok(res) => res,
        Err(err) if err.is_timeout() => {
            return Err(upstream_error(
                504,
                "upstream_timeout",
                "The model server did not answer in time.",
            ));
        }
        Err(_) => {
            return Err(upstream_error(
                502,
                "upstream_unreachable",
                "The model server could not be reached.",
            ));
        }
    };
    let status = upstream.status().as_u16();
    if status >= 500 {
        return Err(upstream_error(
            502,
            "upstream_error",
            &format!("The model server failed (HTTP {status})."),
        ));
    }
    let content_type = upstream
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
        .to_owned();
    let usage_id = UsageId::new();
    let meter = Metering {
        deps: deps.clone(),
        usage_id,
        principal_user: principal.user_id,
        api_key: principal.api_key.as_ref().map(|k| k.id),
        target,
        instance_id,
    };

    if streaming && status < 300 && content_type.starts_with("text/event-stream") {
        let upstream_wait = started.elapsed();
        let scanner = Arc::new(Mutex::new(SseScanner::default()));
        let feed = scanner.clone();
        let chunks = upstream.bytes_stream().map(move |chunk| {
            if let (Ok(bytes), Ok(mut scanner)) = (&chunk, feed.lock()) {
                scanner.feed(bytes);
            }
            chunk.map_err(std::io::Error::other)
        });
        let finish = futures_util::stream::once(async move {
            let usage = scanner.lock().ok().and_then(|s| s.usage);
            meter.record(usage);
            None
        })
        .filter_map(|item: Option<Result<Bytes, std::io::Error>>| async move { item });
        return Ok(ProxyResponse {
            status,
            content_type,
            body: ProxyBody::Stream(chunks.chain(finish).boxed()),
            upstream_wait,
            usage_id,
        });
    }

    let bytes = match upstream.bytes().await {
        Ok(bytes) => bytes,
        Err(err) if err.is_timeout() => {
            return Err(upstream_error(
                504,
                "upstream_timeout",
                "The model server did not answer in time.",
            ));
        }
        Err(_) => {
            return Err(upstream_error(
                502,
                "upstream_error",
                "The model server's answer was cut off.",
            ));
        }
    };
    let upstream_wait = started.elapsed();
    if status < 300 {
        let usage = serde_json::from_slice::<Value>(&bytes)
            .ok()
            .as_ref()
            .and_then(usage_of);
        meter.record(usage);
    }
    Ok(ProxyResponse {
        status,
        content_type,
        body: ProxyBody::Full(bytes),
        upstream_wait,
        usage_id,
    })
}

/// What a finished request needs to write its usage row.
struct Metering {
    deps: Deps,
    usage_id: UsageId,
    principal_user: inventiv_domain::UserId,
    api_key: Option<inventiv_domain::ApiKeyId>,
    target: Target,
    instance_id: inventiv_domain::InstanceId,
}

impl Metering {
    fn record(self, usage: Option<Usage>) {
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
        self.deps.proxy.meter.record(UsageRecord {
            id,
            // A fresh id per proxied call: ingestion is idempotent by it, and a client cannot
            // make two calls share one (as it could with its own X-Request-Id).
            request_id: id.to_string(),
            occurred_at: self.deps.clock.now(),
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
        });
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
                && let Ok(value) = serde_json::from_str::<Value>(data.trim())
                && let Some(usage) = usage_of(&value)
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
mod tests {
    use super::SseScanner;

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

//! What a finished call used and what it is charged, up to its usage row.
//!
//! - The tokens: as the upstream reports them in `usage` ([`usage_in`]), or, when it reports
//!   none, estimated from what was relayed (the request's bytes for the prompt, the generated
//!   text for the answer; 4 bytes a token, rounded up). Never more than the request allows
//!   (`Shape::most_tokens`), capped or not: a model server is the provider's, and what it
//!   reports is not trusted past what the request could use (the row is flagged `clamped`).
//! - The charge: at the model's prices, never more than the call's reservation (an upstream
//!   that reports more is clamped, and the row flagged).
//! - The settlement: the reservation shrinks to the charge, in the leases it was taken from.
//! - The row: handed to the [`Meter`](super::Meter), which journals it and stores it off the
//!   request path.

use super::Target;
use super::body::Shape;
use super::budget::Reservation;
use crate::{Ctx, Deps};
use inventiv_domain::{ApiKeyId, InstanceId, UsageId, UserId, charged_micros};
use inventiv_persistence::repo::spend::{Subject, SubjectKind};
use inventiv_persistence::repo::usage::{UsageRecord, UsageSource};
use serde::Deserialize;
use serde_json::Value;
use std::sync::Arc;

/// Token counts reported by the upstream.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Usage {
    pub(super) input: u64,
    pub(super) output: u64,
}

/// What the proxy reads of an upstream answer (or of one SSE chunk): only `usage`. Every other
/// field is skipped by the parser without being built (answers can be large).
#[derive(Deserialize)]
struct Reported {
    usage: Option<Value>,
}

/// The usage of an answer (or SSE chunk), if it reports one.
pub(super) fn usage_in(json: &[u8]) -> Option<Usage> {
    let usage = serde_json::from_slice::<Reported>(json).ok()?.usage?;
    let usage = usage.as_object()?;
    let count = |field: &str| usage.get(field).and_then(Value::as_u64).unwrap_or(0);
    Some(Usage {
        input: count("prompt_tokens"),
        output: count("completion_tokens"),
    })
}

/// The characters of the generated text in a whole answer (or one SSE chunk): chat messages'
/// (or deltas') `content`, `reasoning_content` and tool calls' `arguments`, and completions'
/// `text`. Only read when the upstream reported no usage: everything the model generated is
/// counted, or a forced tool call (`tool_choice: "required"`, no `content`) was billed as
/// nothing.
pub(super) fn answer_chars(json: &[u8]) -> usize {
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
        reasoning_content: Option<String>,
        #[serde(default)]
        tool_calls: Vec<ToolCall>,
    }
    #[derive(Deserialize)]
    struct ToolCall {
        function: Option<Function>,
    }
    #[derive(Deserialize)]
    struct Function {
        name: Option<String>,
        arguments: Option<String>,
    }
    let len = |s: &Option<String>| s.as_ref().map_or(0, String::len);
    serde_json::from_slice::<Answer>(json).map_or(json.len(), |answer| {
        answer
            .choices
            .iter()
            .map(|c| {
                let generated = c.message.as_ref().or(c.delta.as_ref()).map_or(0, |t| {
                    len(&t.content)
                        + len(&t.reasoning_content)
                        + t.tool_calls
                            .iter()
                            .filter_map(|call| call.function.as_ref())
                            .map(|f| len(&f.name) + len(&f.arguments))
                            .sum::<usize>()
                });
                generated + len(&c.text)
            })
            .sum()
    })
}

/// Tokens in `bytes` of text, counted generously (4 bytes a token, rounded up).
fn tokens_of(bytes: usize) -> u64 {
    (bytes as u64).div_ceil(4)
}

/// The prompt's tokens when the upstream does not count them: the request's `body_bytes` / 4,
/// within what the request could hold (each prompt at most the model's context).
pub(super) fn input_estimate(body_bytes: usize, shape: &Shape, context_length: u64) -> u64 {
    tokens_of(body_bytes).min(shape.prompts.saturating_mul(context_length))
}

/// How a call's tokens are known.
pub(super) enum Metered {
    /// From the upstream's `usage`.
    Reported(Usage),
    /// The upstream sent none: counted from what was relayed.
    Estimated { output_chars: usize },
}

impl Metered {
    /// What a whole (not streamed) answer says of its tokens.
    pub(super) fn of_answer(json: &[u8]) -> Metered {
        match usage_in(json) {
            Some(usage) => Metered::Reported(usage),
            None => Metered::Estimated {
                output_chars: answer_chars(json),
            },
        }
    }
}

/// What a finished request needs to write its usage row.
pub(super) struct Metering {
    meter: super::Meter,
    clock: Arc<dyn crate::Clock>,
    usage_id: UsageId,
    principal_user: UserId,
    api_key: Option<ApiKeyId>,
    target: Arc<Target>,
    instance_id: InstanceId,
    /// The prompt's tokens, estimated from the request (used when the upstream reports none).
    input_estimate: u64,
    /// The most tokens the request lets the call use (see `Shape::most_tokens`).
    most: Usage,
    reservation: Reservation,
}

/// What a call is charged.
struct Charge {
    /// micro-EUR.
    charged: i64,
    /// The metered charge was more than the reservation allows, and was cut to it.
    clamped: bool,
}

impl Metering {
    /// The metering of `ctx`'s call to `instance_id` of `target`, under a fresh usage id.
    pub(super) fn new(
        deps: &Deps,
        ctx: &Ctx,
        target: Arc<Target>,
        instance_id: InstanceId,
        (input_estimate, most): (u64, Usage),
        reservation: Reservation,
    ) -> Metering {
        Metering {
            meter: deps.proxy.meter.clone(),
            clock: deps.clock.clone(),
            usage_id: UsageId::new(),
            principal_user: ctx.user_id(),
            api_key: ctx.principal.api_key().map(|k| k.id),
            target,
            instance_id,
            input_estimate,
            most,
            reservation,
        }
    }

    /// The id of the usage row this metering writes (its `request_id` too).
    pub(super) fn usage_id(&self) -> UsageId {
        self.usage_id
    }

    /// Settles the reservation with the call's charge and hands its usage row to the meter.
    pub(super) async fn record(self, metered: Metered) {
        let (usage, source, beyond_request) = self.usage(metered);
        let (p_in, p_out) = self.target.prices;
        let Charge { charged, clamped } = self.charge(usage);
        let clamped = clamped || beyond_request;
        let (share_lease, key_lease) = self.leases();
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

    /// The call's tokens, where they come from, and whether they were cut to what the request
    /// allows.
    fn usage(&self, metered: Metered) -> (Usage, UsageSource, bool) {
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
        let within = Usage {
            input: usage.input.min(self.most.input),
            output: usage.output.min(self.most.output),
        };
        let cut = (within.input, within.output) != (usage.input, usage.output);
        if cut {
            tracing::warn!(model = %self.target.requested, input = usage.input, output = usage.output, "the upstream reported more tokens than the request allows; metered at the request's most");
        }
        (within, source, cut)
    }

    /// The leases the reservation was taken from: the share's cap's, the API key's cap's.
    fn leases(&self) -> (Option<uuid::Uuid>, Option<uuid::Uuid>) {
        let lease_of = |kind, id| self.reservation.lease_of(Subject { kind, id });
        (
            self.target
                .share
                .and_then(|id| lease_of(SubjectKind::Share, id.as_uuid())),
            self.api_key
                .and_then(|id| lease_of(SubjectKind::ApiKey, id.as_uuid())),
        )
    }

    /// The charge of `usage` at the target's prices, never more than was reserved.
    fn charge(&self, usage: Usage) -> Charge {
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
        Charge { charged, clamped }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::{answer_chars, usage_in};

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
    fn without_usage_the_generated_text_of_a_whole_answer_is_counted() {
        assert_eq!(
            answer_chars(br#"{"choices":[{"message":{"content":"abcd"}},{"text":"xy"}]}"#),
            6
        );
        // A forced tool call has no content: its name and arguments are what was generated;
        // so is a reasoning model's reasoning. In a stream, deltas carry the same fields.
        let tool_call = br#"{"choices":[{"message":{"content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"get","arguments":"{\"city\":\"Paris\"}"}}]}}]}"#;
        assert_eq!(answer_chars(tool_call), 3 + 16);
        let reasoning = br#"{"choices":[{"delta":{"reasoning_content":"hmm","content":"ok"}}]}"#;
        assert_eq!(answer_chars(reasoning), 5);
        let streamed_call = br#"{"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"ci"}}]}}]}"#;
        assert_eq!(answer_chars(streamed_call), 4);
    }
}

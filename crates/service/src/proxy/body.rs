//! The request body of a proxied call: checked, measured and rewritten for the upstream.
//!
//! - Checked: a JSON object, nested at most [`MAX_DEPTH`] deep, and the fields the proxy acts
//!   on well-typed (`stream`, `stream_options.include_usage`, `n`, the output limits).
//! - Measured: what bounds the call's cost ([`Shape`]), and from it the worst-case charge
//!   reserved against spend caps before the call goes out.
//! - Rewritten: `model` replaced by the upstream's name, output limits clamped to the model's
//!   context, and the usage asked for when the answer streams.
//!
//! Values the proxy does not act on are relayed as their raw JSON text, never parsed into
//! values or rebuilt (prompts can be large).

use super::Endpoint;
use crate::ServiceError;
use inventiv_domain::{ErrorCode, worst_case_micros};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// An OpenAI request body, field by field, each value kept as its raw JSON text: only
/// `model`, `stream` and `stream_options` are read, and the body is written back without
/// parsing or rebuilding the rest (prompts can be large).
pub(super) struct RequestBody<'a> {
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
    pub(super) fn parse(body: &'a [u8]) -> Result<Self, ServiceError> {
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

    /// The model the client asks for (`model`, required).
    pub(super) fn model(&self) -> Result<String, ServiceError> {
        self.get("model")
            .ok_or_else(|| ServiceError::invalid("model", "required"))
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

    /// Checks the fields the proxy acts on and reads what bounds the request's cost.
    pub(super) fn shape(&self, endpoint: Endpoint) -> Result<Shape, ServiceError> {
        let streaming = self.streaming()?;
        let n = self.count("n", 1..=128)?.unwrap_or(1);
        // An embedding generates nothing: no output to reserve for.
        let choices = if endpoint == Endpoint::Embeddings {
            0
        } else {
            n
        };
        let max_output = self.max_output()?;
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

    /// Whether the client asks for a stream. `stream` and `stream_options.include_usage` must
    /// be JSON booleans (a `"stream": 1` relayed as it is would stream without the usage the
    /// proxy asks for, and meter nothing).
    fn streaming(&self) -> Result<bool, ServiceError> {
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
        Ok(streaming)
    }

    /// The most output the client's limits let a model server generate: the larger of
    /// `max_tokens` and `max_completion_tokens` when both are given, and none (up to the
    /// context) when neither is, or when they are 0.
    ///
    /// Servers do not agree on which field wins: vLLM and SGLang take `max_completion_tokens
    /// or max_tokens`, so a 0 falls through to the other field or to no limit at all, while
    /// others prefer `max_tokens`. A reservation must cover whichever the upstream obeys, or
    /// the charge (cut to the reservation) would leave the rest unbilled: reserving for the
    /// smaller of `{"max_tokens":1,"max_completion_tokens":8000}` billed 1 token of 8,000.
    fn max_output(&self) -> Result<Option<u64>, ServiceError> {
        let limit = 0..=u64::from(u32::MAX);
        let given = [
            self.count("max_tokens", limit.clone())?,
            self.count("max_completion_tokens", limit)?,
        ];
        if given.contains(&Some(0)) {
            return Ok(None);
        }
        Ok(given.into_iter().flatten().max())
    }

    /// The body with `model` replaced, output limits clamped to `max_output` (the model's
    /// context) and, when asked, `stream_options.include_usage` set.
    pub(super) fn rewrite(
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
            write(
                &mut out,
                "stream_options",
                &self.stream_options_with_usage()?,
            )?;
        }
        if out.is_empty() {
            out.push(b'{');
        }
        out.push(b'}');
        Ok(out)
    }

    /// The client's `stream_options` with `include_usage` set: the usage then comes in the
    /// final chunk, and that is what gets metered.
    fn stream_options_with_usage(&self) -> Result<Vec<u8>, ServiceError> {
        let mut options = self
            .get::<Map<String, Value>>("stream_options")
            .unwrap_or_default();
        options.insert("include_usage".to_owned(), Value::Bool(true));
        serde_json::to_vec(&options).map_err(ServiceError::internal)
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
pub(super) struct Shape {
    pub(super) streaming: bool,
    /// Prompts (a completion's list of prompts, an embedding's list of inputs), each at most
    /// the model's context.
    pub(super) prompts: u64,
    /// Answers per prompt (`n`; 0 for embeddings, which generate nothing).
    choices: u64,
    /// What `max_tokens` / `max_completion_tokens` let a server generate (see
    /// `RequestBody::max_output`); None: up to the context.
    max_output: Option<u64>,
}

impl Shape {
    /// The most tokens the call can use on a model of `context_length` tokens: (input,
    /// output), every prompt a full context and every answer as long as it may be. No model
    /// server that obeys the request reports more; one that does is metered at this.
    pub(super) fn most_tokens(&self, context_length: u64) -> (u64, u64) {
        let max_output = self
            .max_output
            .unwrap_or(context_length)
            .min(context_length);
        (
            self.prompts.saturating_mul(context_length),
            self.prompts
                .saturating_mul(self.choices)
                .saturating_mul(max_output),
        )
    }

    /// The most the call can charge on a model of `context_length` tokens at `(p_in, p_out)`
    /// micro-EUR per 1k: every prompt a full context, every answer as long as it may be (what
    /// it asks for, at most the context).
    pub(super) fn worst_case_micros(&self, context_length: u64, (p_in, p_out): (i64, i64)) -> i64 {
        let max_output = self
            .max_output
            .unwrap_or(context_length)
            .min(context_length);
        worst_case_micros(
            self.prompts,
            self.choices,
            context_length,
            max_output,
            p_in,
            p_out,
        )
        // Beyond any i64 amount: no cap can take it.
        .unwrap_or(i64::MAX)
    }
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::{Endpoint, RequestBody};
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
        assert_eq!((ok.prompts, ok.choices, ok.max_output), (1, 3, Some(50)));
        // Whichever field the upstream obeys, the reservation covers it; a 0 lets a server
        // fall through to the other field or to no limit.
        for (body, max_output) in [
            (
                r#"{"max_tokens":1,"max_completion_tokens":8000}"#,
                Some(8000),
            ),
            (
                r#"{"max_tokens":8000,"max_completion_tokens":1}"#,
                Some(8000),
            ),
            (r#"{"max_completion_tokens":0}"#, None),
            (r#"{"max_tokens":0,"max_completion_tokens":5}"#, None),
            (r#"{"max_tokens":7}"#, Some(7)),
        ] {
            assert_eq!(
                shape(body, Endpoint::ChatCompletions).unwrap().max_output,
                max_output,
                "{body}"
            );
        }
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
}

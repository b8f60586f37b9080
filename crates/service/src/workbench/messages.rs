//! A run's conversation: reading it, and continuing it through the proxy.
//!
//! Sending a message does not talk to a model itself: it builds an OpenAI chat request — the
//! run's stored messages and the new one, for the run's `model` — and hands it to
//! [`crate::proxy::forward`] with the caller's own context, exactly as `POST
//! /v1/chat/completions` does. So the same resolution, approvals, spend caps (admission and
//! reservation) and metering apply, and the call is billed to the caller's workspace. That
//! workspace is the run's own: the run was found in the session's scope and only its owner
//! continues it, so the principal is the run's owner acting in the run's workspace — and a
//! member who was removed from the org has a session that fell back to Personal, where the run
//! is not found (404). No second entry into the proxy is needed: the proxy takes a session
//! principal already (API keys cannot reach here: `workbench.use` is a write).
//!
//! The user message and the answer are stored together, in one transaction, once the answer
//! is complete: a call the model server refuses leaves the conversation as it was. A streamed
//! answer is passed on chunk by chunk while it is assembled; it is stored when the stream
//! ends, before the client's stream closes, and also if the client hangs up first (the
//! upstream is read to its end, as the proxy does for metering). A stream that breaks off
//! stores nothing (its usage is metered all the same).

use super::runs;
use super::{viewer, writer};
use crate::paging::{Page, PageRequest, page_of};
use crate::proxy::{self, Endpoint, ProxyBody};
use crate::{Ctx, Deps, ServiceError};
use bytes::Bytes;
use futures_util::stream::{BoxStream, StreamExt};
use inventiv_domain::{ErrorCode, MessageContent, UsageId, WorkbenchMessageId, WorkbenchRunId};
use inventiv_persistence::Db;
use inventiv_persistence::repo::workbench::{self as repo, MessageRecord};
use serde_json::{Value, json};
use time::OffsetDateTime;

/// The longest conversation sent again, in characters (stored messages and the new one). Past
/// it, the run is full (409 `conversation_too_long`): start a new run. It also bounds what a
/// request reads from the database.
pub const MAX_CONVERSATION_CHARS: i64 = 1_000_000;

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Author {
    User,
    Assistant,
}

impl Author {
    pub fn as_str(self) -> &'static str {
        match self {
            Author::User => "user",
            Author::Assistant => "assistant",
        }
    }
}

/// One message of a run.
#[derive(Debug, Clone)]
pub struct Message {
    pub id: WorkbenchMessageId,
    pub run_id: WorkbenchRunId,
    /// `user` or `assistant`.
    pub role: String,
    pub content: String,
    /// The proxied call that produced an answer: its usage row's `request_id`.
    pub usage_id: Option<UsageId>,
    pub created_at: OffsetDateTime,
}

impl From<MessageRecord> for Message {
    fn from(m: MessageRecord) -> Self {
        Message {
            id: m.id,
            run_id: m.run_id,
            role: m.role,
            content: m.content,
            usage_id: m.usage_id,
            created_at: m.created_at,
        }
    }
}

/// `POST /workbench/runs/{id}/messages` input.
#[derive(Debug, Clone, Default)]
pub struct NewMessage {
    pub content: String,
    pub stream: bool,
}

/// What sending a message gives back.
pub enum Sent {
    /// The answer came whole; both messages are stored.
    Whole(Box<Exchanged>),
    /// The answer streams as server-sent events (the upstream's chunks, as they come); both
    /// messages are stored when it ends, before this stream closes.
    Streaming {
        stream: BoxStream<'static, Result<Bytes, std::io::Error>>,
        usage_id: UsageId,
    },
}

/// A question and its answer, as stored.
pub struct Exchanged {
    pub user: Message,
    pub assistant: Message,
    pub usage_id: UsageId,
}

/// `GET /workbench/runs/{id}/messages`: oldest first, for whoever sees the run.
pub async fn list(
    deps: &Deps,
    ctx: &Ctx,
    run: WorkbenchRunId,
    page: &PageRequest,
) -> Result<Page<Message>, ServiceError> {
    let actor = viewer(ctx)?;
    let run = runs::visible(deps, &actor, run).await?;
    let (limit, after) = page.parse::<WorkbenchMessageId>()?;
    let rows = repo::list_messages(&deps.db, run.id, after, limit + 1).await?;
    let items = rows.into_iter().map(Message::from).collect();
    Ok(page_of(items, limit, |m: &Message| m.id))
}

/// `POST /workbench/runs/{id}/messages`: the run's owner continues its conversation through
/// the proxy (see the module's notes).
pub async fn send(
    deps: &Deps,
    ctx: &Ctx,
    run: WorkbenchRunId,
    input: NewMessage,
) -> Result<Sent, ServiceError> {
    let actor = writer(ctx)?;
    let run = runs::owned(deps, &actor, run).await?;
    let content = MessageContent::parse(&input.content)?.into_inner();
    let stored = repo::conversation_chars(&deps.db, run.id).await?;
    let adding = i64::try_from(content.chars().count()).unwrap_or(i64::MAX);
    if stored.saturating_add(adding) > MAX_CONVERSATION_CHARS {
        return Err(ServiceError::Conflict {
            code: ErrorCode::ConversationTooLong,
            message: format!(
                "This run's conversation would pass {MAX_CONVERSATION_CHARS} characters; start a new run."
            ),
        });
    }
    let history = repo::conversation(&deps.db, run.id).await?;
    let mut messages: Vec<Value> = history
        .iter()
        .map(|m| json!({"role": m.role, "content": m.content}))
        .collect();
    messages.push(json!({"role": "user", "content": content}));
    let body = json!({"model": run.model, "messages": messages, "stream": input.stream});
    let body = serde_json::to_vec(&body).map_err(ServiceError::internal)?;

    let answer = proxy::forward(deps, ctx, Endpoint::ChatCompletions, &body).await?;
    if answer.status >= 300 {
        return Err(ServiceError::BadGateway {
            code: ErrorCode::UpstreamError,
            message: format!(
                "The model server refused the conversation (HTTP {}).",
                answer.status
            ),
        });
    }
    let usage_id = answer.usage_id;
    let exchange = Exchange {
        db: deps.db.clone(),
        run: run.id,
        question: content,
        usage_id,
    };
    match answer.body {
        ProxyBody::Full(bytes) => {
            let text = answer_text(&bytes).ok_or_else(|| ServiceError::BadGateway {
                code: ErrorCode::UpstreamError,
                message: "The model server's answer holds no message.".to_owned(),
            })?;
            let (user, assistant) = exchange
                .store(text, deps.clock.now())
                .await?
                .ok_or_else(|| ServiceError::not_found("run"))?;
            Ok(Sent::Whole(Box::new(Exchanged {
                user,
                assistant,
                usage_id,
            })))
        }
        ProxyBody::Stream(upstream) => Ok(Sent::Streaming {
            stream: relay(upstream, exchange, deps.clock.clone()),
            usage_id,
        }),
    }
}

/// The text of a whole chat answer (its first choice), at most [`MAX_CONVERSATION_CHARS`].
fn answer_text(bytes: &[u8]) -> Option<String> {
    let answer: Value = serde_json::from_slice(bytes).ok()?;
    let text = answer["choices"][0]["message"]["content"].as_str()?;
    let mut assembled = Assembled::default();
    assembled.push(text);
    Some(assembled.text)
}

/// One question and its answer, to be stored together.
struct Exchange {
    db: Db,
    run: WorkbenchRunId,
    question: String,
    usage_id: UsageId,
}

impl Exchange {
    /// Stores the question and the answer in one transaction; None if the run was deleted
    /// meanwhile (nothing is stored then).
    async fn store(
        self,
        answer: String,
        now: OffsetDateTime,
    ) -> Result<Option<(Message, Message)>, ServiceError> {
        let user = MessageRecord {
            id: WorkbenchMessageId::new(),
            run_id: self.run,
            role: Author::User.as_str().to_owned(),
            content: self.question,
            usage_id: None,
            created_at: now,
        };
        let assistant = MessageRecord {
            id: WorkbenchMessageId::new(),
            run_id: self.run,
            role: Author::Assistant.as_str().to_owned(),
            content: answer,
            usage_id: Some(self.usage_id),
            created_at: now,
        };
        let tx = self.db.begin_write().await?;
        if !repo::append_message(&tx, &user).await?
            || !repo::append_message(&tx, &assistant).await?
        {
            return Ok(None);
        }
        tx.commit().await?;
        Ok(Some((user.into(), assistant.into())))
    }
}

/// Passes `upstream`'s chunks on while assembling the answer, and stores the exchange when
/// the upstream ends — before the returned stream closes, and even if its reader went away.
fn relay(
    mut upstream: BoxStream<'static, Result<Bytes, std::io::Error>>,
    exchange: Exchange,
    clock: std::sync::Arc<dyn crate::Clock>,
) -> BoxStream<'static, Result<Bytes, std::io::Error>> {
    let (client, chunks) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(16);
    tokio::spawn(async move {
        let mut client = Some(client);
        let mut scanner = AnswerScanner::default();
        let mut broke_off = false;
        while let Some(item) = upstream.next().await {
            let failed = item.is_err();
            if let Ok(chunk) = &item {
                scanner.feed(chunk);
            }
            if let Some(sender) = &client
                && sender.send(item).await.is_err()
            {
                // The client left: keep reading, to store the answer.
                client = None;
            }
            if failed {
                broke_off = true;
                break;
            }
        }
        if broke_off {
            tracing::warn!(run = %exchange.run, "a workbench stream broke off: the exchange is not stored");
        } else if let Err(err) = exchange.store(scanner.answer.text, clock.now()).await {
            tracing::error!(error = %err, "storing a streamed workbench answer failed");
        }
        drop(client);
    });
    futures_util::stream::unfold(chunks, |mut chunks| async move {
        chunks.recv().await.map(|item| (item, chunks))
    })
    .boxed()
}

/// An answer being assembled, cut at [`MAX_CONVERSATION_CHARS`] bytes (the run is full then
/// anyway).
#[derive(Default)]
struct Assembled {
    text: String,
}

impl Assembled {
    fn push(&mut self, piece: &str) {
        let room = usize::try_from(MAX_CONVERSATION_CHARS)
            .unwrap_or(usize::MAX)
            .saturating_sub(self.text.len());
        if piece.len() <= room {
            self.text.push_str(piece);
        } else {
            let mut cut = room;
            while !piece.is_char_boundary(cut) {
                cut -= 1;
            }
            self.text.push_str(&piece[..cut]);
        }
    }
}

/// Picks the answer's text out of an SSE stream (`data:` lines of chat chunks, the first
/// choice's `delta.content`), across chunk boundaries.
#[derive(Default)]
struct AnswerScanner {
    /// The start of a line whose end has not come yet.
    partial: Vec<u8>,
    answer: Assembled,
}

/// A line longer than this is not a chat chunk worth reading (bounds `partial`).
const MAX_LINE_BYTES: usize = 4 * 1024 * 1024;

impl AnswerScanner {
    fn feed(&mut self, chunk: &[u8]) {
        let mut rest = chunk;
        while let Some(end) = rest.iter().position(|b| *b == b'\n') {
            let (head, tail) = rest.split_at(end);
            if self.partial.is_empty() {
                self.line(head);
            } else {
                let mut line = std::mem::take(&mut self.partial);
                line.extend_from_slice(head);
                self.line(&line);
            }
            rest = &tail[1..];
        }
        if self.partial.len() + rest.len() <= MAX_LINE_BYTES {
            self.partial.extend_from_slice(rest);
        } else {
            self.partial.clear();
        }
    }

    fn line(&mut self, line: &[u8]) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(data) = line.strip_prefix(b"data:") else {
            return;
        };
        let data = data.trim_ascii();
        if data == b"[DONE]" {
            return;
        }
        if let Ok(chunk) = serde_json::from_slice::<Value>(data)
            && let Some(text) = chunk["choices"][0]["delta"]["content"].as_str()
        {
            self.answer.push(text);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_scanner_assembles_deltas_across_chunk_boundaries() {
        let mut scanner = AnswerScanner::default();
        let stream = "data: {\"choices\":[{\"delta\":{\"role\":\"assistant\"}}]}\n\n\
                      data: {\"choices\":[{\"delta\":{\"content\":\"Hel\"}}]}\r\n\r\n\
                      data: {\"choices\":[{\"delta\":{\"content\":\"lo é\"}}]}\n\n\
                      data: {\"choices\":[],\"usage\":{\"prompt_tokens\":1}}\n\n\
                      data: [DONE]\n\n";
        let bytes = stream.as_bytes();
        for split in [1, 7, 33, 64] {
            let mut s = AnswerScanner::default();
            for piece in bytes.chunks(split) {
                s.feed(piece);
            }
            assert_eq!(s.answer.text, "Hello é", "split {split}");
        }
        scanner.feed(bytes);
        assert_eq!(scanner.answer.text, "Hello é");
    }

    #[test]
    fn answers_are_cut_at_the_conversation_bound_on_a_char_boundary() {
        let mut assembled = Assembled::default();
        let bound = usize::try_from(MAX_CONVERSATION_CHARS).unwrap();
        assembled.push(&"a".repeat(bound - 1));
        assembled.push("éé");
        assert_eq!(assembled.text.len(), bound - 1);
        assembled.push("b");
        assert_eq!(assembled.text.len(), bound);
    }

    #[test]
    fn a_whole_answer_gives_its_first_choice() {
        let body = br#"{"choices":[{"message":{"role":"assistant","content":"Hi!"}}]}"#;
        assert_eq!(answer_text(body).as_deref(), Some("Hi!"));
        assert_eq!(answer_text(b"{}"), None);
        assert_eq!(answer_text(b"not json"), None);
    }
}

//! A streamed (SSE) answer relayed to the client: each chunk goes out as it arrives, scanned on
//! the way for the usage the upstream sends in its final chunk, without buffering the stream.
//!
//! The usage row is written when the stream ends, however it ends (the client got a 200 either
//! way), before the response's last byte leaves. If the client hangs up first, the relay is
//! dropped: the rest of the stream is then drained in the background, for its usage, within
//! the same silence bound (see `Drop for StreamRelay`). A stream that stays silent longer than
//! that bound is cut off, and metered from what came.

use super::client;
use super::metering::{Metered, Metering, Usage, answer_chars, usage_in};
use bytes::Bytes;
use futures_util::stream::{BoxStream, StreamExt};
use std::time::Duration;

/// The chunks of `body` as they arrive, each at most `silence` after the previous one; the
/// call is metered by `meter` when the stream ends or is dropped.
pub(super) fn stream(
    body: client::Incoming,
    silence: Duration,
    meter: Metering,
) -> BoxStream<'static, Result<Bytes, std::io::Error>> {
    let relay = StreamRelay(Some(Relaying {
        body,
        silence,
        scanner: SseScanner::default(),
        meter,
    }));
    futures_util::stream::unfold(relay, StreamRelay::next).boxed()
}

/// A streamed answer being passed on (see the module's notes); empty once its metering is
/// done.
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
    use super::{Metered, SseScanner};

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

//! A streamed (SSE) answer relayed to the client: each chunk goes out as it arrives, scanned on
//! the way for the usage the upstream sends in its final chunk, without buffering the stream.
//!
//! The usage row is written when the stream ends, however it ends (the client got a 200 either
//! way), before the response's last byte leaves. If the client hangs up first, the relay is
//! dropped: the rest of the stream is then drained in the background, for its usage, within
//! the same silence bound (see `Drop for StreamRelay` and [`Drains`]). A stream that stays
//! silent longer than that bound is cut off, and metered from what came.
//!
//! A graceful shutdown drops the streams still running when its grace period ends: they are
//! drained like hung-up ones, on the runtime the proxy was built on (the HTTP workers' own
//! runtimes are going away), and when the proxy shuts down, every drain stops reading and
//! meters what its stream relayed so far, before the final flush.

use super::client;
use super::metering::{Metered, Metering, Usage, answer_chars, usage_in};
use bytes::Bytes;
use futures_util::stream::{BoxStream, StreamExt};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinHandle;

/// The chunks of `body` as they arrive, each at most `silence` after the previous one; the
/// call is metered by `meter` when the stream ends or is dropped (then by one of `drains`).
pub(super) fn stream(
    body: client::Incoming,
    silence: Duration,
    meter: Metering,
    drains: Drains,
) -> BoxStream<'static, Result<Bytes, std::io::Error>> {
    let relay = StreamRelay(
        Some(Relaying {
            body,
            silence,
            scanner: SseScanner::default(),
            meter,
        }),
        drains,
    );
    futures_util::stream::unfold(relay, StreamRelay::next).boxed()
}

/// The streams whose clients are gone (hung up, or cut off by a shutdown), read to their end
/// for their usage. Cheap to clone; all clones are one set.
#[derive(Clone)]
pub(super) struct Drains(Arc<DrainSet>);

impl std::fmt::Debug for Drains {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Drains")
    }
}

struct DrainSet {
    /// The runtime the proxy was built on: it outlives the HTTP workers' runtimes, which a
    /// shutdown stops with the streams they were relaying.
    runtime: tokio::runtime::Handle,
    /// Set when the proxy shuts down: drains stop reading and meter what they have.
    stop: tokio::sync::watch::Sender<bool>,
    running: Mutex<Vec<JoinHandle<()>>>,
}

impl Drains {
    /// Drains on the current runtime.
    pub(super) fn new() -> Drains {
        Drains(Arc::new(DrainSet {
            runtime: tokio::runtime::Handle::current(),
            stop: tokio::sync::watch::Sender::new(false),
            running: Mutex::new(Vec::new()),
        }))
    }

    /// Reads the rest of `relaying`'s stream (until the proxy shuts down), then meters it.
    fn drain(&self, mut relaying: Relaying) {
        let mut stop = self.0.stop.subscribe();
        let task = self.0.runtime.spawn(async move {
            loop {
                tokio::select! {
                    chunk = relaying.next_chunk() => if !matches!(chunk, Ok(Some(_))) { break },
                    _ = stop.wait_for(|stop| *stop) => break,
                }
            }
            relaying.finish().await;
        });
        if let Ok(mut running) = self.0.running.lock() {
            running.retain(|task| !task.is_finished());
            running.push(task);
        }
    }

    /// Shutdown, once the HTTP server has stopped (every stream it relayed has ended or been
    /// dropped): every drain meters what its stream relayed so far; returns when all have.
    pub(super) async fn stop(&self) {
        self.0.stop.send_replace(true);
        let running = self
            .0
            .running
            .lock()
            .map(|mut running| std::mem::take(&mut *running))
            .unwrap_or_default();
        for task in running {
            if let Err(err) = task.await {
                tracing::error!(error = %err, "draining a stream failed");
            }
        }
    }
}

/// A streamed answer being passed on (see the module's notes); empty once its metering is
/// done.
struct StreamRelay(Option<Relaying>, Drains);

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
    /// The client hung up mid-stream, or a shutdown cut the stream off: the call is still
    /// metered, from the rest of the stream (or from what came, if the proxy shuts down).
    fn drop(&mut self) {
        if let Some(relaying) = self.0.take() {
            self.1.drain(relaying);
        }
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

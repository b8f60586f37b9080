//! A minimal SMTP server on 127.0.0.1:0 that accepts every message and keeps it, so tests can
//! assert on the real emails lettre sends (EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT).

use base64::Engine;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::Notify;

/// One received message.
#[derive(Debug, Clone)]
pub struct ReceivedMail {
    pub from: String,
    pub to: Vec<String>,
    /// The raw message (headers and body) as received, dot-unstuffed.
    pub raw: String,
}

impl ReceivedMail {
    /// A header's value (first occurrence, case-insensitive name).
    pub fn header(&self, name: &str) -> Option<String> {
        let (head, _) = self.raw.split_once("\r\n\r\n")?;
        let prefix = format!("{}:", name.to_ascii_lowercase());
        head.split("\r\n")
            .find(|l| l.to_ascii_lowercase().starts_with(&prefix))
            .map(|l| l[prefix.len()..].trim().to_owned())
    }

    /// The body with its transfer encoding (quoted-printable or base64) undone.
    pub fn body_text(&self) -> String {
        let body = self.raw.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        match self
            .header("Content-Transfer-Encoding")
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("base64") => {
                let joined: String = body.split_whitespace().collect();
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(joined)
                    .unwrap_or_default();
                String::from_utf8_lossy(&bytes).into_owned()
            }
            Some("quoted-printable") => decode_quoted_printable(body),
            _ => body.to_owned(),
        }
    }
}

fn decode_quoted_printable(body: &str) -> String {
    let joined = body.replace("=\r\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'='
            && let Some(Ok(b)) = joined.get(i + 1..i + 3).map(|h| u8::from_str_radix(h, 16))
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[derive(Clone)]
pub struct SmtpSink {
    port: u16,
    messages: Arc<Mutex<Vec<ReceivedMail>>>,
    arrived: Arc<Notify>,
}

impl SmtpSink {
    pub async fn start() -> SmtpSink {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind SMTP sink");
        let port = listener.local_addr().expect("addr").port();
        let sink = SmtpSink {
            port,
            messages: Arc::default(),
            arrived: Arc::default(),
        };
        let accept = sink.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let conn = accept.clone();
                tokio::spawn(async move {
                    let _ = conn.session(stream).await;
                });
            }
        });
        sink
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Every message received so far.
    pub fn messages(&self) -> Vec<ReceivedMail> {
        self.messages.lock().map(|m| m.clone()).unwrap_or_default()
    }

    /// Waits (up to 10 s) for a message to `to`, and returns the latest one.
    pub async fn wait_for(&self, to: &str) -> ReceivedMail {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let notified = self.arrived.notified();
            if let Some(m) = self
                .messages()
                .into_iter()
                .rev()
                .find(|m| m.to.iter().any(|t| t == to))
            {
                return m;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!(
                    "no email to {to} within 10 s; received: {:?}",
                    self.messages()
                );
            }
        }
    }

    /// Waits (up to 10 s) until `n` messages to `to` have arrived and returns the n-th (1-based).
    pub async fn wait_for_nth(&self, to: &str, n: usize) -> ReceivedMail {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let notified = self.arrived.notified();
            let mut to_them = self
                .messages()
                .into_iter()
                .filter(|m| m.to.iter().any(|t| t == to));
            if let Some(m) = to_them.nth(n - 1) {
                return m;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!(
                    "fewer than {n} emails to {to} within 10 s; received: {:?}",
                    self.messages()
                );
            }
        }
    }

    async fn session(&self, stream: tokio::net::TcpStream) -> std::io::Result<()> {
        let (read, mut write) = stream.into_split();
        let mut lines = BufReader::new(read);
        write.write_all(b"220 sink.test ESMTP\r\n").await?;
        let (mut from, mut to) = (String::new(), Vec::new());
        let mut line = String::new();
        loop {
            line.clear();
            if lines.read_line(&mut line).await? == 0 {
                return Ok(());
            }
            let upper = line.trim_end().to_ascii_uppercase();
            let reply: &[u8] = if upper.starts_with("EHLO") {
                b"250-sink.test\r\n250 8BITMIME\r\n"
            } else if upper.starts_with("HELO") || upper.starts_with("NOOP") {
                b"250 OK\r\n"
            } else if upper.starts_with("RSET") {
                from.clear();
                to.clear();
                b"250 OK\r\n"
            } else if upper.starts_with("MAIL FROM:") {
                from = address(&line);
                b"250 OK\r\n"
            } else if upper.starts_with("RCPT TO:") {
                to.push(address(&line));
                b"250 OK\r\n"
            } else if upper == "DATA" {
                write.write_all(b"354 end with <CRLF>.<CRLF>\r\n").await?;
                let mut raw = String::new();
                loop {
                    line.clear();
                    if lines.read_line(&mut line).await? == 0 {
                        return Ok(());
                    }
                    if line == ".\r\n" || line == ".\n" {
                        break;
                    }
                    raw.push_str(
                        line.strip_prefix('.')
                            .filter(|_| line.starts_with(".."))
                            .unwrap_or(&line),
                    );
                }
                if let Ok(mut m) = self.messages.lock() {
                    m.push(ReceivedMail {
                        from: from.clone(),
                        to: std::mem::take(&mut to),
                        raw,
                    });
                }
                self.arrived.notify_waiters();
                b"250 queued\r\n"
            } else if upper.starts_with("QUIT") {
                write.write_all(b"221 bye\r\n").await?;
                return Ok(());
            } else {
                b"502 not implemented\r\n"
            };
            write.write_all(reply).await?;
        }
    }
}

fn address(line: &str) -> String {
    let start = line.find('<').map_or(0, |i| i + 1);
    let end = line.rfind('>').unwrap_or(line.len());
    line.get(start..end)
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

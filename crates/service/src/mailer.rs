//! Outgoing email: lettre over SMTP when `[smtp]` is configured, otherwise `.eml` files in the
//! outbox directory (`data/outbox/`). Message bodies may hold one-time links: they are never
//! logged.

use inventiv_domain::Email;
use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::{Body, Mailbox};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::path::PathBuf;

/// Transport security for SMTP (`smtp.tls`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    None,
    StartTls,
    Tls,
}

/// `[smtp]` settings.
#[derive(Clone)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    pub username: Option<String>,
    pub password: Option<String>,
}

/// One message to send.
#[derive(Debug, Clone)]
pub struct OutgoingEmail {
    pub to: Email,
    pub subject: String,
    pub text: String,
}

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("invalid address: {0}")]
    Address(String),
    #[error("building the message: {0}")]
    Build(String),
    #[error("SMTP: {0}")]
    Smtp(String),
    #[error("outbox: {0}")]
    Outbox(String),
}

/// Sends email. Cheap to clone (the SMTP transport is a pool).
#[derive(Clone)]
pub enum Mailer {
    Smtp {
        transport: AsyncSmtpTransport<Tokio1Executor>,
        from: Mailbox,
    },
    Outbox {
        dir: PathBuf,
        from: Mailbox,
    },
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Mailer::Smtp { from, .. } => write!(f, "Mailer::Smtp(from {from})"),
            Mailer::Outbox { dir, .. } => write!(f, "Mailer::Outbox({})", dir.display()),
        }
    }
}

impl Mailer {
    /// An SMTP mailer (the connection is opened lazily, on the first message).
    pub fn smtp(settings: &SmtpSettings, from: &str) -> Result<Mailer, MailError> {
        let from: Mailbox = from
            .parse()
            .map_err(|e| MailError::Address(format!("{from}: {e}")))?;
        let builder = match settings.tls {
            SmtpTls::None => {
                AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&settings.host)
            }
            SmtpTls::StartTls => {
                AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&settings.host)
                    .map_err(|e| MailError::Smtp(e.to_string()))?
            }
            SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&settings.host)
                .map_err(|e| MailError::Smtp(e.to_string()))?,
        };
        let mut builder = builder.port(settings.port);
        if let (Some(user), Some(pass)) = (&settings.username, &settings.password) {
            builder = builder.credentials(Credentials::new(user.clone(), pass.clone()));
        }
        Ok(Mailer::Smtp {
            transport: builder.build(),
            from,
        })
    }

    /// A mailer that writes each message to `dir/<timestamp>-<id>.eml`.
    pub fn outbox(dir: PathBuf, from: &str) -> Result<Mailer, MailError> {
        let from: Mailbox = from
            .parse()
            .map_err(|e| MailError::Address(format!("{from}: {e}")))?;
        Ok(Mailer::Outbox { dir, from })
    }

    /// Sends one message.
    pub async fn send(&self, email: OutgoingEmail) -> Result<(), MailError> {
        let (from, to) = match self {
            Mailer::Smtp { from, .. } | Mailer::Outbox { from, .. } => {
                (from.clone(), email.to.as_str())
            }
        };
        let to: Mailbox = to.parse().map_err(|e| MailError::Address(format!("{e}")))?;
        let body = match self {
            // Over SMTP, lettre picks the encoding any server accepts (quoted-printable or
            // base64 when a line is long or not ASCII); mail clients decode it.
            Mailer::Smtp { .. } => Body::new(email.text),
            // The outbox is read by a developer in a text editor: its bodies are written as
            // they are (UTF-8, 8bit), so a link on its own line can be copied whole — quoted-
            // printable would fold it with `=` and base64 would hide it.
            Mailer::Outbox { .. } => as_written(email.text),
        };
        let message = Message::builder()
            .from(from)
            .to(to)
            .subject(email.subject)
            .header(ContentType::TEXT_PLAIN)
            .body(body)
            .map_err(|e| MailError::Build(e.to_string()))?;
        match self {
            Mailer::Smtp { transport, .. } => {
                transport
                    .send(message)
                    .await
                    .map_err(|e| MailError::Smtp(e.to_string()))?;
            }
            Mailer::Outbox { dir, .. } => {
                tokio::fs::create_dir_all(dir)
                    .await
                    .map_err(|e| MailError::Outbox(e.to_string()))?;
                let name = format!("{}.eml", uuid::Uuid::now_v7());
                tokio::fs::write(dir.join(name), message.formatted())
                    .await
                    .map_err(|e| MailError::Outbox(e.to_string()))?;
            }
        }
        Ok(())
    }
}

/// `text` as an 8bit body: CRLF line ends, bytes as they are. lettre refuses 8bit past 76
/// characters a line (its own folding limit); the message format allows 998, which a link
/// never nears — past it, lettre's own choice is kept.
fn as_written(text: String) -> Body {
    let crlf = text.replace("\r\n", "\n").replace('\n', "\r\n");
    if crlf
        .split("\r\n")
        .all(|line| line.len() <= 998 && !line.contains('\r'))
    {
        Body::dangerous_pre_encoded(crlf.into_bytes(), ContentTransferEncoding::EightBit)
    } else {
        Body::new(text)
    }
}

/// Sends `email` on a background task (off the request path). A failure is logged without
/// the message body, which may hold a one-time link.
pub fn send_in_background(mailer: Mailer, email: OutgoingEmail) {
    tokio::spawn(async move {
        let subject = email.subject.clone();
        if let Err(err) = mailer.send(email).await {
            tracing::error!(error = %err, %subject, "sending email failed");
        }
    });
}

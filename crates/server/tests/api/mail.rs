//! Email goes out through lettre over real SMTP (to the test sink), or to the outbox.

use crate::helpers::SmtpSink;
use inventiv_domain::Email;
use inventiv_service::mailer::{Mailer, OutgoingEmail, SmtpSettings, SmtpTls};

#[tokio::test]
async fn mailer_speaks_smtp_to_the_sink() {
    let sink = SmtpSink::start().await;
    let mailer = Mailer::smtp(
        &SmtpSettings {
            host: "127.0.0.1".into(),
            port: sink.port(),
            tls: SmtpTls::None,
            username: None,
            password: None,
        },
        "Inventiv <no-reply@inventiv.local>",
    )
    .unwrap();
    let link = format!(
        "http://127.0.0.1:8080/reset-password?token={}",
        "x".repeat(120)
    );
    mailer
        .send(OutgoingEmail {
            to: Email::parse("Someone@Example.com").unwrap(),
            subject: "Hello from the sink test".into(),
            text: format!("Follow {link}\n.\nA line that starts with a dot above."),
        })
        .await
        .unwrap();
    let mail = sink.wait_for("someone@example.com").await;
    assert_eq!(mail.from, "no-reply@inventiv.local");
    assert_eq!(
        mail.header("Subject").as_deref(),
        Some("Hello from the sink test")
    );
    let body = mail.body_text();
    assert!(body.contains(&link), "{body}");
}

#[tokio::test]
async fn without_smtp_settings_mail_goes_to_the_outbox() {
    let dir = std::env::temp_dir().join(format!("inventiv-outbox-{}", uuid::Uuid::new_v4()));
    let mailer = Mailer::outbox(dir.clone(), "no-reply@inventiv.local").unwrap();
    mailer
        .send(OutgoingEmail {
            to: Email::parse("a@b.io").unwrap(),
            subject: "s".into(),
            text: "body".into(),
        })
        .await
        .unwrap();
    let files: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
    assert_eq!(files.len(), 1);
    let path = files[0].as_ref().unwrap().path();
    assert_eq!(path.extension().unwrap(), "eml");
    assert!(
        std::fs::read_to_string(&path)
            .unwrap()
            .contains("To: a@b.io")
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn an_outbox_link_can_be_copied_whole_from_the_eml_file() {
    let dir = std::env::temp_dir().join(format!("inventiv-outbox-{}", uuid::Uuid::new_v4()));
    let mailer = Mailer::outbox(dir.clone(), "no-reply@inventiv.local").unwrap();
    // Longer than a quoted-printable line (76), in a body that is not ASCII: the two things
    // that made lettre fold or base64-encode the link.
    let link = format!(
        "http://127.0.0.1:8080/invitations/{}{}",
        "a".repeat(43),
        "_-Z9".repeat(5)
    );
    mailer
        .send(OutgoingEmail {
            to: Email::parse("a@b.io").unwrap(),
            subject: "Invitation à Café Crème".into(),
            text: format!("Rejoignez « Café Crème » :\n{link}\n\nÀ bientôt.\n"),
        })
        .await
        .unwrap();
    let path = std::fs::read_dir(&dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let eml = std::fs::read_to_string(&path).unwrap();
    assert!(
        eml.lines().any(|line| line.trim_end() == link),
        "the link is not on a line of its own:\n{eml}"
    );
    assert!(eml.contains("Café Crème"), "{eml}");
    std::fs::remove_dir_all(dir).unwrap();
}

//! Parsed value types ("parse, don't validate"). Each type has private fields and is built only by
//! its `parse`, so a value of the type is proof that the input met the rule. A rejected input
//! yields a [`ValueError`] naming the request field, which the HTTP layer turns into a 400.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why an input was rejected. `field` is the request field name (stable, snake_case); `reason`
/// is a human-readable sentence that never echoes secrets.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct ValueError {
    /// The request field that was rejected, e.g. `"email"`.
    pub field: &'static str,
    /// What was wrong with it.
    pub reason: String,
}

impl ValueError {
    pub(crate) fn new(field: &'static str, reason: impl Into<String>) -> Self {
        Self {
            field,
            reason: reason.into(),
        }
    }
}

fn char_len(s: &str) -> usize {
    s.chars().count()
}

fn check_len(
    field: &'static str,
    s: &str,
    range: std::ops::RangeInclusive<usize>,
) -> Result<(), ValueError> {
    if range.contains(&char_len(s)) {
        Ok(())
    } else {
        Err(ValueError::new(
            field,
            format!(
                "must be {} to {} characters long",
                range.start(),
                range.end()
            ),
        ))
    }
}

/// Trims `input` after checking its *raw* length against `range.end()`, then checks the trimmed
/// length against `range.start()`.
///
/// Why the raw length: the API documents `maxLength` on what the client sends, so a 101-character
/// value must be refused even when trimming would bring it to 100 (a client validating against
/// the OpenAPI document and the server must agree on what is too long).
fn trimmed<'a>(
    field: &'static str,
    input: &'a str,
    range: std::ops::RangeInclusive<usize>,
) -> Result<&'a str, ValueError> {
    let too_long = char_len(input) > *range.end();
    let name = input.trim();
    if too_long || char_len(name) < *range.start() {
        return Err(ValueError::new(
            field,
            format!(
                "must be {} to {} characters long",
                range.start(),
                range.end()
            ),
        ));
    }
    reject_control_chars(field, name)?;
    Ok(name)
}

fn reject_control_chars(field: &'static str, s: &str) -> Result<(), ValueError> {
    if s.chars().any(char::is_control) {
        Err(ValueError::new(
            field,
            "must not contain control characters",
        ))
    } else {
        Ok(())
    }
}

/// `as_str`, `into_inner`, `AsRef<str>`, `Display` and string `Serialize` for a string newtype.
macro_rules! string_value {
    ($name:ident) => {
        impl $name {
            /// The validated value.
            #[must_use]
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The validated value, by value.
            #[must_use]
            pub fn into_inner(self) -> String {
                self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }
    };
}

/// `Deserialize` that runs `parse`, so an invalid value can't sneak in through JSON.
macro_rules! deserialize_via_parse {
    ($name:ident) => {
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(deserializer)?;
                $name::parse(&raw).map_err(serde::de::Error::custom)
            }
        }
    };
}

// ---------------------------------------------------------------------------------------------

/// An email address, normalized: trimmed and lowercased.
///
/// Invariant: 3..=254 chars (as sent and as kept); exactly one `@`; local part 1..=64 chars without whitespace or
/// control characters; domain contains a dot, has no empty label, and every label is `[a-z0-9-]`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Email(String);

impl Email {
    /// Parses and normalizes an email address. Field name: `email`.
    pub fn parse(input: &str) -> Result<Self, ValueError> {
        const FIELD: &str = "email";
        let email = trimmed(FIELD, input, 3..=254)?.to_lowercase();
        check_len(FIELD, &email, 3..=254)?;
        let Some((local, domain)) = email.split_once('@') else {
            return Err(ValueError::new(FIELD, "must contain an @"));
        };
        if domain.contains('@') {
            return Err(ValueError::new(FIELD, "must contain exactly one @"));
        }
        if !(1..=64).contains(&char_len(local)) {
            return Err(ValueError::new(
                FIELD,
                "the part before @ must be 1 to 64 characters long",
            ));
        }
        if local.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(ValueError::new(
                FIELD,
                "must not contain whitespace or control characters",
            ));
        }
        if !domain.contains('.') {
            return Err(ValueError::new(FIELD, "the domain must contain a dot"));
        }
        for label in domain.split('.') {
            if label.is_empty() {
                return Err(ValueError::new(FIELD, "the domain has an empty label"));
            }
            if !label
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            {
                return Err(ValueError::new(
                    FIELD,
                    "the domain may only contain letters, digits, '-' and '.'",
                ));
            }
        }
        Ok(Self(email))
    }
}

string_value!(Email);
deserialize_via_parse!(Email);

// ---------------------------------------------------------------------------------------------

/// An organization slug, used in URLs and as the `<org_slug>/` prefix of proxied model names.
///
/// Invariant: 2..=64 chars of `[a-z0-9-]`, does not start or end with `-`, contains no `--`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Slug(String);

impl Slug {
    /// Maximum length in characters.
    pub const MAX_LEN: usize = 64;

    /// Parses a slug exactly as given (no trimming, no lowercasing). Field name: `slug`.
    pub fn parse(input: &str) -> Result<Self, ValueError> {
        const FIELD: &str = "slug";
        check_len(FIELD, input, 2..=Self::MAX_LEN)?;
        if !input
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            return Err(ValueError::new(
                FIELD,
                "may only contain lowercase letters a-z, digits and '-'",
            ));
        }
        if input.starts_with('-') || input.ends_with('-') {
            return Err(ValueError::new(FIELD, "must not start or end with '-'"));
        }
        if input.contains("--") {
            return Err(ValueError::new(FIELD, "must not contain '--'"));
        }
        Ok(Self(input.to_owned()))
    }

    /// Derives a slug from a display name: lowercase, every run of characters other than ASCII
    /// letters and digits becomes one `-`, leading/trailing `-` trimmed, truncated to 64 chars.
    /// `None` when nothing valid is left (e.g. a one-letter or all-symbol name).
    #[must_use]
    pub fn from_name(name: &str) -> Option<Slug> {
        let mut slug = String::new();
        let mut separator_pending = false;
        for c in name.chars().flat_map(char::to_lowercase) {
            if c.is_ascii_alphanumeric() {
                if separator_pending && !slug.is_empty() {
                    slug.push('-');
                }
                separator_pending = false;
                slug.push(c);
            } else {
                separator_pending = true;
            }
        }
        // Only ASCII was pushed, so byte truncation is char truncation.
        slug.truncate(Self::MAX_LEN);
        while slug.ends_with('-') {
            slug.pop();
        }
        Slug::parse(&slug).ok()
    }
}

string_value!(Slug);
deserialize_via_parse!(Slug);

// ---------------------------------------------------------------------------------------------

/// An organization's display name.
///
/// Invariant: trimmed, 1..=100 chars, no control characters; at most 100 chars as sent.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct OrgName(String);

impl OrgName {
    /// Trims and checks an organization name. Field name: `name`.
    pub fn parse(input: &str) -> Result<Self, ValueError> {
        Ok(Self(trimmed("name", input, 1..=100)?.to_owned()))
    }
}

string_value!(OrgName);
deserialize_via_parse!(OrgName);

// ---------------------------------------------------------------------------------------------

/// An optional login name, stored lowercase.
///
/// Invariant: 3..=64 chars of `[a-z0-9_.-]` (input may be mixed case; surrounding whitespace is
/// trimmed); never contains `@`, so a login identifier is unambiguously an email or a username.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Username(String);

impl Username {
    /// Parses and lowercases a username. Field name: `username`.
    pub fn parse(input: &str) -> Result<Self, ValueError> {
        const FIELD: &str = "username";
        if input.contains('@') {
            return Err(ValueError::new(FIELD, "must not contain '@'"));
        }
        let name = trimmed(FIELD, input, 3..=64)?;
        if !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        {
            return Err(ValueError::new(
                FIELD,
                "may only contain letters, digits, '_', '.' and '-'",
            ));
        }
        Ok(Self(name.to_ascii_lowercase()))
    }
}

string_value!(Username);
deserialize_via_parse!(Username);

// ---------------------------------------------------------------------------------------------

/// A first or last name.
///
/// Invariant: trimmed, 0..=100 chars (empty allowed), no control characters; at most 100 chars
/// as sent.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PersonName(String);

impl PersonName {
    /// Trims and checks a name; `field` is the request field (`first_name` / `last_name`).
    pub fn parse(field: &'static str, input: &str) -> Result<Self, ValueError> {
        Ok(Self(trimmed(field, input, 0..=100)?.to_owned()))
    }
}

string_value!(PersonName);

// ---------------------------------------------------------------------------------------------

/// The display name of a resource someone named: an API key, a catalogue model, an offering.
///
/// Invariant: trimmed, 1..=100 chars, no control characters; the input as sent is at most 100
/// chars too (see [`trimmed`]).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DisplayName(String);

impl DisplayName {
    /// Maximum length in characters, before and after trimming.
    pub const MAX_CHARS: usize = 100;

    /// Trims and checks a display name; `field` is the request field it came from.
    pub fn parse(field: &'static str, input: &str) -> Result<Self, ValueError> {
        Ok(Self(trimmed(field, input, 1..=Self::MAX_CHARS)?.to_owned()))
    }
}

string_value!(DisplayName);

/// An optional free-text attribute (an instance's zone or type): surrounding whitespace is
/// trimmed and a blank value counts as absent; at most `max` chars as sent; no control
/// characters.
pub fn optional_text(
    field: &'static str,
    input: Option<&str>,
    max: usize,
) -> Result<Option<String>, ValueError> {
    match input {
        Some(text) if !text.trim().is_empty() => {
            Ok(Some(trimmed(field, text, 1..=max)?.to_owned()))
        }
        _ => Ok(None),
    }
}

// ---------------------------------------------------------------------------------------------

/// A plaintext password on its way to the hasher.
///
/// Invariant: 8..=1024 characters (Unicode scalar values), exactly as typed: never trimmed or
/// normalized. `Debug` prints `Password(***)`; there is deliberately no `Display` and no
/// `Serialize`, so it cannot end up in a log line or a response body.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    /// Minimum length in characters.
    pub const MIN_CHARS: usize = 8;
    /// Maximum length in characters.
    pub const MAX_CHARS: usize = 1024;

    /// Checks the length policy. Field name: `password`. The reason never contains the input.
    pub fn parse(input: &str) -> Result<Self, ValueError> {
        check_len("password", input, Self::MIN_CHARS..=Self::MAX_CHARS)?;
        Ok(Self(input.to_owned()))
    }

    /// The password as typed, for the hasher only.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The password as typed, by value, for the hasher only.
    #[must_use]
    pub fn into_inner(self) -> String {
        self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

// ---------------------------------------------------------------------------------------------

/// A page size for list endpoints.
///
/// Invariant: 1..=200; absent means 50.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PageLimit(u64);

impl PageLimit {
    /// Used when the client sends no `limit`.
    pub const DEFAULT: u64 = 50;
    /// The largest page a client may ask for.
    pub const MAX: u64 = 200;

    /// Checks an optional `limit` query parameter. Field name: `limit`.
    pub fn parse(input: Option<i64>) -> Result<PageLimit, ValueError> {
        match input {
            None => Ok(Self(Self::DEFAULT)),
            Some(n) => match u64::try_from(n) {
                Ok(n) if (1..=Self::MAX).contains(&n) => Ok(Self(n)),
                Ok(_) | Err(_) => Err(ValueError::new(
                    "limit",
                    format!("must be between 1 and {}", Self::MAX),
                )),
            },
        }
    }

    /// The page size.
    #[must_use]
    pub const fn get(&self) -> u64 {
        self.0
    }
}

impl Default for PageLimit {
    fn default() -> Self {
        Self(Self::DEFAULT)
    }
}

/// How long an invitation stays valid.
///
/// Invariant: 1..=30 days; absent means 7.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ExpiresInDays(i64);

impl ExpiresInDays {
    /// Used when the client sends no `expires_in_days`.
    pub const DEFAULT: i64 = 7;
    /// The longest validity a client may ask for.
    pub const MAX: i64 = 30;

    /// Checks an optional `expires_in_days`. Field name: `expires_in_days`.
    pub fn parse(input: Option<i64>) -> Result<ExpiresInDays, ValueError> {
        match input {
            None => Ok(Self(Self::DEFAULT)),
            Some(n) if (1..=Self::MAX).contains(&n) => Ok(Self(n)),
            Some(_) => Err(ValueError::new(
                "expires_in_days",
                format!("must be between 1 and {}", Self::MAX),
            )),
        }
    }

    /// The number of days.
    #[must_use]
    pub const fn get(&self) -> i64 {
        self.0
    }

    /// The validity as a duration, to add to `now`.
    #[must_use]
    pub fn duration(&self) -> time::Duration {
        time::Duration::days(self.0)
    }
}

impl Default for ExpiresInDays {
    fn default() -> Self {
        Self(Self::DEFAULT)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn field_of<T: fmt::Debug>(r: Result<T, ValueError>) -> &'static str {
        r.unwrap_err().field
    }

    // --- Email ---------------------------------------------------------------------------------

    #[test]
    fn email_is_trimmed_and_lowercased() {
        let email = Email::parse("  Alice.Smith@Example.COM \n").unwrap();
        assert_eq!(email.as_str(), "alice.smith@example.com");
        assert_eq!(email.to_string(), "alice.smith@example.com");
    }

    #[test]
    fn email_accepts_ordinary_addresses() {
        for ok in [
            "a@b.c",
            "first.last+tag@sub.example.org",
            "x_y@my-domain.io",
            "1@2.3",
        ] {
            assert!(Email::parse(ok).is_ok(), "{ok} should be accepted");
        }
    }

    #[test]
    fn email_rejects_malformed_addresses() {
        for bad in [
            "",
            "   ",
            "ab",
            "no-at-sign.example.com",
            "two@@example.com",
            "a@b@example.com",
            "@example.com",
            "alice@",
            "alice@localhost",
            "alice@example..com",
            "alice@.example.com",
            "alice@example.com.",
            "al ice@example.com",
            "al\u{7}ice@example.com",
            "alice@exa mple.com",
            "alice@exa_mple.com",
            "alice@exämple.com",
        ] {
            assert_eq!(
                field_of(Email::parse(bad)),
                "email",
                "{bad:?} should be rejected"
            );
        }
    }

    #[test]
    fn email_length_limits() {
        let local64 = "a".repeat(64);
        assert!(Email::parse(&format!("{local64}@example.com")).is_ok());
        let local65 = "a".repeat(65);
        assert!(Email::parse(&format!("{local65}@example.com")).is_err());

        // 254 total: 64 + 1 + 189 (a domain made of 63-char labels).
        let domain = format!("{}.{}.{}", "b".repeat(63), "c".repeat(63), "d".repeat(61));
        let at_limit = format!("{local64}@{domain}");
        assert_eq!(at_limit.len(), 254);
        assert!(Email::parse(&at_limit).is_ok());
        let over = format!("{local64}@{domain}e");
        assert!(Email::parse(&over).is_err());
    }

    #[test]
    fn email_serde_round_trip_validates() {
        let email = Email::parse("bob@example.com").unwrap();
        assert_eq!(
            serde_json::to_string(&email).unwrap(),
            "\"bob@example.com\""
        );
        let back: Email = serde_json::from_str("\"BOB@example.com\"").unwrap();
        assert_eq!(back, email);
        assert!(serde_json::from_str::<Email>("\"nope\"").is_err());
    }

    // --- Slug ----------------------------------------------------------------------------------

    #[test]
    fn slug_accepts_valid_slugs() {
        for ok in ["ab", "acme", "acme-corp", "a1-b2-c3", "42", &"x".repeat(64)] {
            assert!(Slug::parse(ok).is_ok(), "{ok} should be accepted");
        }
    }

    #[test]
    fn slug_rejects_invalid_slugs() {
        for bad in [
            "",
            "a",
            &"x".repeat(65),
            "Acme",
            "acme corp",
            "acme_corp",
            "-acme",
            "acme-",
            "ac--me",
            "café",
            " acme",
        ] {
            assert_eq!(
                field_of(Slug::parse(bad)),
                "slug",
                "{bad:?} should be rejected"
            );
        }
    }

    #[test]
    fn slug_from_name() {
        let cases: &[(&str, Option<&str>)] = &[
            ("Acme Corp", Some("acme-corp")),
            ("  Acme   & Co. ", Some("acme-co")),
            ("--Hello__World--", Some("hello-world")),
            ("Café Bar", Some("caf-bar")),
            ("R2D2", Some("r2d2")),
            ("A", None),
            ("!!!", None),
            ("", None),
        ];
        for (name, expected) in cases {
            let got = Slug::from_name(name);
            assert_eq!(
                got.as_ref().map(Slug::as_str),
                *expected,
                "from_name({name:?})"
            );
        }
    }

    #[test]
    fn slug_from_long_name_is_truncated_without_trailing_dash() {
        // 63 letters then a separator: truncation at 64 would leave a trailing '-'.
        let name = format!("{} tail", "a".repeat(63));
        let slug = Slug::from_name(&name).unwrap();
        assert_eq!(slug.as_str(), "a".repeat(63));
        let long = "word ".repeat(40);
        let slug = Slug::from_name(&long).unwrap();
        assert!(slug.as_str().len() <= 64);
        assert!(!slug.as_str().ends_with('-'));
    }

    // --- OrgName, Username, PersonName ---------------------------------------------------------

    #[test]
    fn org_name_rules() {
        assert_eq!(OrgName::parse("  Acme  ").unwrap().as_str(), "Acme");
        assert!(OrgName::parse(&"é".repeat(100)).is_ok());
        assert_eq!(field_of(OrgName::parse(&"é".repeat(101))), "name");
        assert_eq!(field_of(OrgName::parse("   ")), "name");
        assert_eq!(field_of(OrgName::parse("Ac\u{0}me")), "name");
    }

    #[test]
    fn username_rules() {
        assert_eq!(
            Username::parse("Alice_B.c-9").unwrap().as_str(),
            "alice_b.c-9"
        );
        assert!(Username::parse("abc").is_ok());
        assert!(Username::parse(&"a".repeat(64)).is_ok());
        for bad in [
            "ab",
            &"a".repeat(65),
            "alice@example.com",
            "al@",
            "al ice",
            "alïce",
            "",
        ] {
            assert_eq!(
                field_of(Username::parse(bad)),
                "username",
                "{bad:?} should be rejected"
            );
        }
        assert!(Username::parse("a@b").unwrap_err().reason.contains('@'));
    }

    #[test]
    fn person_name_rules() {
        assert_eq!(
            PersonName::parse("first_name", "  Zoë ").unwrap().as_str(),
            "Zoë"
        );
        assert_eq!(PersonName::parse("last_name", "").unwrap().as_str(), "");
        assert!(PersonName::parse("last_name", &"ß".repeat(100)).is_ok());
        assert_eq!(
            field_of(PersonName::parse("last_name", &"ß".repeat(101))),
            "last_name"
        );
        assert_eq!(
            field_of(PersonName::parse("first_name", "a\tb")),
            "first_name"
        );
    }

    // --- Password ------------------------------------------------------------------------------

    #[test]
    fn password_length_boundaries() {
        assert_eq!(field_of(Password::parse(&"a".repeat(7))), "password");
        assert!(Password::parse(&"a".repeat(8)).is_ok());
        assert!(Password::parse(&"a".repeat(1024)).is_ok());
        assert_eq!(field_of(Password::parse(&"a".repeat(1025))), "password");
        assert!(Password::parse("").is_err());
    }

    #[test]
    fn password_counts_unicode_chars_not_bytes() {
        // 7 chars but 28 bytes: still too short.
        assert!(Password::parse(&"😀".repeat(7)).is_err());
        assert!(Password::parse(&"😀".repeat(8)).is_ok());
        // 1024 chars but 2048 bytes: still allowed.
        assert!(Password::parse(&"é".repeat(1024)).is_ok());
        assert!(Password::parse(&"é".repeat(1025)).is_err());
    }

    #[test]
    fn password_is_kept_exactly_as_typed() {
        let typed = "  spaced out  ";
        assert_eq!(Password::parse(typed).unwrap().as_str(), typed);
        // Seven visible characters padded with a space is eight characters, as typed.
        assert!(Password::parse("1234567 ").is_ok());
        assert!(Password::parse(" 123456").is_err());
    }

    #[test]
    fn password_never_shows_itself() {
        let password = Password::parse("correct horse battery staple").unwrap();
        assert_eq!(format!("{password:?}"), "Password(***)");
        let err = Password::parse("short").unwrap_err();
        assert!(!err.to_string().contains("short"));
    }

    // --- PageLimit, ExpiresInDays --------------------------------------------------------------

    #[test]
    fn page_limit_rules() {
        assert_eq!(PageLimit::parse(None).unwrap().get(), 50);
        assert_eq!(PageLimit::parse(Some(1)).unwrap().get(), 1);
        assert_eq!(PageLimit::parse(Some(200)).unwrap().get(), 200);
        for bad in [0, 201, -1, i64::MIN, i64::MAX] {
            assert_eq!(field_of(PageLimit::parse(Some(bad))), "limit");
        }
    }

    #[test]
    fn expires_in_days_rules() {
        assert_eq!(ExpiresInDays::parse(None).unwrap().get(), 7);
        assert_eq!(ExpiresInDays::parse(Some(1)).unwrap().get(), 1);
        assert_eq!(ExpiresInDays::parse(Some(30)).unwrap().get(), 30);
        assert_eq!(
            ExpiresInDays::parse(Some(30)).unwrap().duration(),
            time::Duration::days(30)
        );
        for bad in [0, 31, -7, i64::MAX] {
            assert_eq!(field_of(ExpiresInDays::parse(Some(bad))), "expires_in_days");
        }
    }

    #[test]
    fn value_error_display() {
        let err = ValueError::new("slug", "must not contain '--'");
        assert_eq!(err.to_string(), "slug: must not contain '--'");
    }

    #[test]
    fn display_name_bounds_what_is_sent_not_what_is_kept() {
        let hundred = "é".repeat(100);
        assert_eq!(
            DisplayName::parse("name", &hundred).unwrap().as_str(),
            hundred
        );
        assert_eq!(
            DisplayName::parse("name", "  key  ").unwrap().as_str(),
            "key"
        );
        // 101 characters as sent, 100 once trimmed: refused, as the schema's maxLength says.
        let padded = format!(" {hundred}");
        assert_eq!(
            DisplayName::parse("name", &padded).unwrap_err().field,
            "name"
        );
        assert!(OrgName::parse(&padded).is_err());
        assert!(PersonName::parse("first_name", &padded).is_err());
        for bad in ["", "   ", "a\u{7}b"] {
            assert!(DisplayName::parse("name", bad).is_err(), "{bad:?}");
        }
        assert_eq!(optional_text("zone", Some("  "), 4), Ok(None));
        assert_eq!(optional_text("zone", None, 4), Ok(None));
        assert_eq!(
            optional_text("zone", Some(" fr1 "), 5),
            Ok(Some("fr1".to_owned()))
        );
        assert!(optional_text("zone", Some(" fr1 "), 4).is_err());
        assert!(optional_text("zone", Some("f\u{0}r"), 4).is_err());
    }
}

//! The catalogue of stable error codes: every value the API can put in an error body's
//! `error` field (OpenAI's `error.code` on `/v1/*`).
//!
//! Contract:
//! - A code is part of the API: clients match on it, so once released it keeps its spelling.
//!   Its HTTP status and its meaning are listed in `docs/errors.md` (a test keeps that table and
//!   [`ErrorCode::ALL`] equal); the status itself is picked in one place, the http crate.
//! - Codes are written as [`ErrorCode`] values everywhere; the snake_case strings exist only in
//!   the table below, which gives each variant its spelling for [`ErrorCode::as_str`], for serde
//!   and for [`ErrorCode::ALL`] at once, so the three cannot disagree or miss a variant.

use serde::Serialize;
use std::fmt;

/// Declares [`ErrorCode`] from one `Variant = "spelling"` list: the enum (serialized as the
/// spelling), [`ErrorCode::ALL`] in list order, and [`ErrorCode::as_str`].
macro_rules! error_codes {
    ($($variant:ident = $code:literal,)+) => {
        /// A stable error code. Serialized as its snake_case spelling ([`ErrorCode::as_str`]).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
        pub enum ErrorCode {
            $(
                #[doc = concat!("`", $code, "`")]
                #[serde(rename = $code)]
                $variant,
            )+
        }

        impl ErrorCode {
            /// Every code, in the order of `docs/errors.md`.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant),+];

            /// The code as the API spells it.
            #[must_use]
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $code,)+
                }
            }
        }
    };
}

error_codes! {
    // The request is malformed or refused as such (400).
    ValidationFailed = "validation_failed",
    BadRequest = "bad_request",
    InvalidBody = "invalid_body",
    MalformedJson = "malformed_json",
    InvalidQuery = "invalid_query",
    EndpointNotAllowed = "endpoint_not_allowed",
    SharingRequiresOrganization = "sharing_requires_organization",
    // Who is calling is unknown or not accepted (401).
    Unauthorized = "unauthorized",
    InvalidCredentials = "invalid_credentials",
    TokenExpired = "token_expired",
    RefreshReuseDetected = "refresh_reuse_detected",
    InvalidApiKey = "invalid_api_key",
    LoginRequired = "login_required",
    // A spend cap would be passed (402).
    SpendCapReached = "spend_cap_reached",
    // The caller is known but refused (403); the first four are the policy's (`DenyReason`).
    Forbidden = "forbidden",
    RoleChangeNotAllowed = "role_change_not_allowed",
    OrganizationRequired = "organization_required",
    ApiKeyNotAllowed = "api_key_not_allowed",
    CsrfOrigin = "csrf_origin",
    NotAMember = "not_a_member",
    AccountDisabled = "account_disabled",
    InvalidCurrentPassword = "invalid_current_password",
    EmailMismatch = "email_mismatch",
    ModelNotOperational = "model_not_operational",
    ApiKeyNotOperational = "api_key_not_operational",
    ModelNotAllowed = "model_not_allowed",
    ProviderOnly = "provider_only",
    ConsumerOnly = "consumer_only",
    WorkbenchOwnerOnly = "workbench_owner_only",
    // Absent, or out of the caller's scope (404).
    NotFound = "not_found",
    ModelNotFound = "model_not_found",
    // Refused by the framework before any handler (405, 408).
    MethodNotAllowed = "method_not_allowed",
    RequestTimeout = "request_timeout",
    // The current state forbids the change (409).
    SlugTaken = "slug_taken",
    OrgNameTaken = "org_name_taken",
    UsernameTaken = "username_taken",
    EmailTaken = "email_taken",
    NamespaceTaken = "namespace_taken",
    ModelIdTaken = "model_id_taken",
    CodeTaken = "code_taken",
    EndpointTaken = "endpoint_taken",
    LastOwner = "last_owner",
    AlreadyMember = "already_member",
    InvitationPending = "invitation_pending",
    InvitationNotPending = "invitation_not_pending",
    OrgHasInstances = "org_has_instances",
    CannotChangeSelf = "cannot_change_self",
    ModelInUse = "model_in_use",
    OfferingInUse = "offering_in_use",
    ShareExists = "share_exists",
    InvalidState = "invalid_state",
    ContractChanged = "contract_changed",
    DistinctActivatorsRequired = "distinct_activators_required",
    ActivationNotApplicable = "activation_not_applicable",
    AlreadyRevoked = "already_revoked",
    WorkspaceChanged = "workspace_changed",
    AccessRequestPending = "access_request_pending",
    AccessRequestRejectedRecently = "access_request_rejected_recently",
    AccessRequestNotPending = "access_request_not_pending",
    AlreadyShared = "already_shared",
    OfferingUnpriced = "offering_unpriced",
    ConversationTooLong = "conversation_too_long",
    // A single-use token or invitation is spent (410).
    InvitationGone = "invitation_gone",
    InvitationSuperseded = "invitation_superseded",
    ResetTokenInvalid = "reset_token_invalid",
    // The request's framing or size is refused before any handler (411, 413, 414, 415).
    LengthRequired = "length_required",
    PayloadTooLarge = "payload_too_large",
    UriTooLong = "uri_too_long",
    UnsupportedMediaType = "unsupported_media_type",
    // Too many requests (429), headers too large (431).
    RateLimited = "rate_limited",
    HeadersTooLarge = "headers_too_large",
    // The server failed (500).
    InternalError = "internal_error",
    // The model server failed or could not be reached (502).
    UpstreamError = "upstream_error",
    UpstreamUnreachable = "upstream_unreachable",
    // Nothing can serve this right now; retry (503).
    NoReadyInstance = "no_ready_instance",
    DatabaseUnavailable = "database_unavailable",
    ServiceUnavailable = "service_unavailable",
    ServerBusy = "server_busy",
    // The model server did not answer in time (504).
    UpstreamTimeout = "upstream_timeout",
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::ErrorCode;
    use std::collections::BTreeSet;

    #[test]
    fn codes_are_unique_snake_case_and_serialize_as_spelled() {
        let mut seen = BTreeSet::new();
        for code in ErrorCode::ALL {
            let text = code.as_str();
            assert!(seen.insert(text), "{text} twice");
            assert!(
                !text.is_empty()
                    && !text.starts_with('_')
                    && !text.ends_with('_')
                    && text.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "{text} is not snake_case"
            );
            assert_eq!(serde_json::to_string(code).unwrap(), format!("\"{text}\""));
            assert_eq!(code.to_string(), text);
        }
    }

    /// The codes of the table in `docs/errors.md`: the first cell of each row whose first cell
    /// is a backquoted code.
    fn documented_codes(markdown: &str) -> Vec<&str> {
        markdown
            .lines()
            .filter_map(|line| line.strip_prefix("| `"))
            .filter_map(|rest| rest.split_once('`'))
            .map(|(code, _)| code)
            .collect()
    }

    #[test]
    fn docs_table_lists_every_code_once_in_order() {
        let docs = include_str!("../../../docs/errors.md");
        let documented = documented_codes(docs);
        let all: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        let missing: Vec<_> = all.iter().filter(|c| !documented.contains(c)).collect();
        let unknown: Vec<_> = documented.iter().filter(|c| !all.contains(c)).collect();
        assert!(
            missing.is_empty() && unknown.is_empty(),
            "docs/errors.md and ErrorCode::ALL disagree: missing from the docs {missing:?}, \
             unknown to ErrorCode {unknown:?}"
        );
        assert_eq!(
            documented, all,
            "docs/errors.md lists a code twice or not in the order of ErrorCode::ALL"
        );
    }
}

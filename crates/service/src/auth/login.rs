use super::Session;
use super::{IssuedToken, enforce_limits};
use crate::organizations::Organization;
use crate::rate_limit::shared;
use crate::users::User;
use crate::{Deps, RequestMeta, ServiceError};
use inventiv_domain::ErrorCode;
use inventiv_domain::{Email, Password, Username};
use inventiv_persistence::repo::organizations;
use inventiv_persistence::repo::users;

/// `POST /auth/login` input: an email or a username, and a password.
pub struct LoginInput {
    pub login: String,
    pub password: String,
}

#[derive(Debug)]
pub struct LoginOutcome {
    pub user: User,
    pub session: Session,
    /// The organization the session starts in (None = Personal).
    pub organization: Option<Organization>,
    pub token: IssuedToken,
}

pub(super) fn invalid_credentials() -> ServiceError {
    ServiceError::Unauthenticated {
        code: ErrorCode::InvalidCredentials,
        message: "The email/username or password is incorrect.".to_owned(),
    }
}

/// The longest text that can name an account: an email of at most 254 characters (usernames
/// are shorter), with some room for surrounding spaces.
pub const MAX_LOGIN_CHARS: usize = 320;

/// Refuses an over-long email or username before anything copies or keeps it (issue 16: 1 MB
/// "emails" were kept by the rate limiter). It cannot name an account, so a 400 tells nothing.
pub(crate) fn check_login_len(login: &str, field: &'static str) -> Result<(), ServiceError> {
    // Bytes first: a cheap bound that needs no scan of a huge string.
    if login.len() > 4 * MAX_LOGIN_CHARS || login.chars().count() > MAX_LOGIN_CHARS {
        return Err(ServiceError::invalid(
            field,
            format!("at most {MAX_LOGIN_CHARS} characters"),
        ));
    }
    Ok(())
}

/// Checks the credentials and opens a session in the workspace of the user's most recently
/// used session (if that membership still exists), else Personal.
pub async fn login(
    deps: &Deps,
    input: LoginInput,
    meta: &RequestMeta,
) -> Result<LoginOutcome, ServiceError> {
    let field = if input.login.contains('@') {
        "email"
    } else {
        "username"
    };
    check_login_len(&input.login, field)?;
    // A place among the password hash threads first: when they are all taken (a storm of
    // logins), this one is refused with 503 before it costs a rate-limit or database round trip.
    let check = deps.passwords.reserve_check()?;
    let login = input.login.trim().to_lowercase();
    let ip_key = crate::rate_limit::address_key(meta.ip.as_deref());
    let account_key = format!("account:{login}");
    let limit = |limiter, key, kind| shared::Limit {
        limiter,
        scope: "login",
        key,
        kind,
    };
    enforce_limits(
        deps,
        &[
            limit(&deps.auth.login_by_ip, &ip_key, "ip"),
            limit(&deps.auth.login_by_account, &account_key, "account"),
        ],
        "auth.login_rate_limited",
        meta,
    )
    .await?;

    let user = if login.contains('@') {
        match Email::parse(&login) {
            Ok(email) => users::find_by_email(&deps.db, &email).await?,
            Err(_) => None,
        }
    } else {
        match Username::parse(&login) {
            Ok(username) => users::find_by_username(&deps.db, &username).await?,
            Err(_) => None,
        }
    };
    // A password that breaks the policy cannot match; it is still compared with the dummy
    // hash (unless absurdly long) so the answer takes the usual time.
    let password = Password::parse(&input.password).ok();
    let matches = match &password {
        Some(pw) => {
            check
                .verify(pw, user.as_ref().map(|u| u.password_hash.as_str()))
                .await?
        }
        None => {
            if let Ok(stand_in) = Password::parse("not-a-real-password") {
                check.verify(&stand_in, None).await?;
            }
            false
        }
    };
    let Some(user) = user.filter(|_| matches) else {
        return Err(invalid_credentials());
    };
    if user.disabled_at.is_some() {
        return Err(ServiceError::Forbidden {
            code: ErrorCode::AccountDisabled,
            message: "This account is disabled.".to_owned(),
        });
    }

    let last = organizations::last_workspace(&deps.db, user.id).await?;
    let workspace = last.as_ref().map(|(org, role)| (org.id, *role));
    let now = deps.clock.now();
    let (session, token) = super::sessions::open_in(
        &deps.db,
        deps,
        user.id,
        workspace,
        meta,
        now,
        Some(&user.password_hash),
    )
    .await?;
    Ok(LoginOutcome {
        user: user.into(),
        session: session.into(),
        organization: last.map(|(org, _)| Organization::from(org)),
        token,
    })
}

impl std::fmt::Debug for LoginInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the password.
        write!(f, "LoginInput({:?}, ***)", self.login)
    }
}

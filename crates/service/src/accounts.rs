//! Creating an account, as one step inside the caller's transaction. Every way a user comes
//! to exist goes through [`create_in`]: a platform admin's `POST /users`, a newcomer accepting
//! an invitation, the bootstrap admin, the demo seed. Each caller phrases a taken email its
//! own way (409 `email_taken`, 409 `login_required`, …), so that case is a value, not an error.

use crate::audit::{self, AuditActor, AuditEntry};
use crate::{RequestMeta, ServiceError};
use inventiv_domain::PersonName;
use inventiv_persistence::repo::users::{self, NewUser, UserRecord};
use inventiv_persistence::{Constraint, StoreError, Tx};

/// The email belongs to an existing account (the unique index said so, race included).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EmailTaken;

/// Inserts `new` and records `user.created` (by `by`, with `after` as the event's payload) in
/// `tx`: both commit or neither does.
pub(crate) async fn create_in(
    tx: &Tx,
    new: NewUser<'_>,
    by: AuditActor,
    meta: &RequestMeta,
    after: serde_json::Value,
) -> Result<Result<UserRecord, EmailTaken>, ServiceError> {
    let now = new.now;
    let user = match users::insert(tx, new).await {
        Ok(user) => user,
        Err(StoreError::Conflict(Constraint::UserEmail)) => return Ok(Err(EmailTaken)),
        Err(other) => return Err(other.into()),
    };
    audit::record(
        tx,
        now,
        by,
        meta,
        AuditEntry {
            action: "user.created",
            organization: None,
            target_type: "user",
            target_id: user.id.to_string(),
            before: None,
            after: Some(after),
        },
    )
    .await?;
    Ok(Ok(user))
}

/// The optional first and last names of a new account, checked.
pub(crate) fn names(
    first: Option<&str>,
    last: Option<&str>,
) -> Result<(Option<PersonName>, Option<PersonName>), ServiceError> {
    let first = first
        .map(|v| PersonName::parse("first_name", v))
        .transpose()?;
    let last = last
        .map(|v| PersonName::parse("last_name", v))
        .transpose()?;
    Ok((first, last))
}

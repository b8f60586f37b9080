//! `organization_memberships`: (org, user, role).

use crate::entities::memberships::{ActiveModel, Column, Entity, Model};
use crate::repo::corrupt;
use crate::{Store, StoreError};
use inventiv_domain::{OrgId, Role, UserId};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};
use time::OffsetDateTime;

#[derive(Debug, Clone)]
pub struct MembershipRecord {
    pub organization_id: OrgId,
    pub user_id: UserId,
    pub role: Role,
    pub created_at: OffsetDateTime,
}

fn record(m: Model) -> Result<MembershipRecord, StoreError> {
    Ok(MembershipRecord {
        organization_id: OrgId::from_uuid(m.organization_id),
        user_id: UserId::from_uuid(m.user_id),
        role: m
            .role
            .parse()
            .map_err(|e| corrupt("organization_memberships.role", e))?,
        created_at: m.created_at,
    })
}

/// Adds a member; an existing membership is `Conflict(MembershipPrimaryKey)`.
pub async fn insert<S: Store>(
    s: &S,
    org: OrgId,
    user: UserId,
    role: Role,
    now: OffsetDateTime,
) -> Result<MembershipRecord, StoreError> {
    let model = ActiveModel {
        organization_id: Set(org.as_uuid()),
        user_id: Set(user.as_uuid()),
        role: Set(role.as_str().to_owned()),
        created_at: Set(now),
    };
    record(model.insert(s.conn()).await?)
}

/// The membership of `user` in `org`, if any.
pub async fn find<S: Store>(
    s: &S,
    org: OrgId,
    user: UserId,
) -> Result<Option<MembershipRecord>, StoreError> {
    Entity::find()
        .filter(Column::OrganizationId.eq(org.as_uuid()))
        .filter(Column::UserId.eq(user.as_uuid()))
        .one(s.conn())
        .await?
        .map(record)
        .transpose()
}

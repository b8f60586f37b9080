//! `organizations`: tenants.

use crate::entities::organizations::{ActiveModel, Column, Entity, Model};
use crate::repo::corrupt;
use crate::{Store, StoreError};
use inventiv_domain::{OrgId, OrgName, Slug, UserId};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, Set};
use time::OffsetDateTime;

#[derive(Debug, Clone)]
pub struct OrgRecord {
    pub id: OrgId,
    pub name: OrgName,
    pub slug: Slug,
    pub created_by_user_id: Option<UserId>,
    pub require_distinct_activators: bool,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

pub struct NewOrg<'a> {
    pub id: OrgId,
    pub name: &'a OrgName,
    pub slug: &'a Slug,
    pub created_by: Option<UserId>,
    pub now: OffsetDateTime,
}

fn record(m: Model) -> Result<OrgRecord, StoreError> {
    Ok(OrgRecord {
        id: OrgId::from_uuid(m.id),
        name: OrgName::parse(&m.name).map_err(|e| corrupt("organizations.name", e))?,
        slug: Slug::parse(&m.slug).map_err(|e| corrupt("organizations.slug", e))?,
        created_by_user_id: m.created_by_user_id.map(UserId::from_uuid),
        require_distinct_activators: m.require_distinct_activators,
        created_at: m.created_at,
        updated_at: m.updated_at,
    })
}

/// Inserts an organization; a taken slug is `Conflict(OrganizationSlug)`.
pub async fn insert<S: Store>(s: &S, new: NewOrg<'_>) -> Result<OrgRecord, StoreError> {
    let model = ActiveModel {
        id: Set(new.id.as_uuid()),
        name: Set(new.name.as_str().to_owned()),
        slug: Set(new.slug.as_str().to_owned()),
        created_by_user_id: Set(new.created_by.map(|u| u.as_uuid())),
        require_distinct_activators: Set(false),
        created_at: Set(new.now),
        updated_at: Set(new.now),
    };
    record(model.insert(s.conn()).await?)
}

pub async fn find_by_id<S: Store>(s: &S, id: OrgId) -> Result<Option<OrgRecord>, StoreError> {
    Entity::find_by_id(id.as_uuid())
        .one(s.conn())
        .await?
        .map(record)
        .transpose()
}

pub async fn find_by_slug<S: Store>(s: &S, slug: &Slug) -> Result<Option<OrgRecord>, StoreError> {
    Entity::find()
        .filter(Column::Slug.eq(slug.as_str()))
        .one(s.conn())
        .await?
        .map(record)
        .transpose()
}

pub async fn count<S: Store>(s: &S) -> Result<u64, StoreError> {
    Ok(Entity::find().count(s.conn()).await?)
}

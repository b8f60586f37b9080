use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_events")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub chain_key: String,
    pub chain_seq: i64,
    pub organization_id: Option<Uuid>,
    pub actor_user_id: Option<Uuid>,
    pub actor_session_id: Option<Uuid>,
    pub action: String,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub before_state: Option<Json>,
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub after_state: Option<Json>,
    pub request_id: Option<String>,
    pub ip: Option<String>,
    pub occurred_at: TimeDateTimeWithTimeZone,
    pub prev_hash: String,
    pub hash: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

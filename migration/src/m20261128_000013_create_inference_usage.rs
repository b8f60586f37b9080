use crate::sql;
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One row per metered request; request_id is unique so ingestion is idempotent. No
        // foreign keys: a billing record outlives the key, user, offering or instance it names.
        sql::exec(
            manager,
            r#"
            CREATE TABLE inference_usage (
                id {uuid} NOT NULL PRIMARY KEY,
                request_id VARCHAR(64) NOT NULL,
                occurred_at {ts} NOT NULL,
                api_key_id {uuid} NULL,
                user_id {uuid} NULL,
                consumer_organization_id {uuid} NULL,
                provider_organization_id {uuid} NULL,
                organization_model_id {uuid} NULL,
                share_id {uuid} NULL,
                model_id {uuid} NOT NULL,
                instance_id {uuid} NOT NULL,
                input_tokens BIGINT NOT NULL CHECK (input_tokens >= 0),
                output_tokens BIGINT NOT NULL CHECK (output_tokens >= 0),
                price_input_micros_per_1k BIGINT NOT NULL,
                price_output_micros_per_1k BIGINT NOT NULL,
                charged_micros BIGINT NOT NULL CHECK (charged_micros >= 0),
                created_at {ts} NOT NULL
            );
            CREATE UNIQUE INDEX ux_usage_request ON inference_usage (request_id);
            CREATE INDEX ix_usage_consumer_time ON inference_usage (consumer_organization_id, occurred_at);
            CREATE INDEX ix_usage_provider_time ON inference_usage (provider_organization_id, occurred_at);
            CREATE INDEX ix_usage_personal_time ON inference_usage (user_id, occurred_at) WHERE consumer_organization_id IS NULL
            "#,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        sql::drop_tables(manager, &["inference_usage"]).await
    }
}

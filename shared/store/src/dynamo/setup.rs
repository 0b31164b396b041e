//! Creating the table: its key schema and index, waiting until it is active, and TTL.

use std::time::Duration;

use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, IndexStatus, KeySchemaElement, KeyType,
    Projection, ProjectionType, ScalarAttributeType, StreamSpecification, StreamViewType,
    TableStatus, TimeToLiveSpecification, TimeToLiveStatus,
};

use super::{DynamoTable, map_err};
use crate::common::backend;
use crate::{EXPIRES_AT, GSI1, GSI1PK, GSI1SK, PK, Result, SK, metrics};

impl DynamoTable {
    /// Creates the table (on-demand, `PK`/`SK`, index `GSI1` projecting all attributes, a
    /// `NEW_IMAGE` stream as template.yaml declares) unless it exists, waits until it is
    /// active, and enables TTL on `expires_at`.
    pub async fn create_if_missing(&self) -> Result<()> {
        let attr = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(backend)
        };
        let key = |name: &str, kind| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(kind)
                .build()
                .map_err(backend)
        };
        let gsi = GlobalSecondaryIndex::builder()
            .index_name(GSI1)
            .key_schema(key(GSI1PK, KeyType::Hash)?)
            .key_schema(key(GSI1SK, KeyType::Range)?)
            .projection(
                Projection::builder()
                    .projection_type(ProjectionType::All)
                    .build(),
            )
            .build()
            .map_err(backend)?;
        // Aggregators consume the change feed ([`crate::stream`]); an item's new state is all
        // they read, so the stream carries only that.
        let stream = StreamSpecification::builder()
            .stream_enabled(true)
            .stream_view_type(StreamViewType::NewImage)
            .build()
            .map_err(backend)?;
        metrics::hit();
        let created = self
            .client
            .create_table()
            .table_name(&self.name)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(attr(PK)?)
            .attribute_definitions(attr(SK)?)
            .attribute_definitions(attr(GSI1PK)?)
            .attribute_definitions(attr(GSI1SK)?)
            .key_schema(key(PK, KeyType::Hash)?)
            .key_schema(key(SK, KeyType::Range)?)
            .global_secondary_indexes(gsi)
            .stream_specification(stream)
            .send()
            .await;
        match created {
            Ok(_) => {}
            Err(e) if e.code() == Some("ResourceInUseException") => {}
            Err(e) => return Err(map_err(e)),
        }
        self.wait_active().await?;
        self.enable_ttl().await;
        Ok(())
    }

    /// Polls until the table and its index are active (a new table takes seconds on AWS).
    async fn wait_active(&self) -> Result<()> {
        for _ in 0..120 {
            metrics::hit();
            let out = self
                .client
                .describe_table()
                .table_name(&self.name)
                .send()
                .await
                .map_err(map_err)?;
            let Some(table) = out.table() else {
                return Err(backend("DescribeTable returned no table"));
            };
            let indexes_active = table
                .global_secondary_indexes()
                .iter()
                .all(|i| i.index_status().is_none_or(|s| *s == IndexStatus::Active));
            if table.table_status() == Some(&TableStatus::Active) && indexes_active {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        Err(backend(format!(
            "table {} did not become active",
            self.name
        )))
    }

    /// Best effort: emulators may not support TTL, and expired items are hidden anyway.
    async fn enable_ttl(&self) {
        metrics::hit();
        let status = self
            .client
            .describe_time_to_live()
            .table_name(&self.name)
            .send()
            .await;
        let enabled = status
            .as_ref()
            .ok()
            .and_then(|o| o.time_to_live_description())
            .is_some_and(|d| {
                matches!(
                    d.time_to_live_status(),
                    Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling)
                ) && d.attribute_name() == Some(EXPIRES_AT)
            });
        if enabled {
            return;
        }
        let spec = match TimeToLiveSpecification::builder()
            .enabled(true)
            .attribute_name(EXPIRES_AT)
            .build()
        {
            Ok(spec) => spec,
            Err(e) => return tracing::warn!(error = %e, "cannot build the TTL specification"),
        };
        metrics::hit();
        let res = self
            .client
            .update_time_to_live()
            .table_name(&self.name)
            .time_to_live_specification(spec)
            .send()
            .await;
        if let Err(e) = res {
            tracing::warn!(table = %self.name, error = %DisplayErrorContext(&e), "could not enable TTL");
        }
    }
}

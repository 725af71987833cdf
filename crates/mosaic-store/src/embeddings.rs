//! Embeddings for retrieval on the federated tier: pgvector, cosine distance, an HNSW index.

use pgvector::Vector;
use serde_json::Value;
use sqlx::types::Json;
use time::OffsetDateTime;

use crate::error::{StoreError, StoreResult};
use crate::store::{Database, Store};
use crate::time::{DbTime, now};

/// The width of `embeddings.embedding` (`vector(1536)`).
pub const EMBEDDING_DIMENSIONS: usize = 1536;

/// The most neighbours one query returns.
pub const MAX_NEAREST: u32 = 1000;

/// A document's embedding, to store with [`Store::upsert_embedding`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct EmbeddingRecord {
    /// A namespace (e.g. one per corpus or per user).
    pub collection: String,
    /// The document's id within the collection.
    pub document_id: String,
    /// The text that was embedded.
    pub content: String,
    /// Free metadata, a JSON object.
    pub metadata: Value,
    /// [`EMBEDDING_DIMENSIONS`] finite numbers, not all zero.
    pub embedding: Vec<f32>,
}

impl EmbeddingRecord {
    /// A record with empty metadata.
    pub fn new(
        collection: impl Into<String>,
        document_id: impl Into<String>,
        content: impl Into<String>,
        embedding: Vec<f32>,
    ) -> Self {
        Self {
            collection: collection.into(),
            document_id: document_id.into(),
            content: content.into(),
            metadata: Value::Object(serde_json::Map::new()),
            embedding,
        }
    }

    /// Sets the metadata object.
    #[must_use]
    pub fn metadata(mut self, metadata: Value) -> Self {
        self.metadata = metadata;
        self
    }
}

/// One result of [`Store::nearest_embeddings`].
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[non_exhaustive]
pub struct EmbeddingMatch {
    /// The document's id.
    pub document_id: String,
    /// The embedded text.
    pub content: String,
    /// Its metadata.
    pub metadata: Value,
    /// Cosine distance to the query: 0 is the same direction, 2 the opposite.
    pub distance: f64,
    /// When the record was last written.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

#[derive(sqlx::FromRow)]
struct MatchRow {
    document_id: String,
    content: String,
    metadata: Json<Value>,
    distance: f64,
    updated_at: OffsetDateTime,
}

const UPSERT_EMBEDDING: &str = "INSERT INTO embeddings (collection, document_id, content, metadata, embedding, updated_at) \
     VALUES ($1, $2, $3, $4, $5, $6) \
     ON CONFLICT (collection, document_id) DO UPDATE SET \
     content = EXCLUDED.content, metadata = EXCLUDED.metadata, embedding = EXCLUDED.embedding, \
     updated_at = EXCLUDED.updated_at";
const DELETE_EMBEDDING: &str = "DELETE FROM embeddings WHERE collection = $1 AND document_id = $2";
/// pgvector ≥ 0.8: keep scanning the HNSW index until `LIMIT` rows pass the collection filter, in exact
/// distance order (without it, a filtered query may return fewer rows than asked for).
const ITERATIVE_SCAN: &str = "SET LOCAL hnsw.iterative_scan = strict_order";
const NEAREST: &str = "SELECT document_id, content, metadata, (embedding <=> $2) AS distance, updated_at \
     FROM embeddings WHERE collection = $1 ORDER BY embedding <=> $2 LIMIT $3";

fn checked_vector(values: &[f32]) -> StoreResult<Vector> {
    if values.len() != EMBEDDING_DIMENSIONS {
        return Err(StoreError::EmbeddingDimensions {
            expected: EMBEDDING_DIMENSIONS,
            actual: values.len(),
        });
    }
    if let Some(index) = values.iter().position(|v| !v.is_finite()) {
        return Err(StoreError::InvalidInput {
            field: "embedding",
            reason: format!("component {index} is not a finite number"),
        });
    }
    if values.iter().all(|v| *v == 0.0) {
        return Err(StoreError::InvalidInput {
            field: "embedding",
            reason: "the zero vector has no direction, so no cosine distance".to_owned(),
        });
    }
    Ok(Vector::from(values.to_vec()))
}

impl Store {
    fn embeddings_pool(&self) -> StoreResult<&sqlx::PgPool> {
        match self.db() {
            Database::Postgres(pool) => Ok(pool),
            Database::Sqlite(_) => Err(StoreError::NeedsFederatedTier {
                feature: "embeddings",
            }),
        }
    }

    /// Inserts or replaces the embedding of `(collection, document_id)`.
    ///
    /// # Errors
    /// [`StoreError::NeedsFederatedTier`] on the local tier; [`StoreError::EmbeddingDimensions`] for a vector
    /// of the wrong width.
    pub async fn upsert_embedding(&self, record: &EmbeddingRecord) -> StoreResult<()> {
        let pool = self.embeddings_pool()?;
        let vector = checked_vector(&record.embedding)?;
        if !record.metadata.is_object() {
            return Err(StoreError::InvalidInput {
                field: "metadata",
                reason: "must be a JSON object".to_owned(),
            });
        }
        if record.collection.is_empty() || record.document_id.is_empty() {
            return Err(StoreError::InvalidInput {
                field: "embedding key",
                reason: "collection and document id must not be empty".to_owned(),
            });
        }
        sqlx::query(UPSERT_EMBEDDING)
            .bind(&record.collection)
            .bind(&record.document_id)
            .bind(&record.content)
            .bind(Json(&record.metadata))
            .bind(vector)
            .bind(DbTime::new(now()))
            .execute(pool)
            .await
            .map_err(StoreError::database("storing an embedding"))?;
        Ok(())
    }

    /// Removes a document's embedding; returns whether there was one.
    pub async fn delete_embedding(&self, collection: &str, document_id: &str) -> StoreResult<bool> {
        let pool = self.embeddings_pool()?;
        let done = sqlx::query(DELETE_EMBEDDING)
            .bind(collection)
            .bind(document_id)
            .execute(pool)
            .await
            .map_err(StoreError::database("deleting an embedding"))?;
        Ok(done.rows_affected() > 0)
    }

    /// The `k` documents of `collection` nearest to `query` by cosine distance, nearest first.
    ///
    /// # Errors
    /// [`StoreError::NeedsFederatedTier`] on the local tier; [`StoreError::EmbeddingDimensions`] for a vector
    /// of the wrong width.
    pub async fn nearest_embeddings(
        &self,
        collection: &str,
        query: &[f32],
        k: u32,
    ) -> StoreResult<Vec<EmbeddingMatch>> {
        let pool = self.embeddings_pool()?;
        let vector = checked_vector(query)?;
        if k == 0 || k > MAX_NEAREST {
            return Err(StoreError::InvalidInput {
                field: "k",
                reason: format!("must be 1 to {MAX_NEAREST}"),
            });
        }
        let mut tx = pool
            .begin()
            .await
            .map_err(StoreError::database("searching embeddings"))?;
        sqlx::query(ITERATIVE_SCAN)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::database(
                "enabling pgvector's iterative index scan",
            ))?;
        let rows: Vec<MatchRow> = sqlx::query_as(NEAREST)
            .bind(collection)
            .bind(vector)
            .bind(i64::from(k))
            .fetch_all(&mut *tx)
            .await
            .map_err(StoreError::database("searching embeddings"))?;
        tx.commit()
            .await
            .map_err(StoreError::database("searching embeddings"))?;
        Ok(rows
            .into_iter()
            .map(|row| EmbeddingMatch {
                document_id: row.document_id,
                content: row.content,
                metadata: row.metadata.0,
                distance: row.distance,
                updated_at: row.updated_at,
            })
            .collect())
    }
}

-- Embeddings for the federated tier's retrieval (RAG). 1536 dimensions: the width of the common
-- general-purpose text embedding models; `mosaic_store::EMBEDDING_DIMENSIONS` mirrors it.
CREATE TABLE embeddings (
    collection  text        NOT NULL CHECK (length(collection) BETWEEN 1 AND 255),
    document_id text        NOT NULL CHECK (length(document_id) BETWEEN 1 AND 1024),
    content     text        NOT NULL,
    metadata    jsonb       NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(metadata) = 'object'),
    embedding   vector(1536) NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (collection, document_id)
);
-- Approximate nearest neighbours by cosine distance (the `<=>` operator).
CREATE INDEX embeddings_embedding_hnsw_idx ON embeddings USING hnsw (embedding vector_cosine_ops);

-- pgvector first: the embeddings migration needs the `vector` type, and the federated tier's
-- "embeddings and RAG" need the extension whatever else the schema holds.
CREATE EXTENSION IF NOT EXISTS vector;

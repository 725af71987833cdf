-- First-boot SQL of the federated PostgreSQL, run once in the `mosaic` database:
--   * Docker: mounted at /docker-entrypoint-initdb.d by docker-compose.federated.yml;
--   * native: run by infra/native/up after initdb.
-- pgvector backs embeddings and RAG; `mosaic gateway doctor` checks that this extension exists.
CREATE EXTENSION IF NOT EXISTS vector;

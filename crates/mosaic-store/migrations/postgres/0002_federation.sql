-- Federation state shared by every gateway of a federated deployment.
-- The lifecycle rules live here, in constraints, so that no code path (ours, the TypeScript gateway's, or an
-- operator's psql session) can write a row the gateways would misread.

CREATE TABLE federation_peers (
    id             uuid        PRIMARY KEY,
    common_name    text        NOT NULL UNIQUE CHECK (length(common_name) BETWEEN 1 AND 255),
    display_name   text        NOT NULL CHECK (length(display_name) BETWEEN 1 AND 255),
    endpoint_url   text        NOT NULL CHECK (endpoint_url ~ '^https?://'),
    state          text        NOT NULL DEFAULT 'pending'
                               CHECK (state IN ('pending', 'active', 'suspended', 'revoked')),
    cert_pem       text,
    cert_serial    text        UNIQUE CHECK (cert_serial ~ '^[0-9a-f]{1,64}$'),
    cert_not_after timestamptz,
    -- The peer's private key, sealed with mosaic-seal (versioned envelope bound to this row and column, or
    -- the TypeScript gateway's legacy format). Never plaintext.
    client_key_pem text        CHECK (client_key_pem <> '' AND client_key_pem NOT LIKE '-----BEGIN%'),
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    revoked_at     timestamptz,
    -- A certificate is all three columns or none.
    CONSTRAINT federation_peers_cert_complete CHECK (
        (cert_pem IS NULL) = (cert_serial IS NULL) AND (cert_serial IS NULL) = (cert_not_after IS NULL)),
    -- Only a peer with a certificate can be active or suspended.
    CONSTRAINT federation_peers_active_has_cert CHECK (
        state NOT IN ('active', 'suspended') OR cert_serial IS NOT NULL),
    CONSTRAINT federation_peers_revoked_at CHECK ((state = 'revoked') = (revoked_at IS NOT NULL))
);

CREATE TABLE federation_grants (
    id              uuid        PRIMARY KEY,
    subject_user_id uuid        NOT NULL,
    peer_id         uuid        NOT NULL REFERENCES federation_peers (id) ON DELETE RESTRICT,
    status          text        NOT NULL DEFAULT 'pending'
                                CHECK (status IN ('pending', 'active', 'revoked', 'expired')),
    scope           jsonb       NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(scope) = 'object'),
    created_at      timestamptz NOT NULL DEFAULT now(),
    activated_at    timestamptz,
    revoked_at      timestamptz,
    revoked_reason  text        CHECK (length(revoked_reason) <= 1000),
    expires_at      timestamptz,
    CONSTRAINT federation_grants_expiry_after_creation CHECK (expires_at IS NULL OR expires_at > created_at),
    CONSTRAINT federation_grants_active_was_activated CHECK (status <> 'active' OR activated_at IS NOT NULL),
    CONSTRAINT federation_grants_revoked_at CHECK ((status = 'revoked') = (revoked_at IS NOT NULL)),
    CONSTRAINT federation_grants_reason_needs_revocation CHECK (revoked_reason IS NULL OR status = 'revoked'),
    CONSTRAINT federation_grants_expired_had_expiry CHECK (status <> 'expired' OR expires_at IS NOT NULL)
);
CREATE INDEX federation_grants_peer_status_idx ON federation_grants (peer_id, status);
CREATE INDEX federation_grants_status_idx ON federation_grants (status);

CREATE TABLE federation_enrollment_tokens (
    -- SHA-256 of the token. The token itself is shown once and never stored.
    token_hash bytea       PRIMARY KEY CHECK (length(token_hash) = 32),
    grant_id   uuid        NOT NULL REFERENCES federation_grants (id) ON DELETE CASCADE,
    peer_id    uuid        NOT NULL REFERENCES federation_peers (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at    timestamptz,
    CONSTRAINT federation_enrollment_tokens_ttl CHECK (
        expires_at > created_at AND expires_at <= created_at + interval '900 seconds'),
    CONSTRAINT federation_enrollment_tokens_used_after_creation CHECK (used_at IS NULL OR used_at >= created_at)
);
CREATE INDEX federation_enrollment_tokens_grant_idx ON federation_enrollment_tokens (grant_id);

CREATE TABLE federation_audit_log (
    id              bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    peer_id         uuid        REFERENCES federation_peers (id) ON DELETE SET NULL,
    -- No foreign key: the log records what a caller presented, including grant ids that do not exist, and it
    -- outlives the rows it mentions.
    grant_id        uuid,
    subject_user_id uuid,
    action          text        NOT NULL CHECK (action ~ '^[a-z][a-z0-9_.]{0,63}$'),
    outcome         text        NOT NULL CHECK (outcome IN ('allowed', 'denied', 'succeeded', 'failed')),
    detail          jsonb       NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(detail) = 'object'),
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX federation_audit_log_newest_idx ON federation_audit_log (created_at DESC, id DESC);
CREATE INDEX federation_audit_log_grant_idx ON federation_audit_log (grant_id, created_at DESC);

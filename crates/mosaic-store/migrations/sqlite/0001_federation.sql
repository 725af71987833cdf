-- The local tier: the same federation tables as PostgreSQL, in SQLite's types.
-- UUIDs are 16-byte BLOBs; timestamps are UTC RFC 3339 text with exactly six fractional digits
-- (written by mosaic-store), so text order is time order; JSON is text checked with json_valid.

CREATE TABLE federation_peers (
    id             BLOB    PRIMARY KEY CHECK (length(id) = 16),
    common_name    TEXT    NOT NULL UNIQUE CHECK (length(common_name) BETWEEN 1 AND 255),
    display_name   TEXT    NOT NULL CHECK (length(display_name) BETWEEN 1 AND 255),
    endpoint_url   TEXT    NOT NULL CHECK (endpoint_url LIKE 'http://%' OR endpoint_url LIKE 'https://%'),
    state          TEXT    NOT NULL DEFAULT 'pending'
                           CHECK (state IN ('pending', 'active', 'suspended', 'revoked')),
    cert_pem       TEXT,
    cert_serial    TEXT    UNIQUE CHECK (length(cert_serial) BETWEEN 1 AND 64
                                         AND cert_serial NOT GLOB '*[^0-9a-f]*'),
    cert_not_after TEXT,
    client_key_pem TEXT    CHECK (client_key_pem <> '' AND client_key_pem NOT LIKE '-----BEGIN%'),
    created_at     TEXT    NOT NULL,
    updated_at     TEXT    NOT NULL,
    revoked_at     TEXT,
    CONSTRAINT federation_peers_cert_complete CHECK (
        (cert_pem IS NULL) = (cert_serial IS NULL) AND (cert_serial IS NULL) = (cert_not_after IS NULL)),
    CONSTRAINT federation_peers_active_has_cert CHECK (
        state NOT IN ('active', 'suspended') OR cert_serial IS NOT NULL),
    CONSTRAINT federation_peers_revoked_at CHECK ((state = 'revoked') = (revoked_at IS NOT NULL))
);

CREATE TABLE federation_grants (
    id              BLOB NOT NULL PRIMARY KEY CHECK (length(id) = 16),
    subject_user_id BLOB NOT NULL CHECK (length(subject_user_id) = 16),
    peer_id         BLOB NOT NULL REFERENCES federation_peers (id) ON DELETE RESTRICT,
    status          TEXT NOT NULL DEFAULT 'pending'
                         CHECK (status IN ('pending', 'active', 'revoked', 'expired')),
    scope           TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(scope) AND json_type(scope) = 'object'),
    created_at      TEXT NOT NULL,
    activated_at    TEXT,
    revoked_at      TEXT,
    revoked_reason  TEXT CHECK (length(revoked_reason) <= 1000),
    expires_at      TEXT,
    CONSTRAINT federation_grants_expiry_after_creation CHECK (expires_at IS NULL OR expires_at > created_at),
    CONSTRAINT federation_grants_active_was_activated CHECK (status <> 'active' OR activated_at IS NOT NULL),
    CONSTRAINT federation_grants_revoked_at CHECK ((status = 'revoked') = (revoked_at IS NOT NULL)),
    CONSTRAINT federation_grants_reason_needs_revocation CHECK (revoked_reason IS NULL OR status = 'revoked'),
    CONSTRAINT federation_grants_expired_had_expiry CHECK (status <> 'expired' OR expires_at IS NOT NULL)
);
CREATE INDEX federation_grants_peer_status_idx ON federation_grants (peer_id, status);
CREATE INDEX federation_grants_status_idx ON federation_grants (status);

CREATE TABLE federation_enrollment_tokens (
    token_hash BLOB NOT NULL PRIMARY KEY CHECK (length(token_hash) = 32),
    grant_id   BLOB NOT NULL REFERENCES federation_grants (id) ON DELETE CASCADE,
    peer_id    BLOB NOT NULL REFERENCES federation_peers (id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used_at    TEXT,
    -- 900 s, with half a second of slack for julianday's floating point.
    CONSTRAINT federation_enrollment_tokens_ttl CHECK (
        expires_at > created_at AND (julianday(expires_at) - julianday(created_at)) * 86400.0 <= 900.5),
    CONSTRAINT federation_enrollment_tokens_used_after_creation CHECK (used_at IS NULL OR used_at >= created_at)
);
CREATE INDEX federation_enrollment_tokens_grant_idx ON federation_enrollment_tokens (grant_id);

CREATE TABLE federation_audit_log (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    peer_id         BLOB REFERENCES federation_peers (id) ON DELETE SET NULL,
    grant_id        BLOB CHECK (grant_id IS NULL OR length(grant_id) = 16),
    subject_user_id BLOB CHECK (subject_user_id IS NULL OR length(subject_user_id) = 16),
    action          TEXT NOT NULL CHECK (length(action) BETWEEN 1 AND 64 AND action GLOB '[a-z]*'
                                         AND action NOT GLOB '*[^a-z0-9_.]*'),
    outcome         TEXT NOT NULL CHECK (outcome IN ('allowed', 'denied', 'succeeded', 'failed')),
    detail          TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(detail) AND json_type(detail) = 'object'),
    created_at      TEXT NOT NULL
);
CREATE INDEX federation_audit_log_newest_idx ON federation_audit_log (created_at DESC, id DESC);
CREATE INDEX federation_audit_log_grant_idx ON federation_audit_log (grant_id, created_at DESC);

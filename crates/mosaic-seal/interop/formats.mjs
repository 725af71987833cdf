// Both mosaic-seal formats, written independently with Node's own `crypto` module.
//
// legacy: exactly what the TypeScript gateway does (key = SHA-256 of the secret, derived on every call,
//         value = standard base64 of iv(12) || tag(16) || ciphertext, no associated data, UTF-8 text).
// v1:     the versioned envelope as documented in crates/mosaic-seal/README.md, implemented from that text
//         alone, so the interop tests also prove the documented layout is complete and exact.
import crypto from 'node:crypto';

// ---------------------------------------------------------------------------------------------- legacy

export function legacyKey(secret) {
  return crypto.createHash('sha256').update(secret, 'utf8').digest();
}

export function legacySeal(secret, plaintext) {
  const key = legacyKey(secret);
  const iv = crypto.randomBytes(12);
  const cipher = crypto.createCipheriv('aes-256-gcm', key, iv);
  const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  const tag = cipher.getAuthTag();
  return Buffer.concat([iv, tag, ciphertext]).toString('base64');
}

export function legacyOpen(secret, sealed) {
  const key = legacyKey(secret);
  const bytes = Buffer.from(sealed, 'base64');
  const iv = bytes.subarray(0, 12);
  const tag = bytes.subarray(12, 28);
  const ciphertext = bytes.subarray(28);
  const decipher = crypto.createDecipheriv('aes-256-gcm', key, iv);
  decipher.setAuthTag(tag);
  return decipher.update(ciphertext, undefined, 'utf8') + decipher.final('utf8');
}

// -------------------------------------------------------------------------------------------------- v1

export const V1_PREFIX = '$mosaic-seal$';
const SALT = Buffer.from('mosaic-seal v1');

function hkdf(ikm, info, length) {
  return Buffer.from(crypto.hkdfSync('sha256', ikm, SALT, Buffer.from(info), length));
}

export function v1Keys(secret) {
  const root = legacyKey(secret);
  return {
    encryptionKey: hkdf(root, 'mosaic-seal v1 encryption key', 32),
    keyId: hkdf(root, 'mosaic-seal v1 key id', 8),
    aadCheckKey: hkdf(root, 'mosaic-seal v1 aad check key', 32),
  };
}

function aadCheck(keys, aad) {
  return crypto.createHmac('sha256', keys.aadCheckKey).update(aad).digest().subarray(0, 4);
}

/** plaintext and aad are Buffers; returns the sealed text. */
export function v1Seal(secret, plaintext, aad = Buffer.alloc(0)) {
  const keys = v1Keys(secret);
  const header = Buffer.concat([Buffer.from([1]), keys.keyId, aadCheck(keys, aad)]);
  const nonce = crypto.randomBytes(12);
  const cipher = crypto.createCipheriv('aes-256-gcm', keys.encryptionKey, nonce);
  cipher.setAAD(Buffer.concat([header, aad]));
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  const bytes = Buffer.concat([header, nonce, ciphertext, cipher.getAuthTag()]);
  return V1_PREFIX + bytes.toString('base64url');
}

/** Returns the plaintext as a Buffer; throws on any failure. */
export function v1Open(secret, sealed, aad = Buffer.alloc(0)) {
  if (!sealed.startsWith(V1_PREFIX)) throw new Error('not a v1 value');
  const bytes = Buffer.from(sealed.slice(V1_PREFIX.length), 'base64url');
  if (bytes.length < 41) throw new Error('too short');
  if (bytes[0] !== 1) throw new Error(`unsupported version ${bytes[0]}`);
  const keys = v1Keys(secret);
  const header = bytes.subarray(0, 13);
  if (!header.subarray(1, 9).equals(keys.keyId)) throw new Error('unknown key id');
  const nonce = bytes.subarray(13, 25);
  const ciphertext = bytes.subarray(25, bytes.length - 16);
  const tag = bytes.subarray(bytes.length - 16);
  const decipher = crypto.createDecipheriv('aes-256-gcm', keys.encryptionKey, nonce);
  decipher.setAAD(Buffer.concat([header, aad]));
  decipher.setAuthTag(tag);
  return Buffer.concat([decipher.update(ciphertext), decipher.final()]);
}

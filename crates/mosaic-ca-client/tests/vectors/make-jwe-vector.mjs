// Regenerates node-pbes2-jwe.json: a P-256 JWK encrypted the way `step` encrypts provisioner keys
// (JWE, alg PBES2-HS256+A128KW, enc A256GCM, cty jwk+json, p2c 600000), made with Node's own crypto so
// the Rust decryption is checked against an independent implementation.
//
//   node crates/mosaic-ca-client/tests/vectors/make-jwe-vector.mjs > crates/mosaic-ca-client/tests/vectors/node-pbes2-jwe.json
//
// The key and password are test data only.
import crypto from 'node:crypto';

const b64u = (buf) => Buffer.from(buf).toString('base64url');

const { privateKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
const exported = privateKey.export({ format: 'jwk' });
// RFC 7638 thumbprint as the kid, like `step crypto jwk create` does.
const thumbprint = b64u(
  crypto.createHash('sha256').update(JSON.stringify({ crv: exported.crv, kty: exported.kty, x: exported.x, y: exported.y })).digest(),
);
const jwk = { use: 'sig', kty: 'EC', kid: thumbprint, crv: 'P-256', alg: 'ES256', x: exported.x, y: exported.y, d: exported.d };

const password = 'mosaic-test-vector-password';
const alg = 'PBES2-HS256+A128KW';
const p2c = 600000;
const p2s = crypto.randomBytes(16);
const protectedHeader = { alg, cty: 'jwk+json', enc: 'A256GCM', p2c, p2s: b64u(p2s) };
const protectedB64 = b64u(JSON.stringify(protectedHeader));

// RFC 7518 4.8.1.1: PBKDF2-HMAC-SHA256 with salt = alg || 0x00 || p2s, 16-byte key for A128KW.
const salt = Buffer.concat([Buffer.from(alg, 'utf8'), Buffer.from([0]), p2s]);
const kek = crypto.pbkdf2Sync(password, salt, p2c, 16, 'sha256');

// RFC 3394 AES key wrap of a fresh 256-bit content key.
const cek = crypto.randomBytes(32);
const kw = crypto.createCipheriv('id-aes128-wrap', kek, Buffer.from('A6A6A6A6A6A6A6A6', 'hex'));
const encryptedKey = Buffer.concat([kw.update(cek), kw.final()]);

// AES-256-GCM with the protected header's ASCII as additional authenticated data.
const iv = crypto.randomBytes(12);
const gcm = crypto.createCipheriv('aes-256-gcm', cek, iv);
gcm.setAAD(Buffer.from(protectedB64, 'ascii'));
const ciphertext = Buffer.concat([gcm.update(Buffer.from(JSON.stringify(jwk), 'utf8')), gcm.final()]);
const tag = gcm.getAuthTag();

const jweJson = {
  protected: protectedB64,
  encrypted_key: b64u(encryptedKey),
  iv: b64u(iv),
  ciphertext: b64u(ciphertext),
  tag: b64u(tag),
};
const jweCompact = [protectedB64, jweJson.encrypted_key, jweJson.iv, jweJson.ciphertext, jweJson.tag].join('.');

process.stdout.write(
  JSON.stringify({ generator: 'make-jwe-vector.mjs (Node ' + process.version + ')', password, jwk, jwe_json: jweJson, jwe_compact: jweCompact }, null, 2) + '\n',
);

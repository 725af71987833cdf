// Makes the interop fixtures that the Rust tests open: values sealed by Node's own `crypto` module.
//
//   node crates/mosaic-seal/interop/make-vectors.mjs [output-dir]
//
// Writes <output-dir>/node-legacy.json and <output-dir>/node-v1.json (default: ../tests/fixtures). IVs are
// random, so each run makes different (equally valid) files; the committed ones are one such run.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { legacySeal, legacyOpen, v1Seal, v1Open } from './formats.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const outDir = process.argv[2] ?? path.join(here, '..', 'tests', 'fixtures');

// Secrets: a long random-looking one (what the docs ask for), a non-ASCII one (the key hashes UTF-8
// bytes), and a short one of the kind older deployments may have (Rust needs short secrets allowed).
const secrets = {
  long: 'Qm9iIGFuZCBBbGljZSBzaGFyZSBhIGxvbmcgcmFuZG9tIHNlY3JldA==',
  unicode: 'clé-secrète-アリス-🔑-avec-assez-de-longueur',
  short: 'dev-secret',
};

const { privateKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
const pem = privateKey.export({ type: 'pkcs8', format: 'pem' });

const plaintexts = {
  empty: '',
  hello: 'hello',
  unicode: 'clé privée — 鍵 🔑\n',
  pem,
  'two-kib': 'x'.repeat(2048),
};

const legacy = [];
const v1 = [];
for (const [secretName, secret] of Object.entries(secrets)) {
  for (const [plaintextName, plaintext] of Object.entries(plaintexts)) {
    const name = `${secretName}/${plaintextName}`;
    const sealed = legacySeal(secret, plaintext);
    if (legacyOpen(secret, sealed) !== plaintext) throw new Error(`legacy round trip failed: ${name}`);
    legacy.push({ name, secret, plaintext, sealed });

    const aad = `federation_peers/client_key_pem/${secretName}-${plaintextName}`;
    const bytes = Buffer.from(plaintext, 'utf8');
    const sealedV1 = v1Seal(secret, bytes, Buffer.from(aad));
    if (!v1Open(secret, sealedV1, Buffer.from(aad)).equals(bytes)) throw new Error(`v1 round trip failed: ${name}`);
    v1.push({ name, secret, plaintext, aad, sealed: sealedV1 });
  }
}

const header = { generator: 'crates/mosaic-seal/interop/make-vectors.mjs', node: process.version };
fs.mkdirSync(outDir, { recursive: true });
fs.writeFileSync(path.join(outDir, 'node-legacy.json'), JSON.stringify({ ...header, vectors: legacy }, null, 2) + '\n');
fs.writeFileSync(path.join(outDir, 'node-v1.json'), JSON.stringify({ ...header, vectors: v1 }, null, 2) + '\n');
console.error(`wrote ${legacy.length} legacy and ${v1.length} v1 vectors to ${outDir}`);

// Opens values sealed by Rust, with Node's own `crypto` module: the other direction of the interop tests.
//
//   node crates/mosaic-seal/interop/open.mjs < requests.json > results.json
//
// Input: a JSON array of {"format": "legacy"|"v1", "secret": ..., "sealed": ..., "aad"?: text}.
// Output: a JSON array, in the same order, of {"plaintext_base64": ...} or {"error": message}.
// Legacy values are opened exactly as the TypeScript gateway does (UTF-8 text result).
import fs from 'node:fs';
import { legacyOpen, v1Open } from './formats.mjs';

const requests = JSON.parse(fs.readFileSync(0, 'utf8'));
const results = requests.map((request) => {
  try {
    const plaintext =
      request.format === 'legacy'
        ? Buffer.from(legacyOpen(request.secret, request.sealed), 'utf8')
        : v1Open(request.secret, request.sealed, Buffer.from(request.aad ?? '', 'utf8'));
    return { plaintext_base64: plaintext.toString('base64') };
  } catch (error) {
    return { error: String(error.message ?? error) };
  }
});
process.stdout.write(JSON.stringify(results) + '\n');

// Measures the TypeScript gateway's way of sealing: key = SHA-256(secret) derived on every call, then
// AES-256-GCM with Node's `crypto`, value = base64(iv ‖ tag ‖ ciphertext). One iteration is one seal plus
// one open of a 239-byte PEM (the same text the Rust bench `benches/benches/seal.rs` uses).
//
//   node crates/mosaic-seal/interop/bench-typescript-way.mjs
//
// Prints the median, min and max time per seal+open over 51 samples (after a warm-up), in microseconds.
import { pathToFileURL } from 'node:url';
import { legacySeal, legacyOpen } from './formats.mjs';

const SECRET = 'bench-current-secret-0123456789-abcdefghijklmnop';

export function pem239() {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
  const pem = `-----BEGIN PRIVATE KEY-----\n${alphabet}\n${alphabet}\n${alphabet.slice(0, 54)}\n-----END PRIVATE KEY-----\n`;
  if (Buffer.byteLength(pem) !== 239) throw new Error('the PEM must be 239 bytes');
  return pem;
}

function sealOpen(plaintext) {
  const opened = legacyOpen(SECRET, legacySeal(SECRET, plaintext));
  if (opened.length !== plaintext.length) throw new Error('round trip failed');
}

/** Returns per-iteration times in nanoseconds: { median, min, max, samples, iterationsPerSample }. */
export function measureTypescriptWay({ samples = 51, sampleMillis = 60 } = {}) {
  const plaintext = pem239();
  // Warm up (JIT) and calibrate the iterations per sample.
  let iterations = 0;
  const warmUpEnd = process.hrtime.bigint() + 1_000_000_000n;
  while (process.hrtime.bigint() < warmUpEnd) {
    sealOpen(plaintext);
    iterations += 1;
  }
  const perSample = Math.max(1, Math.round((iterations * sampleMillis) / 1000));
  const times = [];
  for (let s = 0; s < samples; s += 1) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < perSample; i += 1) sealOpen(plaintext);
    times.push(Number(process.hrtime.bigint() - start) / perSample);
  }
  times.sort((a, b) => a - b);
  return {
    median: times[Math.floor(times.length / 2)],
    min: times[0],
    max: times[times.length - 1],
    samples,
    iterationsPerSample: perSample,
  };
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const r = measureTypescriptWay();
  const us = (ns) => (ns / 1000).toFixed(2);
  console.log(
    `typescript-way seal+open, 239-byte PEM (${process.version}): median ${us(r.median)} µs ` +
      `(min ${us(r.min)}, max ${us(r.max)}; ${r.samples} samples × ${r.iterationsPerSample} iterations)`,
  );
}

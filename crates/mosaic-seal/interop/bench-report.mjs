// Summarises a criterion run of `benches/benches/seal.rs` as a Markdown table of medians and ratios, and
// measures the TypeScript gateway's way in Node right after it for the last ratio.
//
//   cargo bench -p mosaic-benches --bench seal
//   node crates/mosaic-seal/interop/bench-report.mjs <target-dir>/criterion
import fs from 'node:fs';
import path from 'node:path';
import { measureTypescriptWay } from './bench-typescript-way.mjs';

const dir = process.argv[2];
if (!dir) {
  console.error('usage: node bench-report.mjs <target-dir>/criterion');
  process.exit(2);
}

// criterion writes <dir>/<group>/<function>/new/{benchmark,estimates}.json
const medians = new Map();
for (const group of fs.readdirSync(dir)) {
  const groupDir = path.join(dir, group);
  if (!fs.statSync(groupDir).isDirectory()) continue;
  for (const fn of fs.readdirSync(groupDir)) {
    const newDir = path.join(groupDir, fn, 'new');
    if (!fs.existsSync(path.join(newDir, 'benchmark.json'))) continue;
    const id = JSON.parse(fs.readFileSync(path.join(newDir, 'benchmark.json'), 'utf8'));
    if (!id.group_id.startsWith('seal+open/')) continue;
    const estimates = JSON.parse(fs.readFileSync(path.join(newDir, 'estimates.json'), 'utf8'));
    medians.set(`${id.group_id}|${id.function_id}`, estimates.median.point_estimate);
  }
}

const sizes = ['250B', '239B-pem', '2KiB'];
const functions = ['raw aes-gcm', 'raw aes-gcm, fixed nonce', 'raw aes-gcm with aad', 'v1', 'v1 with aad', 'legacy'];
// Each function's fair reference: the raw primitive doing the same work (same associated data).
const referenceOf = (fn) => (fn === 'v1 with aad' ? 'raw aes-gcm with aad' : 'raw aes-gcm');
const fmt = (ns) => (ns >= 1000 ? `${(ns / 1000).toFixed(2)} µs` : `${ns.toFixed(0)} ns`);

console.log('| size | function | median | ÷ raw aes-gcm | ÷ its reference | ÷ raw, fixed nonce |');
console.log('| --- | --- | ---: | ---: | ---: | ---: |');
for (const size of sizes) {
  const raw = medians.get(`seal+open/${size}|raw aes-gcm`);
  const fixed = medians.get(`seal+open/${size}|raw aes-gcm, fixed nonce`);
  for (const fn of functions) {
    const m = medians.get(`seal+open/${size}|${fn}`);
    if (m === undefined) continue;
    const reference = medians.get(`seal+open/${size}|${referenceOf(fn)}`);
    const ratio = (x) => (x === undefined ? 'n/a' : `${(m / x).toFixed(2)}×`);
    console.log(`| ${size} | ${fn} | ${fmt(m)} | ${ratio(raw)} | ${ratio(reference)} (${referenceOf(fn)}) | ${ratio(fixed)} |`);
  }
}

const ts = measureTypescriptWay();
console.log(`\nTypeScript gateway's way (Node ${process.version}, key derived per call), seal+open of the 239-byte PEM: median ${fmt(ts.median)} (min ${fmt(ts.min)}, max ${fmt(ts.max)}).`);
for (const fn of ['legacy', 'v1', 'v1 with aad']) {
  const m = medians.get(`seal+open/239B-pem|${fn}`);
  if (m !== undefined) console.log(`- mosaic-seal ${fn}: ${fmt(m)} = ${(m / ts.median).toFixed(3)}× the TypeScript way (${(ts.median / m).toFixed(1)}× faster)`);
}

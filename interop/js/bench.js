// Median time of one full verifyToken() of the vectors' "valid" token (no caching here).
// Prints one JSON line: {"median_us": ..., "runs": ..., "calls": ...}. Used by bench/interop_js.py.

import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { computeFingerprint, loadTrustedKeys, verifyToken } from './licet.js';

const doc = JSON.parse(
  readFileSync(join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'vectors', 'token.json'), 'utf8'),
);
const c = doc.cases.find((x) => x.id === 'valid');
const s = c.input.server;
const ctx = {
  keys: await loadTrustedKeys(doc.trusted_keys),
  now: Date.parse(c.now) / 1000,
  product: c.input.product,
  issuer: c.input.issuer,
  fingerprint: computeFingerprint(c.input.product, s.machine_id, s.dmi_uuid, s.macs),
  machineIdDeclared: false,
};
const calls = Number(process.argv[2] || 2000);
const runs = 7;
for (let i = 0; i < calls; i++) await verifyToken(c.input.token, ctx); // warm up
const samples = [];
for (let r = 0; r < runs; r++) {
  const start = process.hrtime.bigint();
  for (let i = 0; i < calls; i++) await verifyToken(c.input.token, ctx);
  samples.push(Number(process.hrtime.bigint() - start) / 1000 / calls);
}
samples.sort((a, b) => a - b);
console.log(JSON.stringify({ median_us: samples[Math.floor(runs / 2)], runs, calls }));

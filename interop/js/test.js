// Runs every conformance vector in ../../vectors through this verifier (licet.js).
// Exits non-zero on any disagreement; prints the pass count per file and in total.

import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  LicetError,
  REQUEST,
  RENEWAL,
  applyRevocations,
  computeFingerprint,
  encodeCode,
  fingerprintMatches,
  loadTrustedKeys,
  normalizeKey,
  parseFingerprint,
  parseRenewalCode,
  parseRequestCode,
  productKey,
  unverifiedClaims,
  verifyToken,
} from './licet.js';

const VECTORS = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'vectors');
const FILES = ['activation_key', 'request_code', 'renewal_code', 'fingerprint', 'token', 'revocation_list'];
const seconds = (iso) => Date.parse(iso) / 1000;

function sorted(v) {
  if (Array.isArray(v)) return v.map(sorted);
  if (v !== null && typeof v === 'object') {
    return Object.fromEntries(Object.keys(v).sort().map((k) => [k, sorted(v[k])]));
  }
  return v;
}
const same = (a, b) => JSON.stringify(sorted(a)) === JSON.stringify(sorted(b));

const runners = {
  activation_key: async (c) => ({ key: normalizeKey(c.input.text) }),

  request_code: async (c) => {
    const { obj, ...fields } = parseRequestCode(c.input.code);
    // A valid code is canonical: encoding its object again gives the code back.
    if (encodeCode(obj, REQUEST) !== c.input.code.replace(/\s/g, '')) throw new Error('re-encoding differs');
    return fields;
  },

  renewal_code: async (c) => {
    const { obj, ...fields } = parseRenewalCode(c.input.code);
    if (encodeCode(obj, RENEWAL) !== c.input.code.replace(/\s/g, '')) throw new Error('re-encoding differs');
    return fields;
  },

  fingerprint: async (c) => {
    const i = c.input;
    if (i.op === 'compute') {
      const fingerprint = computeFingerprint(i.product, i.machine_id, i.dmi_uuid, i.macs);
      return { product_key: productKey(i.product).toString('hex'), fingerprint };
    }
    if (i.op === 'match') return { matches: fingerprintMatches(i.bound, i.current) };
    return { fingerprint: parseFingerprint(i.fingerprint) };
  },

  token: async (c, keys) => {
    const i = c.input;
    const now = seconds(c.now);
    const s = i.server;
    let revocations = null;
    if (i.revocation_list != null) revocations = await applyRevocations(null, i.revocation_list, keys, i.issuer);
    let refusal = null;
    if (i.renewal_refusal != null) {
      const held = unverifiedClaims(i.renewal_refusal.token);
      refusal = { code: i.renewal_refusal.code, license_id: held.sub, activation_id: held.jti, token_iat: held.iat };
    }
    return verifyToken(i.token, {
      keys,
      now,
      product: i.product,
      issuer: i.issuer,
      fingerprint: computeFingerprint(i.product, s.machine_id, s.dmi_uuid, s.macs ?? []),
      machineIdDeclared: i.machine_id_declared,
      clockMark: i.clock_mark ?? null,
      revocations,
      refusal,
    });
  },

  revocation_list: async (c, keys) => {
    const i = c.input;
    let held = null;
    for (const text of i.applied ?? []) held = await applyRevocations(held, text, keys, i.issuer);
    const list = await applyRevocations(held, i.list, keys, i.issuer);
    return {
      issuer: list.issuer,
      serial: list.serial,
      iat: list.iat,
      exp: list.exp,
      licenses: [...list.licenses].sort(),
      activations: [...list.activations].sort(),
      stale: seconds(c.now) >= list.exp,
    };
  },
};

let passed = 0;
let failed = 0;
for (const name of FILES) {
  const doc = JSON.parse(readFileSync(join(VECTORS, `${name}.json`), 'utf8'));
  if (doc.format !== name || doc.version !== 1) throw new Error(`${name}.json: unknown format or version`);
  const keys = await loadTrustedKeys(doc.trusted_keys);
  let filePassed = 0;
  for (const c of doc.cases) {
    let got;
    try {
      got = { ok: true, ...(await runners[name](c, keys)) };
    } catch (err) {
      got = err instanceof LicetError ? { error: err.code, check: err.check } : { crash: String(err) };
    }
    if (same(got, c.expect)) {
      filePassed++;
    } else {
      failed++;
      console.log(`FAIL ${name}:${c.id} — ${c.description}\n  expected ${JSON.stringify(c.expect)}\n  got      ${JSON.stringify(got)}`);
    }
  }
  passed += filePassed;
  console.log(`${name}: ${filePassed}/${doc.cases.length}`);
}
console.log(`interop/js: ${passed} of ${passed + failed} vectors pass`);
process.exit(failed === 0 ? 0 : 1);

// An independent verifier of the licet protocol (docs/PROTOCOL.md), for Node 20+.
//
// Written from the protocol document, not from licet's Python code. Signatures are
// checked by the `jose` package; everything licet pins on top of JOSE (strict
// base64url and JSON, the header values, the order of checks and the code of each
// refusal) is done here, section by section of the document.

import { createHash, createHmac } from 'node:crypto';
import { compactVerify, importJWK } from 'jose';

/** A refusal: `code` is the protocol's stable code (§11), `check` which check failed. */
export class LicetError extends Error {
  constructor(code, check, message) {
    super(message || `${code} (${check})`);
    this.code = code;
    this.check = check;
  }
}

// ---------------------------------------------------------------- §1 conventions

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/** Strict unpadded base64url (§1): one spelling per byte string, or null. */
export function b64urlDecode(text) {
  if (typeof text !== 'string' || text.length % 4 === 1) return null;
  let bits = 0;
  let value = 0;
  const out = [];
  for (const ch of text) {
    const v = B64.indexOf(ch);
    if (v < 0) return null;
    value = (value << 6) | v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push((value >> bits) & 0xff);
    }
  }
  if (bits > 0 && (value & ((1 << bits) - 1)) !== 0) return null; // stray bits in the tail
  return Uint8Array.from(out);
}

export function b64urlEncode(bytes) {
  return Buffer.from(bytes).toString('base64url');
}

/** A JSON number written with a fraction or exponent: never an integer for the protocol. */
export class JsonFloat {
  constructor(value) {
    this.value = value;
  }
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });

/** Strict JSON (§1): UTF-8, no duplicate members, numbers keep whether they were integers. */
export function parseJson(bytes) {
  const text = typeof bytes === 'string' ? bytes : UTF8.decode(bytes); // throws on bad UTF-8
  let i = 0;
  const ws = () => {
    while (i < text.length && ' \t\n\r'.includes(text[i])) i++;
  };
  const fail = () => {
    throw new SyntaxError(`bad JSON at ${i}`);
  };
  const string = () => {
    const start = i++;
    while (i < text.length && text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
    if (i >= text.length) fail();
    i++;
    return JSON.parse(text.slice(start, i));
  };
  const NUMBER = /-?(?:0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/y;
  const value = () => {
    ws();
    const ch = text[i];
    if (ch === '{') {
      i++;
      const obj = Object.create(null);
      ws();
      if (text[i] === '}') {
        i++;
        return obj;
      }
      for (;;) {
        ws();
        if (text[i] !== '"') fail();
        const name = string();
        if (Object.prototype.hasOwnProperty.call(obj, name)) throw new SyntaxError(`duplicate member ${name}`);
        ws();
        if (text[i++] !== ':') fail();
        obj[name] = value();
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i++] !== '}') fail();
        return obj;
      }
    }
    if (ch === '[') {
      i++;
      const arr = [];
      ws();
      if (text[i] === ']') {
        i++;
        return arr;
      }
      for (;;) {
        arr.push(value());
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i++] !== ']') fail();
        return arr;
      }
    }
    if (ch === '"') return string();
    for (const [word, v] of [['true', true], ['false', false], ['null', null]]) {
      if (text.startsWith(word, i)) {
        i += word.length;
        return v;
      }
    }
    NUMBER.lastIndex = i;
    const m = NUMBER.exec(text);
    if (!m) fail();
    i += m[0].length;
    const n = Number(m[0]);
    return m[1] || m[2] ? new JsonFloat(n) : n;
  };
  const result = value();
  ws();
  if (i !== text.length) fail();
  return result;
}

/** Canonical JSON (§1): compact, members sorted by name, UTF-8. */
export function canonicalJson(v) {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (v instanceof JsonFloat) return JSON.stringify(v.value);
  if (v !== null && typeof v === 'object') {
    const names = Object.keys(v).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${names.map((k) => `${JSON.stringify(k)}:${canonicalJson(v[k])}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof JsonFloat);
const isInt = (v) => typeof v === 'number' && Number.isInteger(v);
export const isEpoch = (v) => isInt(v) && v >= 0 && v <= 253402300799;
const codePoints = (s) => [...s].length;
const isText = (v, max) => typeof v === 'string' && v.length > 0 && codePoints(v) <= max;

// ---------------------------------------------------------------- §2 activation key

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const LOOKALIKE = { O: '0', I: '1', L: '1' };

function luhn32(values) {
  let sum = 0;
  values
    .slice()
    .reverse()
    .forEach((v, pos) => {
      if (pos % 2 === 0) {
        const d = v * 2;
        sum += Math.floor(d / 32) + (d % 32);
      } else sum += v;
    });
  return (((-sum) % 32) + 32) % 32;
}

/** §2: the canonical display form of a typed key, or a `malformed-activation-key` refusal. */
export function normalizeKey(text) {
  const refuse = (check) => {
    throw new LicetError('malformed-activation-key', check);
  };
  if (typeof text !== 'string') refuse('type');
  if (text.length > 64) refuse('length');
  const chars = text.replace(/\s|-/g, '').toUpperCase();
  if ([...chars].length !== 24) refuse('length');
  const mapped = [...chars].map((c) => LOOKALIKE[c] || c);
  if (mapped.some((c) => !CROCKFORD.includes(c))) refuse('character');
  const values = mapped.map((c) => CROCKFORD.indexOf(c));
  if (luhn32(values.slice(0, 23)) !== values[23]) refuse('checksum');
  const flat = mapped.join('');
  return flat.match(/.{4}/g).join('-');
}

// ---------------------------------------------------------------- §3 codes

export const REQUEST = { prefix: 'LICET1.', code: 'invalid-request-code' };
export const RENEWAL = { prefix: 'LICET1R.', code: 'invalid-renewal-code' };
const HOST = /^[A-Za-z0-9._-]{0,253}$/;

function sha256(bytes) {
  return createHash('sha256').update(bytes).digest();
}

/** §3.1: the object inside a code, after every envelope check. */
export function openCode(text, kind) {
  const refuse = (check) => {
    throw new LicetError(kind.code, check);
  };
  if (typeof text !== 'string') refuse('type');
  const code = text.replace(/\s/g, '');
  if (code.length > 4096) refuse('length');
  if (!code.startsWith(kind.prefix)) refuse(code.startsWith('LICET') && code.includes('.') ? 'version' : 'prefix');
  const raw = b64urlDecode(code.slice(kind.prefix.length));
  if (raw === null) refuse('encoding');
  if (raw.length <= 4) refuse('checksum');
  const body = raw.subarray(0, raw.length - 4);
  if (!sha256(body).subarray(0, 4).equals(Buffer.from(raw.subarray(raw.length - 4)))) refuse('checksum');
  let obj;
  try {
    obj = parseJson(body);
  } catch {
    refuse('json');
  }
  if (!isObject(obj) || obj.v !== 1) refuse('layout');
  return obj;
}

/** §3.1 in reverse: the code of an object. */
export function encodeCode(obj, kind) {
  const body = Buffer.from(canonicalJson(obj), 'utf8');
  return kind.prefix + b64urlEncode(Buffer.concat([body, sha256(body).subarray(0, 4)]));
}

function fieldChecks(obj, kind, names) {
  const refuse = () => {
    throw new LicetError(kind.code, 'field');
  };
  const checks = {
    product: () => isText(obj.product, 253),
    host: () => obj.host === undefined || (typeof obj.host === 'string' && HOST.test(obj.host)),
    nonce: () => isText(obj.nonce, 253),
    ts: () => isEpoch(obj.ts),
    fp: () => {
      try {
        parseFingerprint(obj.fp);
        return true;
      } catch {
        return false;
      }
    },
    idk: () => obj.idk === undefined || obj.idk === 'hardware' || obj.idk === 'machine-id',
    lic: () => isText(obj.lic, 253),
    act: () => isText(obj.act, 253),
  };
  for (const name of names) if (!checks[name]()) refuse();
}

/** §3.2 */
export function parseRequestCode(text) {
  const obj = openCode(text, REQUEST);
  fieldChecks(obj, REQUEST, ['product', 'host', 'nonce', 'ts', 'fp', 'idk']);
  return {
    obj,
    product: obj.product,
    activation_key: normalizeKey(obj.key),
    fingerprint: obj.fp,
    hostname: obj.host ?? '',
    nonce: obj.nonce,
    created_at: obj.ts,
    identity: obj.idk ?? 'hardware',
  };
}

/** §3.3 */
export function parseRenewalCode(text) {
  const obj = openCode(text, RENEWAL);
  fieldChecks(obj, RENEWAL, ['product', 'lic', 'act', 'fp', 'host', 'nonce', 'ts']);
  return {
    obj,
    product: obj.product,
    license_id: obj.lic,
    activation_id: obj.act,
    fingerprint: obj.fp,
    hostname: obj.host ?? '',
    nonce: obj.nonce,
    created_at: obj.ts,
  };
}

// ---------------------------------------------------------------- §4 fingerprint

const WEIGHT = { mid: 2, uuid: 2, mac: 1 };
const MOST = { mid: 1, uuid: 1, mac: 8 };
const COMPONENT = /^(mid|uuid|mac):[0-9a-f]{32}$/;
const BOGUS_UUIDS = new Set(['00000000-0000-0000-0000-000000000000', 'ffffffff-ffff-ffff-ffff-ffffffffffff']);

export function productKey(product) {
  return sha256(Buffer.concat([Buffer.from('licet/fingerprint/v1\0'), Buffer.from(product, 'utf8')]));
}

/** §4.2: the fingerprint of explicit component values. */
export function computeFingerprint(product, machineId, dmiUuid, macs = []) {
  if (typeof product !== 'string' || product === '') throw new LicetError('bad-input', 'product');
  const key = productKey(product);
  const component = (kind, value) =>
    `${kind}:${createHmac('sha256', key).update(`${kind}\0${value}`, 'utf8').digest('hex').slice(0, 32)}`;
  const parts = [];
  const mid = (machineId ?? '').trim();
  if (mid) parts.push(component('mid', mid));
  const uuid = (dmiUuid ?? '').trim().toLowerCase();
  if (uuid && !BOGUS_UUIDS.has(uuid)) parts.push(component('uuid', uuid));
  const clean = [...new Set(macs.map((m) => m.trim().toLowerCase()))]
    .filter((m) => m && m !== '00:00:00:00:00:00')
    .sort();
  for (const mac of clean.slice(0, MOST.mac)) parts.push(component('mac', mac));
  if (parts.length === 0) throw new LicetError('bad-input', 'components');
  return parts;
}

/** §4.3: a fingerprint received from elsewhere. */
export function parseFingerprint(value) {
  if (!Array.isArray(value) || value.length === 0) throw new LicetError('bad-input', 'type');
  const counts = { mid: 0, uuid: 0, mac: 0 };
  for (const part of value) {
    if (typeof part !== 'string' || !COMPONENT.test(part)) throw new LicetError('bad-input', 'component');
    counts[part.split(':')[0]]++;
  }
  if (new Set(value).size !== value.length) throw new LicetError('bad-input', 'duplicate');
  if (Object.keys(MOST).some((k) => counts[k] > MOST[k])) throw new LicetError('bad-input', 'count');
  return value;
}

const weight = (parts) => parts.reduce((sum, p) => sum + WEIGHT[p.split(':')[0]], 0);

/** §4.5: kept components weigh strictly more than half of the bound ones. */
export function fingerprintMatches(bound, current) {
  const here = new Set(current);
  return 2 * weight(bound.filter((p) => here.has(p))) > weight(bound);
}

// ---------------------------------------------------------------- §5 trusted keys

// Ed25519 (RFC 8032 §5.1.3 decoding) over p = 2^255 - 19, to refuse keys that are not a
// canonical curve point or that have small order (§5): the identity and its kin let forged
// signatures verify.
const P = 2n ** 255n - 19n;
const mod = (a) => ((a % P) + P) % P;
const power = (b, e) => {
  let r = 1n;
  b = mod(b);
  for (; e > 0n; e >>= 1n, b = mod(b * b)) if (e & 1n) r = mod(r * b);
  return r;
};
const inv = (a) => power(a, P - 2n);
const D = mod(-121665n * inv(121666n));
const SQRT_M1 = power(2n, (P - 1n) / 4n);

function decodePoint(raw) {
  let n = 0n;
  for (let i = 31; i >= 0; i--) n = (n << 8n) | BigInt(raw[i]);
  const sign = n >> 255n;
  const y = n & ((1n << 255n) - 1n);
  if (y >= P) return null; // not canonical
  const u = mod(y * y - 1n);
  const v = mod(D * y * y + 1n);
  const x2 = mod(u * inv(v));
  let x = power(x2, (P + 3n) / 8n);
  if (mod(x * x - x2) !== 0n) x = mod(x * SQRT_M1);
  if (mod(x * x - x2) !== 0n) return null; // not on the curve
  if (x === 0n && sign === 1n) return null;
  if ((x & 1n) !== sign) x = P - x;
  return [x, y];
}

function double([x, y]) {
  const t = mod(D * x * x * y * y);
  return [mod((2n * x * y) * inv(1n + t)), mod((y * y + x * x) * inv(1n - t))];
}

/** Whether 32 bytes are a usable Ed25519 public key: a canonical point of large order. */
export function usableKey(raw) {
  let point = decodePoint(raw);
  if (point === null) return false;
  for (let i = 0; i < 3; i++) point = double(point); // cofactor 8
  return !(point[0] === 0n && point[1] === 1n);
}

/** §5: the trusted-keys JWKS, checked; keys imported for jose. */
export async function loadTrustedKeys(jwks) {
  if (!isObject(jwks) || !Array.isArray(jwks.keys) || jwks.keys.length === 0) {
    throw new LicetError('invalid-trusted-keys', 'document');
  }
  const keys = new Map();
  for (const jwk of jwks.keys) {
    const refuse = (why) => {
      throw new LicetError('invalid-trusted-keys', why);
    };
    if (!isObject(jwk) || jwk.kty !== 'OKP' || jwk.crv !== 'Ed25519') refuse('kty');
    if ((jwk.alg ?? 'EdDSA') !== 'EdDSA' || (jwk.use ?? 'sig') !== 'sig') refuse('alg');
    if ('d' in jwk) refuse('private');
    const status = jwk.licet_status ?? 'active';
    if (typeof jwk.kid !== 'string' || !['active', 'retired', 'revoked'].includes(status)) refuse('kid');
    const raw = b64urlDecode(jwk.x);
    if (raw === null || raw.length !== 32 || !usableKey(raw)) refuse('x');
    if (sha256(raw).toString('hex').slice(0, 16) !== jwk.kid) refuse('kid');
    const notBefore = jwk.licet_not_before ?? 0;
    const notAfter = jwk.licet_not_after ?? null;
    if (!isEpoch(notBefore) || (notAfter !== null && !isEpoch(notAfter))) refuse('window');
    if (keys.has(jwk.kid)) refuse('duplicate');
    const key = await importJWK({ kty: 'OKP', crv: 'Ed25519', x: jwk.x }, 'EdDSA');
    keys.set(jwk.kid, { key, status, notBefore, notAfter });
  }
  return keys;
}

// ---------------------------------------------------------------- §6 and §7: compact JWS

/** The steps §6.2 and §7.2 share, up to a verified payload. `fail(check)` throws. */
async function openJws(jws, keys, typ, fail, keyFail) {
  const parts = jws.split('.');
  if (parts.length !== 3) fail('format');
  let header;
  try {
    header = parseJson(b64urlDecode(parts[0]) ?? fail('header'));
  } catch (err) {
    if (err instanceof LicetError) throw err;
    fail('header');
  }
  if (!isObject(header)) fail('header');
  if (header.alg !== 'EdDSA') fail('alg');
  if (header.typ !== typ) fail('typ');
  if ('crit' in header) fail('crit');
  return { parts, header };
}

async function checkSignature(jws, parts, header, keys, fail, keyFail) {
  const entry = typeof header.kid === 'string' ? keys.get(header.kid) : undefined;
  if (entry === undefined) keyFail('untrusted-key', 'kid');
  if (entry.status === 'revoked') keyFail('signing-key-revoked', 'key-revoked');
  const signature = b64urlDecode(parts[2]);
  if (signature === null || signature.length !== 64) fail('signature');
  try {
    // jose verifies over the exact bytes received; the header was vetted above.
    await compactVerify(jws, entry.key, { algorithms: ['EdDSA'] });
  } catch {
    fail('signature');
  }
  let payload;
  try {
    payload = parseJson(b64urlDecode(parts[1]) ?? fail('payload'));
  } catch (err) {
    if (err instanceof LicetError) throw err;
    fail('payload');
  }
  if (!isObject(payload)) fail('payload');
  return { payload, entry };
}

const inWindow = (entry, iat) => iat >= entry.notBefore && (entry.notAfter === null || iat <= entry.notAfter);

// ---------------------------------------------------------------- §6 activation token

const TOKEN_TYP = 'licet+jwt';

/** §6.1: the claims, or null when one is missing or malformed. */
function readClaims(c) {
  const required = ['iss', 'sub', 'aud', 'jti', 'iat', 'nbf', 'exp', 'fpr', 'features', 'limits', 'renew_at', 'license_exp', 'idk'];
  if (required.some((n) => !(n in c))) return null;
  try {
    parseFingerprint(c.fpr);
  } catch {
    return null;
  }
  if (c.ip !== undefined && c.ip !== null && !(typeof c.ip === 'string' && codePoints(c.ip) <= 256)) return null;
  if (c.license_exp !== null && !isEpoch(c.license_exp)) return null;
  if (c.idk !== 'hardware' && c.idk !== 'machine-id') return null;
  if (!['sub', 'aud', 'iss', 'jti'].every((n) => isText(c[n], 256))) return null;
  if (!Array.isArray(c.features) || c.features.length > 64 || !c.features.every((f) => isText(f, 256))) return null;
  if (!isObject(c.limits) || Object.keys(c.limits).length > 64) return null;
  if (!Object.entries(c.limits).every(([k, v]) => isInt(v) && k.length > 0 && codePoints(k) <= 256)) return null;
  if (!['iat', 'nbf', 'exp', 'renew_at'].every((n) => isEpoch(c[n]))) return null;
  return c;
}

/** The claims of a token read without its signature (§3.3, §8.2), or null. */
export function unverifiedClaims(token) {
  try {
    const c = parseJson(b64urlDecode(token.split('.')[1]));
    return isObject(c) ? c : null;
  } catch {
    return null;
  }
}

/**
 * §6.2: verify a token, in the document's order.
 *
 * @param {string} token
 * @param {object} ctx {keys, product, issuer, fingerprint, machineIdDeclared, now, leeway,
 *   clockMark, tolerance, revocations (list in force or null), refusal (or null)}
 * @returns {Promise<object>} the license and its state
 */
export async function verifyToken(token, ctx) {
  const leeway = ctx.leeway ?? 60;
  const now = ctx.now;
  const invalid = (check) => {
    throw new LicetError('invalid-token', check);
  };
  const refuse = (code, check) => {
    throw new LicetError(code, check);
  };
  if (ctx.clockMark != null && now < ctx.clockMark - (ctx.tolerance ?? 3600)) refuse('clock-rollback', 'clock');
  if (typeof token !== 'string') invalid('format');
  if (token.length > 8192) refuse('token-too-large', 'size');
  if (!/^[\x00-\x7f]*$/.test(token)) invalid('format');
  const { parts, header } = await openJws(token, ctx.keys, TOKEN_TYP, invalid);
  const { payload, entry } = await checkSignature(token, parts, header, ctx.keys, invalid, refuse);
  const c = readClaims(payload);
  if (c === null) invalid('claims');
  if (!inWindow(entry, c.iat)) refuse('untrusted-key', 'key-window');
  if (c.aud !== ctx.product) invalid('product');
  if (ctx.issuer != null && c.iss !== ctx.issuer) invalid('issuer');
  if (c.iat > now + leeway) refuse('token-not-yet-valid', 'iat');
  const list = ctx.revocations;
  if (list && list.issuer === c.iss) {
    if (list.licenses.has(c.sub)) refuse('license-revoked', 'revoked');
    if (list.activations.has(c.jti)) refuse('activation-superseded', 'superseded');
  }
  const r = ctx.refusal;
  if (r && r.license_id === c.sub && r.activation_id === c.jti && c.iat <= r.token_iat) refuse(r.code, 'refusal');
  if (c.exp <= now - leeway) refuse('token-expired', 'exp');
  if (c.nbf > now + leeway) refuse('token-not-yet-valid', 'nbf');
  if (!fingerprintMatches(c.fpr, ctx.fingerprint)) refuse('wrong-server', 'fingerprint');
  if (ctx.machineIdDeclared && c.idk !== 'machine-id') refuse('wrong-server', 'identity');
  return {
    state: now >= c.renew_at ? 'grace' : 'valid',
    license_id: c.sub,
    product: c.aud,
    issuer: c.iss,
    activation_id: c.jti,
    features: [...new Set(c.features)].sort(),
    limits: c.limits,
    iat: c.iat,
    nbf: c.nbf,
    exp: c.exp,
    renew_at: c.renew_at,
    license_exp: c.license_exp,
    fingerprint: c.fpr,
    ip: c.ip ?? null,
    identity: c.idk,
  };
}

// ---------------------------------------------------------------- §7 revocation list

const LIST_TYP = 'licet-revocations+jwt';

/** §7.2: check a list. `issuer`: the configured one, else the issuer of the list held. */
export async function parseRevocations(text, keys, issuer) {
  const bad = (check) => {
    throw new LicetError('invalid-revocations', check);
  };
  if (typeof text !== 'string') bad('format');
  if (text.length > 4 * 1024 * 1024) bad('size');
  const jws = text.trim();
  const { parts, header } = await openJws(jws, keys, LIST_TYP, bad);
  if (!/^[\x00-\x7f]*$/.test(jws)) bad('format');
  const { payload: c, entry } = await checkSignature(jws, parts, header, keys, bad, (_code, check) => bad(check));
  if (!isText(c.iss, Infinity)) bad('claims');
  if (issuer != null && c.iss !== issuer) bad('issuer');
  if (!isInt(c.serial) || c.serial < 0) bad('claims');
  if (!isEpoch(c.iat) || !isEpoch(c.exp)) bad('claims');
  if (!inWindow(entry, c.iat)) bad('key-window');
  if (!isObject(c.revoked)) bad('claims');
  const ids = (v) => {
    if (!Array.isArray(v) || !v.every((id) => isText(id, 256))) bad('claims');
    return new Set(v);
  };
  return {
    issuer: c.iss,
    serial: c.serial,
    iat: c.iat,
    exp: c.exp,
    licenses: ids(c.revoked.licenses),
    activations: ids(c.revoked.activations),
  };
}

/** §7.3: the list in force after applying `text` over `held` (or null). */
export async function applyRevocations(held, text, keys, configuredIssuer) {
  const list = await parseRevocations(text, keys, configuredIssuer ?? held?.issuer ?? null);
  if (held) {
    if (list.serial < held.serial) throw new LicetError('revocations-rollback', 'rollback');
    if (list.serial === held.serial && list.iat <= held.iat) return held;
  }
  return list;
}

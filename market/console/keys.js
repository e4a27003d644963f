// Stellar strkeys and the `tally-v2` request signature, in the browser.
//
// message = "tally-v2\n{NETWORK}\n{OPERATOR}\n{METHOD}\n{PATH_AND_QUERY}\n{TIMESTAMP}\n{NONCE}\n{hex sha256 of body}"
// signed with Ed25519 (WebCrypto), sent in the X-Tally-* headers. NETWORK
// and OPERATOR (this market's network passphrase and operator account, from
// GET /v1/market) bind a signature to this one market. The seed
// is decoded once into a non-extractable CryptoKey; the bytes are wiped
// and nothing is stored.

import { api, b64decode, b64encode, hex, sha256hex } from './util.js';

const SCHEME = 'tally-v2';
let domain = null;

/** This market's network passphrase and operator account, which every
 *  signature names (read once from GET /v1/market). */
export function marketDomain() {
  if (!domain) {
    domain = api('/v1/market')
      .then((m) => ({ network: m.network, operator: m.operator }))
      .catch((e) => {
        domain = null;
        throw e;
      });
  }
  return domain;
}

/** The exact text signed for a request on this market. */
async function messageText(method, pathAndQuery, timestamp, nonce, body) {
  const { network, operator } = await marketDomain();
  return [
    SCHEME, network, operator, method.toUpperCase(), pathAndQuery, timestamp, nonce, await sha256hex(body),
  ].join('\n');
}

const B32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
const VERSION_ACCOUNT = 6 << 3; // 'G'
const VERSION_SEED = 18 << 3; // 'S'
// PKCS#8 wrapping of a raw Ed25519 seed (RFC 8410).
const PKCS8_PREFIX = [0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20];

function base32Decode(s) {
  const out = [];
  let bits = 0;
  let value = 0;
  for (const ch of s) {
    const i = B32.indexOf(ch);
    if (i < 0) throw new Error(`not base32: ${JSON.stringify(ch)}`);
    value = ((value << 5) | i) & 0x1fff;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out.push((value >>> bits) & 0xff);
    }
  }
  return new Uint8Array(out);
}

function base32Encode(bytes) {
  let out = '';
  let bits = 0;
  let value = 0;
  for (const b of bytes) {
    value = ((value << 8) | b) & 0xfff;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out += B32[(value >>> bits) & 31];
    }
  }
  if (bits > 0) out += B32[(value << (5 - bits)) & 31];
  return out;
}

/** CRC16-XModem, the strkey checksum. */
function crc16(bytes) {
  let crc = 0;
  for (const b of bytes) {
    crc ^= b << 8;
    for (let i = 0; i < 8; i++) {
      crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    }
  }
  return crc;
}

/** The 32 bytes of a `G...` or `S...` strkey, checked. */
export function decodeStrkey(text, version) {
  if (typeof text !== 'string' || text.length !== 56) throw new Error('a strkey is 56 characters');
  const raw = base32Decode(text);
  if (raw.length !== 35 || raw[0] !== version) {
    throw new Error(version === VERSION_SEED ? 'not an S… secret seed' : 'not a G… account');
  }
  const crc = crc16(raw.subarray(0, 33));
  if ((raw[33] | (raw[34] << 8)) !== crc) throw new Error('the strkey checksum does not match (a typo?)');
  if (encodeStrkey(raw.subarray(1, 33), version) !== text) throw new Error('not a canonical strkey');
  return raw.slice(1, 33);
}

export function encodeStrkey(key, version) {
  const raw = new Uint8Array(35);
  raw[0] = version;
  raw.set(key, 1);
  const crc = crc16(raw.subarray(0, 33));
  raw[33] = crc & 0xff;
  raw[34] = crc >>> 8;
  return base32Encode(raw);
}

export function isAccount(text) {
  try {
    decodeStrkey(text, VERSION_ACCOUNT);
    return true;
  } catch (_) {
    return false;
  }
}

function needSubtle() {
  if (!globalThis.crypto || !crypto.subtle) {
    throw new Error('WebCrypto is unavailable here: open the console over https or on localhost');
  }
}

function b64urlDecode(s) {
  const std = s.replace(/-/g, '+').replace(/_/g, '/');
  return b64decode(std + '='.repeat((4 - (std.length % 4)) % 4));
}

/** A key that signs requests; made from an `S...` seed. */
export class Signer {
  constructor(key, account) {
    this.key = key;
    this.account = account;
  }

  static async fromSecret(secret) {
    needSubtle();
    const seed = decodeStrkey(String(secret).trim(), VERSION_SEED);
    const pkcs8 = new Uint8Array(48);
    pkcs8.set(PKCS8_PREFIX);
    pkcs8.set(seed, 16);
    try {
      // Extractable once, only to read the public key; then a
      // non-extractable copy is kept.
      const once = await crypto.subtle.importKey('pkcs8', pkcs8, { name: 'Ed25519' }, true, ['sign']);
      const jwk = await crypto.subtle.exportKey('jwk', once);
      const key = await crypto.subtle.importKey('pkcs8', pkcs8, { name: 'Ed25519' }, false, ['sign']);
      return new Signer(key, encodeStrkey(b64urlDecode(jwk.x), VERSION_ACCOUNT));
    } catch (e) {
      throw new Error(`this browser cannot sign with Ed25519 (${e && e.message || e})`);
    } finally {
      seed.fill(0);
      pkcs8.fill(0);
    }
  }

  /** The four X-Tally-* headers for a request. */
  async headers(method, pathAndQuery, body = new Uint8Array(0)) {
    const timestamp = Date.now();
    const nonce = hex(crypto.getRandomValues(new Uint8Array(16)));
    const message = await messageText(method, pathAndQuery, timestamp, nonce, body);
    const sig = await crypto.subtle.sign({ name: 'Ed25519' }, this.key, new TextEncoder().encode(message));
    return {
      'X-Tally-Account': this.account,
      'X-Tally-Timestamp': String(timestamp),
      'X-Tally-Nonce': nonce,
      'X-Tally-Signature': b64encode(new Uint8Array(sig)),
    };
  }
}

/** Whether `account` signed `message` (bytes); `null` when this browser
 *  cannot check Ed25519 signatures. */
export async function verify(account, message, signatureB64) {
  try {
    needSubtle();
    const pub = await crypto.subtle.importKey(
      'raw', decodeStrkey(account, VERSION_ACCOUNT), { name: 'Ed25519' }, false, ['verify'],
    );
    return await crypto.subtle.verify({ name: 'Ed25519' }, pub, b64decode(signatureB64), message);
  } catch (_) {
    return null;
  }
}

/** A worker's signed result message (`POST /v1/assignments/{id}/result`). */
export async function resultMessage(r, body) {
  return signedMessage('POST', `/v1/assignments/${r.assignment}/result`, r, body);
}

/** The `tally-v2` message a reviewer signed for a review in the evidence. */
export async function reviewMessage(r, body) {
  return signedMessage('POST', `/v1/reviews/${r.review}`, r, body);
}

async function signedMessage(method, path, r, body) {
  const text = await messageText(method, path, r.timestamp, r.nonce, body);
  return new TextEncoder().encode(text);
}

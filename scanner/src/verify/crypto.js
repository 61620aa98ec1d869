// Signature checks through WebCrypto (globalThis.crypto.subtle: browsers and Node 20), as
// verifier/crypto.py: ES256 (raw r||s, P-256; also P-384, as some issuers signed), PS256 (RSASSA-PSS, SHA-256, MGF1-SHA-256, salt
// 32; RSA 2048-16384 bits, odd exponent >= 3); ES384/ES512 for trust lists.

import { CoseAlg } from "./cose.js";
import { readTlv, children } from "./x509.js";

const subtle = globalThis.crypto.subtle;
export const MIN_RSA_BITS = 2048;
export const MAX_RSA_BITS = 16384;
export const PS256_SALT_LENGTH = 32;
const EC_ALGS = {
  [CoseAlg.ES256]: { hash: "SHA-256", curve: "P-256", size: 32 },
  [CoseAlg.ES384]: { hash: "SHA-384", curve: "P-384", size: 48 },
  [CoseAlg.ES512]: { hash: "SHA-512", curve: "P-521", size: 66 },
};

export async function sha256(data) {
  return new Uint8Array(await subtle.digest("SHA-256", data));
}

/** hcert 1.x section 3.3.1: the first 8 bytes of SHA-256 over the DSC's DER. */
export async function kidForCertificate(der) {
  return (await sha256(der)).subarray(0, 8);
}

// ES256 is also verified with a P-384 key (verifier/crypto.py _ES256_EXTRA_CURVES: Spain's
// Illes Balears signed so; the official EU vectors ES/401-403 expect it to verify).
const ES256_EXTRA_CURVES = { "P-384": 48 };

function ecAlg(alg) {
  return typeof alg === "number" ? EC_ALGS[alg] || null : null;
}

/** The ECDSA parameters for this key and COSE alg (ES256 on P-384 included), or null. */
function ecAlgFor(key, alg) {
  const ec = ecAlg(alg);
  if (ec && alg === CoseAlg.ES256 && key.curve in ES256_EXTRA_CURVES) {
    return { ...ec, curve: key.curve, size: ES256_EXTRA_CURVES[key.curve] };
  }
  return ec;
}

function rsaKeyOk(key) {
  return key.bits >= MIN_RSA_BITS && key.bits <= MAX_RSA_BITS && key.e >= 3n && key.e % 2n === 1n;
}

const cache = new WeakMap();

async function imported(key, name, params) {
  let perKey = cache.get(key);
  if (!perKey) cache.set(key, (perKey = new Map()));
  const id = `${name}/${params.namedCurve || params.hash || ""}`;
  if (!perKey.has(id)) {
    perKey.set(id, subtle.importKey("spki", key.spki, { name, ...params }, false, ["verify"]));
  }
  return perKey.get(id);
}

/** True when `signature` (COSE form) over `data` verifies; never throws. */
export async function verifySignature(key, alg, data, signature) {
  try {
    if (!key) return false;
    const ec = key.kind === "ec" ? ecAlgFor(key, alg) : null;
    if (ec) {
      if (signature.length !== 2 * ec.size || key.curve !== ec.curve) return false;
      const k = await imported(key, "ECDSA", { namedCurve: ec.curve });
      return await subtle.verify({ name: "ECDSA", hash: ec.hash }, k, signature, data);
    }
    if (key.kind === "rsa" && alg === CoseAlg.PS256) {
      if (!rsaKeyOk(key)) return false;
      const k = await imported(key, "RSA-PSS", { hash: "SHA-256" });
      return await subtle.verify({ name: "RSA-PSS", saltLength: PS256_SALT_LENGTH }, k, signature, data);
    }
  } catch {
    return false;
  }
  return false;
}

/** Whether the key can be read and used by WebCrypto at all (an EC point off its curve is not). */
export async function keyReadable(key) {
  try {
    if (key.kind === "ec" && ["P-256", "P-384", "P-521"].includes(key.curve)) {
      await imported(key, "ECDSA", { namedCurve: key.curve });
    } else if (key.kind === "rsa" && rsaKeyOk(key)) {
      await imported(key, "RSA-PSS", { hash: "SHA-256" });
    }
    return true;
  } catch {
    return false;
  }
}

/** Why this key cannot sign an EU DCC, or null when it can. */
export function dccKeyProblem(key) {
  const tail = "an EU DCC is signed with ES256 (P-256) or PS256 (RSA, at least 2048 bits)";
  if (!key) return `no readable public key: ${tail}`;
  if (key.kind === "ec") {
    return key.curve === "P-256" || key.curve in ES256_EXTRA_CURVES
      ? null
      : `EC key on ${key.curve}: an EU DCC is signed with ES256 (P-256, or P-384 as some issuers did) or PS256 (RSA, at least 2048 bits)`;
  }
  if (key.kind === "rsa") {
    return rsaKeyOk(key)
      ? null
      : `RSA key of ${key.bits} bits (exponent ${key.e}): PS256 needs ${MIN_RSA_BITS} to ${MAX_RSA_BITS} bits and an odd exponent of at least 3`;
  }
  return `${key.kind} key: ${tail}`;
}

export function algMatchesKey(key, alg) {
  if (!key) return false;
  if (key.kind === "ec") {
    const ec = ecAlgFor(key, alg);
    return ec !== null && key.curve === ec.curve;
  }
  if (key.kind === "rsa") return alg === CoseAlg.PS256;
  return false;
}

function modPow(base, exp, mod) {
  let result = 1n;
  base %= mod;
  while (exp > 0n) {
    if (exp & 1n) result = (result * base) % mod;
    base = (base * base) % mod;
    exp >>= 1n;
  }
  return result;
}

function bigFrom(bytes) {
  let n = 0n;
  for (const b of bytes) n = (n << 8n) | BigInt(b);
  return n;
}

function bytesOf(n, length) {
  const out = new Uint8Array(length);
  for (let i = length - 1; i >= 0; i--) {
    out[i] = Number(n & 0xffn);
    n >>= 8n;
  }
  return out;
}

async function mgf1(seed, length) {
  const out = new Uint8Array(length);
  for (let counter = 0, at = 0; at < length; counter++) {
    const block = new Uint8Array(seed.length + 4);
    block.set(seed);
    new DataView(block.buffer).setUint32(seed.length, counter);
    const h = await sha256(block);
    out.set(h.subarray(0, Math.min(32, length - at)), at);
    at += 32;
  }
  return out;
}

/** Is `signature` a genuine RSASSA-PSS (SHA-256, MGF1-SHA-256) signature with a salt other than
 * 32 bytes? Only names the reason once verifySignature failed (RFC 8017 EMSA-PSS-VERIFY with
 * the salt length recovered). Never throws. */
export async function pssSaltMismatch(key, alg, data, signature) {
  try {
    if (!key || key.kind !== "rsa" || alg !== CoseAlg.PS256 || !rsaKeyOk(key)) return false;
    if (await verifySignature(key, alg, data, signature)) return false;
    const k = Math.ceil(key.bits / 8);
    if (signature.length !== k) return false;
    const s = bigFrom(signature);
    if (s >= key.n) return false;
    const emBits = key.bits - 1;
    const emLen = Math.ceil(emBits / 8);
    const em = bytesOf(modPow(s, key.e, key.n), emLen);
    if (em[emLen - 1] !== 0xbc) return false;
    const dbLen = emLen - 33;
    const masked = em.subarray(0, dbLen);
    const h = em.subarray(dbLen, dbLen + 32);
    const zeroBits = 8 * emLen - emBits;
    if (zeroBits && masked[0] >> (8 - zeroBits)) return false;
    const mask = await mgf1(h, dbLen);
    const db = masked.map((b, i) => b ^ mask[i]);
    if (zeroBits) db[0] &= 0xff >> zeroBits;
    let i = 0;
    while (i < dbLen && db[i] === 0) i++;
    if (i >= dbLen || db[i] !== 1) return false;
    const salt = db.subarray(i + 1);
    const mHash = await sha256(data);
    const mPrime = new Uint8Array(8 + 32 + salt.length);
    mPrime.set(mHash, 8);
    mPrime.set(salt, 40);
    const h2 = await sha256(mPrime);
    return h2.every((b, j) => b === h[j]);
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------
// X.509 signatures (certificate and CRL chains)

const SIG_ALGS = {
  "1.2.840.10045.4.3.2": { kind: "ec", hash: "SHA-256" },
  "1.2.840.10045.4.3.3": { kind: "ec", hash: "SHA-384" },
  "1.2.840.10045.4.3.4": { kind: "ec", hash: "SHA-512" },
  "1.2.840.113549.1.1.11": { kind: "rsa", hash: "SHA-256" },
  "1.2.840.113549.1.1.12": { kind: "rsa", hash: "SHA-384" },
  "1.2.840.113549.1.1.13": { kind: "rsa", hash: "SHA-512" },
};

function ecdsaDerToRaw(der, size) {
  const seq = readTlv(der, 0);
  const [r, s] = children(der, seq);
  const out = new Uint8Array(2 * size);
  for (const [i, part] of [r, s].entries()) {
    let v = part.content;
    while (v.length > size && v[0] === 0) v = v.subarray(1);
    if (v.length > size) throw new Error("ECDSA integer too long");
    out.set(v, (i + 1) * size - v.length);
  }
  return out;
}

/** True when `issuerKey` signed `tbs` with `sigAlg` (a certificate's or CRL's signature). */
export async function verifyX509Signature(issuerKey, sigAlg, tbs, signature) {
  try {
    const alg = SIG_ALGS[sigAlg.oid];
    if (!alg || !issuerKey || issuerKey.kind !== alg.kind) return false;
    if (alg.kind === "ec") {
      const size = { "P-256": 32, "P-384": 48, "P-521": 66 }[issuerKey.curve];
      if (!size) return false;
      const k = await imported(issuerKey, "ECDSA", { namedCurve: issuerKey.curve });
      return await subtle.verify({ name: "ECDSA", hash: alg.hash }, k, ecdsaDerToRaw(signature, size), tbs);
    }
    const k = await imported(issuerKey, "RSASSA-PKCS1-v1_5", { hash: alg.hash });
    return await subtle.verify({ name: "RSASSA-PKCS1-v1_5" }, k, signature, tbs);
  } catch {
    return false;
  }
}

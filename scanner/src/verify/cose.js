// COSE_Sign1 (RFC 9052 section 4.2) and CWT claims (RFC 8392) with the hcert payload,
// as verifier/codec.py: tag layouts 18, untagged, 61(18(...)) only; crit handling.

import { CFloat, CMap, loadsStrict } from "./cbor.js";
import { CodecError } from "./errors.js";

export const CoseHeader = Object.freeze({ ALG: 1, CRIT: 2, KID: 4, X5CHAIN: 33 });
export const CoseAlg = Object.freeze({ ES256: -7, ES384: -35, ES512: -36, PS256: -37 });
export const CwtClaim = Object.freeze({ ISS: 1, EXP: 4, NBF: 5, IAT: 6, HCERT: -260 });
export const COSE_SIGN1_TAG = 18;
export const CWT_TAG = 61;
export const PROCESSED_HEADERS = new Set([CoseHeader.ALG, CoseHeader.KID]);

/** A Python-int: an integer that is not a bool (number or BigInt). */
export function isInt(v) {
  return (typeof v === "number" && Number.isInteger(v)) || typeof v === "bigint";
}

function isLabel(v) {
  return isInt(v) || typeof v === "string";
}

function tagAt(data, pos) {
  if (pos >= data.length || data[pos] >> 5 !== 6) return [null, pos];
  const info = data[pos] & 31;
  if (info < 24) return [info, pos + 1];
  if (info < 28) {
    const size = 1 << (info - 24);
    const end = pos + 1 + size;
    if (end > data.length) throw new CodecError("cose_malformed", "truncated CBOR tag");
    let n = 0n;
    for (let i = pos + 1; i < end; i++) n = (n << 8n) | BigInt(data[i]);
    return [n <= 1000000n ? Number(n) : n, end];
  }
  throw new CodecError("cose_malformed", "reserved CBOR additional information in a tag");
}

function untagSign1(data) {
  let [tag, pos] = tagAt(data, 0);
  if (tag === null) return 0;
  if (tag === CWT_TAG) {
    [tag, pos] = tagAt(data, pos);
    if (tag === null) {
      throw new CodecError("cose_wrong_tag", "CWT tag 61 around an untagged COSE_Sign1");
    }
  }
  if (tag !== COSE_SIGN1_TAG) {
    throw new CodecError("cose_wrong_tag", `CBOR tag ${tag} is not COSE_Sign1 (18)`);
  }
  if (tagAt(data, pos)[0] !== null) {
    throw new CodecError("cose_wrong_tag", "another tag inside the COSE_Sign1 tag");
  }
  return pos;
}

function checkLabels(header, where) {
  for (const label of header.keys()) {
    if (!isLabel(label)) {
      throw new CodecError("cose_malformed", `${where} header has a label that is not int or text`);
    }
  }
}

function checkCrit(protectedMap, unprotected, processed) {
  if (unprotected.has(CoseHeader.CRIT)) {
    throw new CodecError("crit_malformed", "crit header in the unprotected bucket");
  }
  const crit = protectedMap.get(CoseHeader.CRIT);
  if (crit === undefined || crit === null) return;
  if (!Array.isArray(crit) || crit.length === 0) {
    throw new CodecError("crit_malformed", "crit header is not a non-empty array of labels");
  }
  for (const label of crit) {
    if (!isLabel(label)) {
      throw new CodecError("crit_malformed", "crit header names something that is not a label");
    }
    if (!(typeof label === "number" && processed.has(label))) {
      throw new CodecError("crit_unsupported", `crit header names label ${String(label).slice(0, 40)}, not processed here`);
    }
    if (!protectedMap.has(label)) {
      throw new CodecError("crit_malformed", `crit header names label ${label}, absent from the protected header`);
    }
  }
}

/** Parse COSE_Sign1 bytes: {protectedBytes, protected, unprotected, payload, signature, alg, kid}. */
export function decodeSign1(data, processed = PROCESSED_HEADERS) {
  const start = untagSign1(data);
  const obj = loadsStrict(start ? data.subarray(start) : data, "cose_malformed");
  if (!Array.isArray(obj) || obj.length !== 4) {
    throw new CodecError("cose_malformed", "COSE_Sign1 must be an array of four items");
  }
  const [protectedBytes, unprotected, payload, signature] = obj;
  if (!(protectedBytes instanceof Uint8Array)) {
    throw new CodecError("cose_malformed", "protected header is not a byte string");
  }
  if (!(unprotected instanceof CMap)) {
    throw new CodecError("cose_malformed", "unprotected header is not a map");
  }
  if (!(payload instanceof Uint8Array)) throw new CodecError("cose_malformed", "payload is not a byte string");
  if (!(signature instanceof Uint8Array)) {
    throw new CodecError("cose_malformed", "signature is not a byte string");
  }
  let protectedMap = new CMap();
  if (protectedBytes.length) {
    protectedMap = loadsStrict(protectedBytes, "cose_malformed");
    if (!(protectedMap instanceof CMap)) {
      throw new CodecError("cose_malformed", "protected header is not a map");
    }
  }
  checkLabels(protectedMap, "protected");
  checkLabels(unprotected, "unprotected");
  checkCrit(protectedMap, unprotected, processed);
  const alg = protectedMap.get(CoseHeader.ALG);
  let kid = null;
  for (const header of [protectedMap, unprotected]) {
    const k = header.get(CoseHeader.KID);
    if (k instanceof Uint8Array) {
      kid = k;
      break;
    }
  }
  return {
    protectedBytes,
    protected: protectedMap,
    unprotected,
    payload,
    signature,
    alg: alg === undefined ? null : alg,
    kid,
  };
}

function checkClaimKeys(map, where) {
  for (const key of map.keys()) {
    if (!isLabel(key)) throw new CodecError("cwt_malformed", `${where}: a key that is not int or text`);
  }
}

/** Parse a CWT payload: {iss, iat, exp, dcc}. */
export function decodeCwt(payload) {
  const claims = loadsStrict(payload, "cwt_malformed");
  if (!(claims instanceof CMap)) throw new CodecError("cwt_malformed", "CWT payload is not a map");
  checkClaimKeys(claims, "CWT claims");
  const hcert = claims.get(CwtClaim.HCERT);
  if (!(hcert instanceof CMap)) throw new CodecError("cwt_no_hcert", "CWT has no hcert claim (-260)");
  checkClaimKeys(hcert, "hcert claim");
  const dcc = hcert.get(1);
  if (!(dcc instanceof CMap)) {
    throw new CodecError("cwt_no_hcert", "hcert claim has no EU DCC v1 payload (key 1)");
  }
  const get = (k) => {
    const v = claims.get(k);
    return v === undefined ? null : v;
  };
  const iss = get(CwtClaim.ISS);
  const iat = get(CwtClaim.IAT);
  const exp = get(CwtClaim.EXP);
  for (const [name, value] of [["iat", iat], ["exp", exp]]) {
    if (value !== null && !(isInt(value) || value instanceof CFloat)) {
      throw new CodecError("cwt_malformed", `CWT ${name} is not a number`);
    }
  }
  if (iss !== null && typeof iss !== "string") {
    throw new CodecError("cwt_malformed", "CWT iss is not a text string");
  }
  return { iss, iat, exp, dcc };
}

const SIGNATURE1 = [0x84, 0x6a, ...new TextEncoder().encode("Signature1")];

function bstrHead(n) {
  if (n < 24) return [0x40 | n];
  if (n < 0x100) return [0x58, n];
  if (n < 0x10000) return [0x59, n >> 8, n & 0xff];
  return [0x5a, (n >>> 24) & 0xff, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff];
}

/** The Sig_structure "Signature1" that is signed (RFC 9052 section 4.4), empty external_aad. */
export function sigStructure(protectedBytes, payload) {
  const parts = [
    Uint8Array.from(SIGNATURE1),
    Uint8Array.from(bstrHead(protectedBytes.length)),
    protectedBytes,
    Uint8Array.of(0x40),
    Uint8Array.from(bstrHead(payload.length)),
    payload,
  ];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

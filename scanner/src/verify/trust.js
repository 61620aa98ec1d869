// Trust material, as verifier/trust.py: DSC certificates (PEM, DER, base64 DER) trusted
// directly, CSCAs (pinned anchors for trust lists, or signing certificates when no list is
// given), and signed trust lists (docs/trust-list.md) with CSCA pinning and rollback by seq.
//
//   const store = await loadTrust([{ where: "dsc.pem", data }], { now, state: memoryState() });
//   store.candidates(kid)  // [{info, listed, chainOk, revokedAt}, ...]
//
// I/O stays outside: files come in as bytes, and `state` keeps pinned CSCAs and the highest
// accepted seq per CSCA (node-state.js on disk, shared with the Python verifier; the page keeps
// it in the browser's storage).

import { CFloat, CMap, hex, loadsStrict } from "./cbor.js";
import { CoseAlg, CoseHeader, decodeSign1, isInt, sigStructure } from "./cose.js";
import {
  algMatchesKey,
  dccKeyProblem,
  keyReadable,
  kidForCertificate,
  pssSaltMismatch,
  sha256,
  verifySignature,
  verifyX509Signature,
} from "./crypto.js";
import { CodecError, TrustError } from "./errors.js";
import { parseCertificate, parseCrl } from "./x509.js";

export const DCC_EKU_TYPES = {
  "1.3.6.1.4.1.1847.2021.1.1": "t",
  "1.3.6.1.4.1.1847.2021.1.2": "v",
  "1.3.6.1.4.1.1847.2021.1.3": "r",
  "1.3.6.1.4.1.0.1847.2021.1.1": "t",
  "1.3.6.1.4.1.0.1847.2021.1.2": "v",
  "1.3.6.1.4.1.0.1847.2021.1.3": "r",
};
export const EKU_TRUST_LIST_SIGNER = "2.25.214375089251405394580617312245409632127";
const TRUST_LIST_VERSION = 1;
const TRUST_LIST_ALGS = [CoseAlg.ES256, CoseAlg.ES384, CoseAlg.PS256];
const MAX_TRUST_FILE = 32 * 1024 * 1024;
const NEVER = -8640000000000000;
const FAR = 8640000000000000;

/** Parse a trusted DER certificate; never throws on its content (verifier.trust.read_certificate). */
export async function readCertificate(der) {
  const kid = await kidForCertificate(der);
  let cert;
  try {
    cert = parseCertificate(der);
  } catch (err) {
    return malformed(der, kid, `not a readable X.509 certificate (${err.message})`);
  }
  let problem = null;
  if (!cert.key) {
    problem = { reason: "dsc_key_unsupported", message: "public key not readable" };
  } else if (!(await keyReadable(cert.key))) {
    problem = { reason: "dsc_key_unsupported", message: "public key not readable" };
  } else {
    const message = dccKeyProblem(cert.key);
    if (message) problem = { reason: "dsc_key_unsupported", message };
  }
  const types = new Set();
  for (const oid of cert.ekus || []) if (DCC_EKU_TYPES[oid]) types.add(DCC_EKU_TYPES[oid]);
  return {
    ...cert,
    kid,
    kidHex: hex(kid),
    problem,
    readable: true,
    dccTypes: types.size ? types : null,
    validAt: (ms) => cert.notBefore <= ms && ms <= cert.notAfter,
  };
}

function malformed(der, kid, message) {
  return {
    der,
    kid,
    kidHex: hex(kid),
    key: null,
    notBefore: NEVER,
    notAfter: NEVER,
    ekus: null,
    isCa: false,
    digitalSignature: null,
    serial: 0n,
    issuer: new Uint8Array(),
    subject: new Uint8Array(),
    country: null,
    problem: { reason: "dsc_malformed", message },
    readable: false,
    dccTypes: null,
    validAt: () => false,
  };
}

/** Like readCertificate, but throws TrustError for an unreadable certificate or a key neither
 * EC nor RSA (the trust-list signer, pinned CSCAs). */
export async function parseTrustedCertificate(der) {
  const info = await readCertificate(der);
  if (!info.readable) throw new TrustError("certificate_invalid", info.problem.message);
  if (!info.key || (info.key.kind !== "ec" && info.key.kind !== "rsa")) {
    throw new TrustError("certificate_key_unsupported", "only EC and RSA keys are supported");
  }
  return info;
}

function sameBytes(a, b) {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** True when `issuer`'s key signed `child` (names and signature). */
export async function issuedBy(child, issuer) {
  if (!child.readable || !issuer.readable || !sameBytes(child.issuer, issuer.subject)) return false;
  return verifyX509Signature(issuer.key, child.sigAlg, child.tbs, child.signature);
}

const PEM_CERT = /-----BEGIN CERTIFICATE-----([\s\S]+?)-----END CERTIFICATE-----/g;
const B64 = /^[A-Za-z0-9+/]*={0,2}$/;

function base64Strict(text) {
  const clean = text.replace(/\s+/g, "");
  if (!B64.test(clean) || clean.length % 4 !== 0) return null;
  try {
    const bin = atob(clean);
    return Uint8Array.from(bin, (c) => c.charCodeAt(0));
  } catch {
    return null;
  }
}

function latin1(bytes) {
  let s = "";
  for (let i = 0; i < bytes.length; i += 8192) {
    s += String.fromCharCode(...bytes.subarray(i, i + 8192));
  }
  return s;
}

/** DER certificates in a PEM (several allowed), DER or bare base64 DER file. */
export function certificatesIn(data, where) {
  const text = latin1(data);
  if (text.includes("-----BEGIN")) {
    const blocks = [...text.matchAll(PEM_CERT)].map((m) => m[1]);
    if (!blocks.length) throw new TrustError("trust_file_invalid", `${where}: PEM file holds no CERTIFICATE`);
    return blocks.map((b) => {
      const der = base64Strict(b);
      if (!der) throw new TrustError("trust_file_invalid", `${where}: broken PEM base64`);
      return der;
    });
  }
  if (data[0] === 0x30) return [data];
  const der = base64Strict(text);
  if (!der) {
    throw new TrustError("trust_file_invalid", `${where}: neither a certificate (PEM, DER, base64 DER) nor a trust list`);
  }
  if (der[0] !== 0x30) throw new TrustError("trust_file_invalid", `${where}: base64 content is not a DER certificate`);
  return [der];
}

function checkFile({ where, data }) {
  if (!data || !latin1(data).trim()) throw new TrustError("trust_file_invalid", `${where}: file is empty`);
  if (data.length > MAX_TRUST_FILE) throw new TrustError("trust_file_invalid", `${where}: file is too large`);
}

/** The trust store: candidates(kid) and UVCI revocation. */
export class TrustStore {
  constructor({ byKid = new Map(), anchors = [], revokedUvciHashes = new Set(), trustLists = [] } = {}) {
    this.byKid = byKid;
    this.anchors = anchors;
    this.revokedUvciHashes = revokedUvciHashes;
    this.trustLists = trustLists;
  }
  candidates(kid) {
    return this.byKid.get(hex(kid)) || [];
  }
  async uvciRevoked(uvci) {
    if (!this.revokedUvciHashes.size) return false;
    const h = (await sha256(new TextEncoder().encode(uvci))).subarray(0, 16);
    return this.revokedUvciHashes.has(hex(h));
  }
}

/** Signature failure reason when no candidate verified (verifier.trust.signature_failure). */
export async function signatureFailure(candidates, alg, data, signature) {
  const usable = candidates.filter((c) => c.info.problem === null);
  if (!usable.length && candidates.length && candidates[0].info.problem) {
    const p = candidates[0].info.problem;
    return [p.reason, `trusted DSC cannot verify a DCC: ${p.message}`];
  }
  for (const c of usable) {
    if (await pssSaltMismatch(c.info.key, alg, data, signature)) {
      return ["pss_salt_length", "RSA-PSS signature with a salt length other than 32 bytes"];
    }
  }
  return ["bad_signature", "signature does not verify"];
}

/** In-memory state (pinned CSCAs, rollback counters) for tests and one-off use. */
export function memoryState(pinned = []) {
  const seen = new Map();
  return {
    pinned: async () => pinned,
    async checkRollback(anchorId, seq, where, { key = "trustlist", what = "trust list", reason = "trust_list_rollback" } = {}) {
      const id = `${key}:${anchorId}`;
      const held = seen.get(id);
      if (held !== undefined && seq < held) {
        throw new TrustError(reason, `${where}: ${what} sequence ${seq} is older than the accepted ${held} (rollback refused)`);
      }
      if (held === undefined || seq > held) seen.set(id, seq);
    },
  };
}

export async function cscaId(info) {
  return hex(await sha256(info.der));
}

function unique(certs) {
  const seen = new Map();
  for (const c of certs) if (!seen.has(hex(c.der))) seen.set(hex(c.der), c);
  return [...seen.values()];
}

function revokedAt(revoked, info) {
  const times = [
    revoked.get(`n:${hex(info.issuer)}:${info.serial}`),
    revoked.get(`k:${info.kidHex}:${info.serial}`),
  ].filter((t) => t !== undefined);
  return times.length ? Math.min(...times) : null;
}

/** Load and check trust material; TrustError when unusable (verifier.trust.load_trust). */
export async function loadTrust(files, { now, state, staleGraceMs = 0, supersede = false }) {
  const store = await loadTrustMaterial(files, { now, state, staleGraceMs, supersede });
  if (!store.byKid.size) throw new TrustError("no_dsc", "the trust material holds no document signer certificate");
  return store;
}

/** `staleGraceMs`: how long past its nextUpdate a list is still accepted (0, as the Python
 * verifier: refused once stale). The page sets its own refusal age instead of a hard cliff.
 * `supersede`: of several lists of one CSCA, the older ones are set aside instead of refused
 * as a rollback (the page: the server's list next to a newer one imported from the
 * authority); the command line, as Python, refuses them. */
export async function loadTrustMaterial(files, { now, state, staleGraceMs = 0, supersede = false }) {
  const nowMs = now.getTime();
  const anchors = [];
  for (const file of await state.pinned()) {
    for (const der of certificatesIn(file.data, file.where)) {
      const info = await parseTrustedCertificate(der);
      if (!info.isCa) throw new TrustError("not_a_csca", `${file.where}: pinned certificate is not a CA`);
      anchors.push(info);
    }
  }
  const direct = [];
  const givenCas = [];
  const lists = [];
  for (const file of files) {
    checkFile(file);
    if ([0xd2, 0x84, 0xd8].includes(file.data[0])) {
      lists.push(file);
      continue;
    }
    for (const der of certificatesIn(file.data, file.where)) {
      const info = await readCertificate(der);
      if (info.isCa && info.readable) {
        anchors.push(info);
        givenCas.push(info);
      } else direct.push(info);
    }
  }
  if (!lists.length) direct.push(...givenCas);
  let parsed = [];
  for (const file of lists) parsed.push(await verifyTrustList(file.data, file.where, anchors, nowMs, staleGraceMs));
  if (supersede) {
    const newest = new Map();
    const ids = await Promise.all(parsed.map((p) => cscaId(p.anchor)));
    parsed.forEach((p, i) => newest.set(ids[i], Math.max(Number(p.seq), newest.get(ids[i]) ?? -1)));
    parsed = parsed.filter((p, i) => Number(p.seq) === newest.get(ids[i]));
  }
  for (const p of [...parsed].sort((a, b) => (a.seq < b.seq ? 1 : a.seq > b.seq ? -1 : 0))) {
    await state.checkRollback(await cscaId(p.anchor), p.seq, p.summary.path);
  }
  const byKid = new Map();
  const add = (entry) => {
    const k = entry.info.kidHex;
    if (!byKid.has(k)) byKid.set(k, []);
    byKid.get(k).push(entry);
  };
  const revokedUvcis = new Set();
  const revoked = new Map();
  for (const p of parsed) {
    p.entries.forEach(add);
    p.revokedUvcis.forEach((u) => revokedUvcis.add(u));
    for (const [k, t] of p.revoked) revoked.set(k, Math.min(t, revoked.get(k) ?? t));
  }
  const listed = new Set([...byKid.values()].flat().map((e) => hex(e.info.der)));
  for (const info of direct) {
    if (!listed.has(hex(info.der))) {
      add({ info, listed: false, country: info.country, chainOk: true, revokedAt: revokedAt(revoked, info) });
    }
  }
  return new TrustStore({
    byKid,
    anchors: unique(anchors),
    revokedUvciHashes: revokedUvcis,
    trustLists: parsed.map((p) => p.summary),
  });
}

function fail(where, message, reason = "trust_list_invalid") {
  return new TrustError(reason, `${where}: ${message}`);
}

function uint(payload, key, where, optional = false) {
  const value = payload.get(key);
  if ((value === undefined || value === null) && optional) return null;
  if (!isInt(value) || value < 0) throw fail(where, `field '${key}' must be an unsigned integer`);
  return value;
}

function listOf(payload, key, check, kind, where) {
  const value = payload.has(key) ? payload.get(key) : [];
  if (!Array.isArray(value) || !value.every(check)) throw fail(where, `field '${key}' must be an array of ${kind}`);
  return value;
}

const isBytes = (x) => x instanceof Uint8Array;
const isMap = (x) => x instanceof CMap;

function seconds(value) {
  const n = Number(value);
  return n * 1000 > FAR ? FAR : n * 1000;
}

/** payload["v"] == TRUST_LIST_VERSION as Python compares (1, 1.0 and True are equal). */
function pyEqualsOne(v) {
  return v === TRUST_LIST_VERSION || v === true || (v instanceof CFloat && v.value === TRUST_LIST_VERSION);
}

/** COSE header label 3 (content type) of a signed rule set; a trust list carries none
 * (verifier.trust.RULE_SET_CONTENT_TYPE). */
export const COSE_CONTENT_TYPE = 3;
export const RULE_SET_CONTENT_TYPE = "application/vnd.vn-dcc.rules+cbor";

/** Steps 1-3 of docs/trust-list.md "Verification" for a trust list or a signed rule set
 * (verifier.trust.verify_envelope): {payload, contentType, signer, anchor}; TrustError with
 * reason `${reasonPrefix}_invalid|_untrusted|_bad_signature`. */
export async function verifyEnvelope(data, where, anchors, nowMs, { what = "trust-list", reasonPrefix = "trust_list" } = {}) {
  const failWith = (message, kind = "invalid") => fail(where, message, `${reasonPrefix}_${kind}`);
  // 1. Decode the COSE_Sign1 and take the signer certificate from x5chain.
  let sign1;
  try {
    sign1 = decodeSign1(data);
  } catch (err) {
    if (err instanceof CodecError) throw failWith(`not a ${what.replace("-", " ")}: ${err.message}`);
    throw err;
  }
  let x5chain = sign1.protected.get(CoseHeader.X5CHAIN);
  if (Array.isArray(x5chain) && x5chain.length) x5chain = x5chain[0];
  if (!(x5chain instanceof Uint8Array)) throw failWith("protected header has no x5chain signer certificate");
  let signer;
  try {
    signer = await parseTrustedCertificate(x5chain);
  } catch (err) {
    throw failWith(`signer certificate: ${err.message}`);
  }
  // 2. The signer chains to a pinned CSCA, is valid now, and may sign trust lists.
  let anchor = null;
  for (const a of anchors) {
    if (await issuedBy(signer, a)) {
      anchor = a;
      break;
    }
  }
  if (!anchor) {
    throw failWith(`${what} signer does not chain to a pinned CSCA (give it with --trust CSCA.pem or pin it with \`python -m verifier trust pin\`)`, "untrusted");
  }
  if (!anchor.validAt(nowMs)) throw failWith("the pinned CSCA is outside its validity period", "untrusted");
  if (!signer.validAt(nowMs)) throw failWith(`${what} signer certificate is outside its validity period`, "untrusted");
  if (!signer.ekus || !signer.ekus.has(EKU_TRUST_LIST_SIGNER)) {
    throw failWith("signer certificate lacks the trust-list-signing EKU", "untrusted");
  }
  if (signer.digitalSignature === false) {
    throw failWith("signer certificate lacks keyUsage digitalSignature", "untrusted");
  }
  // 3. The COSE signature verifies with the signer's key.
  const alg = sign1.alg;
  if (!TRUST_LIST_ALGS.includes(alg)) throw failWith(`unsupported ${what} algorithm ${String(alg).slice(0, 40)}`);
  if (!algMatchesKey(signer.key, alg)) throw failWith(`${what} algorithm ${alg} does not fit the signer's key`);
  if (!(await verifySignature(signer.key, alg, sigStructure(sign1.protectedBytes, sign1.payload), sign1.signature))) {
    throw failWith(`${what} signature does not verify`, "bad_signature");
  }
  return { payload: sign1.payload, contentType: sign1.protected.get(COSE_CONTENT_TYPE), signer, anchor };
}

async function verifyTrustList(data, where, anchors, nowMs, staleGraceMs = 0) {
  const envelope = await verifyEnvelope(data, where, anchors, nowMs);
  if (envelope.contentType === RULE_SET_CONTENT_TYPE) {
    throw fail(where, "this is a signed rule set, not a trust list (give it with --rules)");
  }
  const { anchor } = envelope;
  // Payload (docs/trust-list.md "Payload").
  let payload;
  try {
    payload = loadsStrict(envelope.payload, "trust_list_invalid");
  } catch (err) {
    if (err instanceof CodecError) throw fail(where, err.message);
    throw err;
  }
  if (!isMap(payload)) throw fail(where, "payload is not a map");
  if (!pyEqualsOne(payload.get("v"))) throw fail(where, `unsupported trust-list format version ${payload.get("v")}`);
  const seq = uint(payload, "seq", where);
  const iat = uint(payload, "iat", where);
  const nextUpdate = uint(payload, "nextUpdate", where, true);
  const country = payload.get("country");
  if (typeof country !== "string") throw fail(where, "field 'country' must be text");
  if (nextUpdate !== null && nowMs > seconds(nextUpdate) + staleGraceMs) {
    throw fail(where, "trust list is out of date (past its nextUpdate)", "trust_list_stale");
  }
  const listCscas = [];
  for (const der of listOf(payload, "cscas", isBytes, "bytes", where)) {
    const info = await readCertificate(der);
    if (!info.readable) throw fail(where, `cscas: ${info.problem.message}`);
    listCscas.push(info);
  }
  const issuers = unique([anchor, ...anchors, ...listCscas.filter((c) => c.isCa)]);
  const revoked = await revocations(payload, where, issuers);
  const entries = [];
  for (const item of listOf(payload, "dscs", isMap, "dict", where)) {
    const kid = item.get("kid");
    const certDer = item.get("cert");
    const dscCountry = item.get("country");
    if (!isBytes(kid) || !isBytes(certDer)) throw fail(where, "each dscs entry needs bytes 'kid' and 'cert'");
    const info = await readCertificate(certDer);
    if (info.kidHex !== hex(kid)) throw fail(where, `dscs entry kid ${hex(kid)} does not match its certificate`);
    let chainOk = false;
    for (const ca of issuers) {
      if (await issuedBy(info, ca)) {
        chainOk = true;
        break;
      }
    }
    entries.push({
      info,
      listed: true,
      country: typeof dscCountry === "string" ? dscCountry : info.country,
      chainOk,
      revokedAt: revokedAt(revoked, info),
    });
  }
  const uvcis = listOf(payload, "revokedUvcis", isBytes, "bytes", where);
  const summary = {
    path: where,
    seq,
    issuedAt: seconds(iat),
    nextUpdate: nextUpdate === null ? null : seconds(nextUpdate),
    country,
    dscs: entries.length,
    revokedDscs: listOf(payload, "revokedDscs", isMap, "dict", where).length,
    revokedUvcis: uvcis.length,
    crls: listOf(payload, "crls", isBytes, "bytes", where).length,
  };
  return { summary, anchor, seq, entries, revokedUvcis: new Set(uvcis.map(hex)), revoked };
}

async function revocations(payload, where, issuers) {
  const out = new Map();
  const add = (key, when) => out.set(key, Math.min(when, out.get(key) ?? when));
  for (const item of listOf(payload, "revokedDscs", isMap, "dict", where)) {
    const kid = item.get("kid");
    const serial = item.get("serial");
    const at = item.get("revokedAt");
    if (!isBytes(kid) || !isBytes(serial)) throw fail(where, "each revokedDscs entry needs bytes 'kid' and 'serial'");
    if (!isInt(at) || at < 0) throw fail(where, "revokedDscs 'revokedAt' must be an unsigned integer");
    let n = 0n;
    for (const b of serial) n = (n << 8n) | BigInt(b);
    add(`k:${hex(kid)}:${n}`, seconds(at));
  }
  for (const der of listOf(payload, "crls", isBytes, "bytes", where)) {
    let crl;
    try {
      crl = parseCrl(der);
    } catch {
      throw fail(where, "crls: not a DER CRL");
    }
    const ca = issuers.find((c) => sameBytes(c.subject, crl.issuer) && c.readable);
    if (!ca || !(await verifyX509Signature(ca.key, crl.sigAlg, crl.tbs, crl.signature))) {
      throw fail(where, "crls: CRL not signed by a CSCA of the list");
    }
    for (const r of crl.revoked) add(`n:${hex(crl.issuer)}:${r.serial}`, r.at);
  }
  return out;
}

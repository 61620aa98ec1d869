// Verify an EU DCC "HC1:" text offline against a trust store, stage by stage, as
// verifier/hc1.py; untrusted input never throws: every problem is a reason in the verdict.
//
//   import { verifyQrText } from "./hc1.js";
//   const verdict = await verifyQrText("HC1:NCF...", store, { now: new Date() });
//   verdict.valid, verdict.stage_failed, verdict.errors.map((e) => e.reason)
//
// Structural stages (prefix, base45, zlib, cose, cwt) gate each other; once the CWT decoded,
// signature, expiry, key_usage and schema are all evaluated and reported on their own.

import { b45decode, stripPrefix } from "./base45.js";
import { CFloat, CMap, hex } from "./cbor.js";
import { CoseAlg, decodeCwt, decodeSign1, sigStructure } from "./cose.js";
import { verifySignature } from "./crypto.js";
import { CodecError } from "./errors.js";
import { Reason, buildVerdict, internalVerdict, reasonOr, verdictError } from "./result.js";
import { hasKey, jsonable, schemaProblems } from "./schema.js";
import { EKU_TRUST_LIST_SIGNER, signatureFailure } from "./trust.js";
import { decompress } from "./zlib.js";

export const DCC_ALGORITHMS = [CoseAlg.ES256, CoseAlg.PS256];
export const DCC_TYPES = ["v", "t", "r"];

class Fail extends Error {
  constructor(stage, reason, message) {
    super(message);
    this.stage = stage;
    this.reason = reason;
  }
}

/** Verify an HC1 text exactly as given; `qr` is the qr check (null: no image involved). */
export async function verifyQrText(text, trust, { now, qr = null }) {
  const qrText = typeof text === "string" ? text : null;
  try {
    return await verifyText(text, trust, now, qr);
  } catch (err) {
    return internalVerdict(err, qrText);
  }
}

/** Verify decompressed COSE_Sign1 bytes (stages cose onward). */
export async function verifyCose(cose, trust, { now }) {
  const checks = {};
  try {
    return await verifyCoseStages(cose, trust, now, checks, null);
  } catch (err) {
    if (err instanceof Fail) return structuralFailure(err, checks, null);
    return internalVerdict(err, null);
  }
}

function structuralFailure(fail, checks, qrText) {
  return buildVerdict({
    checks: { ...checks, [fail.stage]: false },
    errors: [verdictError(fail.stage, fail.reason, fail.message)],
    payload: null,
    qrText,
  });
}

async function verifyText(text, trust, now, qr) {
  const checks = { qr };
  const qrText = typeof text === "string" ? text : null;
  try {
    // 1. prefix: the "HC1:" context identifier (hcert 3.1), length capped.
    if (typeof text !== "string") throw new Fail("prefix", Reason.PREFIX_MISSING, "QR content is not text");
    let body;
    try {
      body = stripPrefix(text);
    } catch (err) {
      if (!(err instanceof CodecError)) throw err;
      throw new Fail("prefix", reasonOr(err.reason, Reason.PREFIX_MISSING), err.message);
    }
    checks.prefix = true;
    // 2. base45 (RFC 9285).
    let compressed;
    try {
      compressed = b45decode(body);
    } catch (err) {
      if (!(err instanceof CodecError)) throw err;
      throw new Fail("base45", Reason.BASE45_INVALID, err.message);
    }
    checks.base45 = true;
    // 3. zlib, with a cap on the inflated size (hcert 3.2).
    let cose;
    try {
      cose = await decompress(compressed);
    } catch (err) {
      if (!(err instanceof CodecError)) throw err;
      throw new Fail("zlib", reasonOr(err.reason, Reason.ZLIB_INVALID), err.message);
    }
    checks.zlib = true;
    return await verifyCoseStages(cose, trust, now, checks, qrText);
  } catch (err) {
    if (err instanceof Fail) return structuralFailure(err, checks, qrText);
    throw err;
  }
}

async function verifyCoseStages(cose, trust, now, checks, qrText) {
  // 4. cose: a COSE_Sign1 (tag 18, untagged, or inside CWT tag 61).
  let sign1;
  try {
    sign1 = decodeSign1(cose);
  } catch (err) {
    if (!(err instanceof CodecError)) throw err;
    throw new Fail("cose", reasonOr(err.reason, Reason.COSE_MALFORMED), err.message);
  }
  checks.cose = true;
  // 5. cwt: a claims map with the hcert claim (-260) holding an EU DCC v1.
  let claims;
  try {
    claims = decodeCwt(sign1.payload);
  } catch (err) {
    if (!(err instanceof CodecError)) throw err;
    throw new Fail("cwt", reasonOr(err.reason, Reason.CWT_MALFORMED), err.message);
  }
  checks.cwt = true;

  const dcc = claims.dcc;
  const problems = schemaProblems(dcc);
  const errors = [];
  const [signature, dsc] = await checkSignature(sign1, dcc, trust, now, errors);
  checks.signature = signature;
  checks.expiry = checkExpiry(claims, now, errors);
  checks.key_usage = checkKeyUsage(dsc, dcc, errors);
  checks.schema = checkSchema(problems, errors);
  const payload = {
    iss: claims.iss,
    iat: jsonable(claims.iat),
    exp: jsonable(claims.exp),
    hcert: jsonable(dcc),
  };
  return buildVerdict({ checks, errors, payload, qrText });
}

function short(value, limit = 40) {
  let text;
  if (value instanceof CFloat) text = String(value.value);
  else if (typeof value === "string") text = `'${value}'`;
  else if (value === null) text = "None";
  else text = String(value);
  return text.length <= limit ? text : `${text.slice(0, limit - 3)}...`;
}

async function checkSignature(sign1, dcc, trust, now, errors) {
  const fail = (reason, message, dsc = null) => {
    errors.push(verdictError("signature", reason, message));
    return [false, dsc];
  };
  // 6.1 The algorithm comes from the protected header only and is ES256 or PS256.
  let alg = sign1.alg;
  if (!(typeof alg === "number" && DCC_ALGORITHMS.includes(alg))) {
    fail(Reason.UNSUPPORTED_ALG, `algorithm ${short(alg)} is not ES256 or PS256`);
    alg = null;
  }
  // 6.2 kid from the protected header, else the unprotected one.
  const kid = sign1.kid;
  if (kid === null) return fail(Reason.KID_MISSING, "no kid in the COSE headers");
  // 6.3 The kid names a DSC in the trust store.
  const candidates = trust.candidates(kid);
  if (!candidates.length) return fail(Reason.UNKNOWN_KID, `no trusted DSC with kid ${hex(kid)}`);
  if (alg === null) return [false, candidates[0]];
  // 6.4 The signature verifies with one of those DSCs (Sig_structure, RFC 9052 4.4).
  const toCheck = sigStructure(sign1.protectedBytes, sign1.payload);
  let dsc = null;
  for (const candidate of candidates) {
    if (await verifySignature(candidate.info.key, alg, toCheck, sign1.signature)) {
      dsc = candidate;
      break;
    }
  }
  if (dsc === null) {
    const [code, message] = await signatureFailure(candidates, alg, toCheck, sign1.signature);
    return fail(reasonOr(code, Reason.BAD_SIGNATURE), message, candidates[0]);
  }
  let ok = true;
  const nowMs = now.getTime();
  if (dsc.listed) {
    // 6.5 A DSC from a trust list chains to a CSCA of the list ...
    if (!dsc.chainOk) ok = fail(Reason.DSC_UNTRUSTED, "DSC is not issued by a trusted CSCA")[0];
    // 6.6 ... and is valid at the time of verification.
    if (!dsc.info.validAt(nowMs)) ok = fail(Reason.DSC_EXPIRED, "DSC is outside its validity period")[0];
  }
  // 6.7 The DSC is not revoked.
  if (dsc.revokedAt !== null && nowMs >= dsc.revokedAt) ok = fail(Reason.DSC_REVOKED, "DSC is revoked")[0];
  // 6.8 The certificate identifier (UVCI) is not revoked.
  if (trust.revokedUvciHashes.size) {
    for (const uvci of uvcis(dcc)) {
      if (await trust.uvciRevoked(uvci)) {
        ok = fail(Reason.UVCI_REVOKED, "certificate identifier (UVCI) is revoked")[0];
        break;
      }
    }
  }
  return [ok, dsc];
}

function uvcis(dcc) {
  const out = [];
  for (const group of DCC_TYPES) {
    const entries = dcc.get(group);
    if (Array.isArray(entries)) {
      for (const e of entries) {
        if (e instanceof CMap && typeof e.get("ci") === "string") out.push(e.get("ci"));
      }
    }
  }
  return out;
}

function timeValue(v) {
  return v instanceof CFloat ? v.value : v;
}

function finite(v) {
  return typeof v === "bigint" || Number.isFinite(v);
}

/** 7. iat <= now <= exp, bounds inclusive, integer or float seconds (hcert 2.6.2). */
function checkExpiry(claims, now, errors) {
  const t = now.getTime() / 1000;
  const problems = [];
  const exp = claims.exp === null ? null : timeValue(claims.exp);
  const iat = claims.iat === null ? null : timeValue(claims.iat);
  if (exp === null) problems.push([Reason.EXP_MISSING, "CWT has no expiry (exp)"]);
  else if (!finite(exp)) problems.push([Reason.TIME_INVALID, "CWT expiry (exp) is not a finite number"]);
  else if (t > exp) problems.push([Reason.EXPIRED, "certificate expired"]);
  if (iat === null) problems.push([Reason.IAT_MISSING, "CWT has no issue time (iat)"]);
  else if (!finite(iat)) problems.push([Reason.TIME_INVALID, "CWT issue time (iat) is not a finite number"]);
  else if (t < iat) problems.push([Reason.NOT_YET_VALID, "certificate issued in the future"]);
  for (const [r, m] of problems) errors.push(verdictError("expiry", r, m));
  return problems.length === 0;
}

/** 8. The DSC's EKU allows the DCC's type (hcert 5.1.1); no DCC EKU = any type. A certificate
 * with the trust-list-signing EKU never signs a DCC (docs/trust-list.md), even as a plain file. */
function checkKeyUsage(dsc, dcc, errors) {
  if (dsc === null) return null;
  if (dsc.info.ekus && dsc.info.ekus.has(EKU_TRUST_LIST_SIGNER)) {
    errors.push(verdictError("key_usage", Reason.DSC_WRONG_USAGE, "signed by a trust-list signing key"));
    return false;
  }
  const present = DCC_TYPES.filter((t) => hasKey(dcc, t));
  if (!present.length) {
    errors.push(verdictError("key_usage", Reason.NO_CERTIFICATE_TYPE, "payload has no v, t or r group"));
    return false;
  }
  const allowed = dsc.info.dccTypes;
  if (allowed !== null && !present.every((t) => allowed.has(t))) {
    errors.push(
      verdictError(
        "key_usage",
        Reason.WRONG_CERTIFICATE_TYPE,
        `DSC may sign ${[...allowed].sort().join("/")} certificates, not ${present.sort().join("/")}`,
      ),
    );
    return false;
  }
  return true;
}

/** 9. The payload is valid against the EU DCC JSON schema 1.3.x. */
function checkSchema(problems, errors) {
  if (problems.length) {
    errors.push(verdictError("schema", Reason.SCHEMA_INVALID, problems.join("; ")));
    return false;
  }
  return true;
}


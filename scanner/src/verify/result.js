// Verdict of one QR verification, the JSON of `python -m verifier qr --json`
// (verifier/result.py): valid, stage_failed, errors[{stage, reason, message}], checks, payload,
// qr_text.

export const STAGES = [
  "qr", "prefix", "base45", "zlib", "cose", "cwt", "signature", "expiry", "key_usage", "schema",
];
export const STRUCTURAL = STAGES.slice(0, 6);
export const SEMANTIC = STAGES.slice(6);

export const Reason = Object.freeze({
  IMAGE_UNREADABLE: "image_unreadable",
  NO_QR_CODE: "no_qr_code",
  TOO_LONG: "too_long",
  PREFIX_MISSING: "prefix_missing",
  BASE45_INVALID: "base45_invalid",
  ZLIB_INVALID: "zlib_invalid",
  ZLIB_TOO_LARGE: "zlib_too_large",
  COSE_MALFORMED: "cose_malformed",
  COSE_WRONG_TAG: "cose_wrong_tag",
  CRIT_UNSUPPORTED: "crit_unsupported",
  CRIT_MALFORMED: "crit_malformed",
  DUPLICATE_MAP_KEY: "duplicate_map_key",
  TRAILING_BYTES: "trailing_bytes",
  INTEGER_OUT_OF_RANGE: "integer_out_of_range",
  CWT_MALFORMED: "cwt_malformed",
  CWT_NO_HCERT: "cwt_no_hcert",
  UNSUPPORTED_ALG: "unsupported_alg",
  KID_MISSING: "kid_missing",
  UNKNOWN_KID: "unknown_kid",
  BAD_SIGNATURE: "bad_signature",
  DSC_UNTRUSTED: "dsc_untrusted",
  DSC_EXPIRED: "dsc_expired",
  DSC_REVOKED: "dsc_revoked",
  DSC_KEY_UNSUPPORTED: "dsc_key_unsupported",
  DSC_MALFORMED: "dsc_malformed",
  PSS_SALT_LENGTH: "pss_salt_length",
  UVCI_REVOKED: "uvci_revoked",
  EXPIRED: "expired",
  NOT_YET_VALID: "not_yet_valid",
  EXP_MISSING: "exp_missing",
  IAT_MISSING: "iat_missing",
  TIME_INVALID: "time_invalid",
  WRONG_CERTIFICATE_TYPE: "wrong_certificate_type",
  DSC_WRONG_USAGE: "dsc_wrong_usage",
  NO_CERTIFICATE_TYPE: "no_certificate_type",
  SCHEMA_INVALID: "schema_invalid",
  INTERNAL: "internal_error",
});
const KNOWN = new Set(Object.values(Reason));

/** A reason code as given when known, else the default (verifier.hc1._reason). */
export function reasonOr(code, fallback) {
  return KNOWN.has(code) ? code : fallback;
}

/** Derive valid and stage_failed from the checks (Verdict.build). */
export function buildVerdict({ checks, errors, payload = null, qrText = null }) {
  const full = {};
  for (const s of STAGES) full[s] = checks[s] === undefined ? null : checks[s];
  let failed = STAGES.find((s) => full[s] === false) ?? null;
  const valid = failed === null && SEMANTIC.every((s) => full[s] === true);
  if (failed === null && !valid) failed = SEMANTIC.find((s) => full[s] !== true);
  return { valid, stage_failed: failed, errors, checks: full, payload, qr_text: qrText };
}

export function verdictError(stage, reason, message) {
  return { stage, reason, message };
}

/** A bug caught at the boundary: invalid, every check unknown (CLI exit 2). */
export function internalVerdict(err, qrText) {
  const name = (err && err.constructor && err.constructor.name) || "Error";
  const checks = {};
  for (const s of STAGES) checks[s] = null;
  return {
    valid: false,
    stage_failed: "qr",
    errors: [verdictError("qr", Reason.INTERNAL, `internal error (${name}: ${err && err.message})`)],
    checks,
    payload: null,
    qr_text: qrText,
  };
}

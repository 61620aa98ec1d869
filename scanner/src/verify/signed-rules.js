// Signed rule sets (docs/rules.md "Signed rule sets"), as verifier/rules_signed.py: the trust
// list's envelope and signer (verifyEnvelope), the rule-set content type, a payload
// {format: "vn-dcc-rules", version: 1, seq, iat, country, bundle: <the bundle's JSON>}, then
// the age (age.js) and the rollback guard (state.checkRollback with key "rules").
//
//   const { ruleSet, info, age } = await loadSignedRules(bytes, "rules.cbor",
//       { anchors: store.anchors, now, state, policy: { warnDays: 14, refuseDays: 60 } });

import { CMap, loadsStrict } from "./cbor.js";
import { isInt } from "./cose.js";
import { CodecError, TrustError } from "./errors.js";
import { freshness } from "./age.js";
import { ruleSetFromJson } from "./rules.js";
import { RULE_SET_CONTENT_TYPE, cscaId, verifyEnvelope } from "./trust.js";

export const RULE_SET_FORMAT = "vn-dcc-rules";
export const RULE_SET_VERSION = 1;

/** A COSE_Sign1 (tag 18, untagged, tag 61), not rule JSON. */
export function isSignedRuleSet(data) {
  return data.length > 0 && [0xd2, 0x84, 0xd8].includes(data[0]);
}

function fail(where, message, reason = "rules_invalid") {
  return new TrustError(reason, `${where}: ${message}`);
}

function uint(payload, key, where) {
  const value = payload.get(key);
  if (!isInt(value) || value < 0) throw fail(where, `field '${key}' must be an unsigned integer`);
  return Number(value);
}

/** Envelope, content type, payload and rules: {ruleSet, info}; TrustError (rules_*) otherwise.
 * Age and rollback are loadSignedRules's. */
export async function verifySignedRuleSet(data, where, anchors, now) {
  const envelope = await verifyEnvelope(data, where, anchors, now.getTime(), { what: "rule-set", reasonPrefix: "rules" });
  if (envelope.contentType !== RULE_SET_CONTENT_TYPE) {
    throw fail(where, "not a signed rule set (no rule-set content type: a trust list? give it with --trust)");
  }
  let payload;
  try {
    payload = loadsStrict(envelope.payload, "rules_invalid");
  } catch (err) {
    if (err instanceof CodecError) throw fail(where, err.message);
    throw err;
  }
  if (!(payload instanceof CMap)) throw fail(where, "payload is not a map");
  if (payload.get("format") !== RULE_SET_FORMAT || payload.get("version") !== RULE_SET_VERSION) {
    throw fail(where, `not a ${RULE_SET_FORMAT} version ${RULE_SET_VERSION} payload`);
  }
  const seq = uint(payload, "seq", where);
  const iat = uint(payload, "iat", where);
  const country = payload.get("country");
  if (typeof country !== "string" || !/^[A-Z]{2}$/.test(country)) throw fail(where, "field 'country' must be an ISO 3166-1 alpha-2 code");
  const text = payload.get("bundle");
  if (typeof text !== "string") throw fail(where, "field 'bundle' must be text (the rule bundle's JSON)");
  let ruleSet;
  try {
    ruleSet = ruleSetFromJson(JSON.parse(text), where);
  } catch (err) {
    throw fail(where, `bundle: ${err.message}`);
  }
  const info = {
    path: where,
    seq,
    issuedAt: iat * 1000,
    country,
    rules: ruleSet.rules.length,
    signer: envelope.signer,
    anchor: envelope.anchor,
  };
  return { ruleSet, info };
}

/** verifySignedRuleSet, then the age (refused past policy.refuseDays: rules_too_old) and the
 * rollback guard; {ruleSet, info, age: {state, days}}. */
export async function loadSignedRules(data, where, { anchors, now, state, policy }) {
  const { ruleSet, info } = await verifySignedRuleSet(data, where, anchors, now);
  const age = freshness(info.issuedAt, now.getTime(), policy);
  if (age.state === "too_old") {
    throw fail(where, `rule set seq ${info.seq} is ${age.days} days old, more than the ${policy.refuseDays} accepted: get a newer one from the issuing authority`, "rules_too_old");
  }
  await state.checkRollback(await cscaId(info.anchor), info.seq, where, { key: "rules", what: "rule set", reason: "rules_rollback" });
  return { ruleSet, info, age };
}

/** The lines verify-js and `python -m verifier qr` print on stderr about a signed rule set. */
export function ageLines(info, age, policy, now) {
  const iso = new Date(info.issuedAt).toISOString();
  const issued = `${iso.slice(0, 10)} ${iso.slice(11, 16)}Z`;
  const lines = [`note: rule set ${info.path}: seq ${info.seq}, ${info.country}, ${info.rules} rules, issued ${issued} (${age.days} days old)`];
  if (age.state === "old") {
    lines.push(`warning: the rule set is more than ${policy.warnDays} days old (refused after ${policy.refuseDays}); get a newer one from the issuing authority`);
  } else if (age.state === "future") {
    lines.push(`warning: the rule set was issued after the verification time (${issued}): is the clock (or --at) right?`);
  }
  return lines;
}

// Business rules in the EU DCC Gateway format (verifier/rules.py), for the page and verify-js:
// selection by country, type Acceptance, certificate type (General or the DCC's own) and the
// validation clock; the data context {payload, external}; fail closed (a rule that cannot run
// is open; no rule of the certificate's own type is a refusal). The CertLogic evaluator is
// passed in (certlogic-js's `evaluate`), so this module imports nothing that is CommonJS.
//
//   const report = checkCertificate(ruleSet, dcc, { country: "VN", profile: "primary", at,
//                                                   valueSets, evaluate });
//   report.passed, report.refusal, report.results

export class RuleFormatError extends Error {}

export const ENGINE = "CERTLOGIC";
export const ENGINE_VERSION = [1, 3, 3]; // what verifier/certlogic.py and certlogic-js 1.2.2 implement
export const RESULT_LANGS = ["en", "vi"];
const RULE_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const COUNTRY = /^[A-Z]{2}$/;
const SEMVER = /^([0-9]+)\.([0-9]+)\.([0-9]+)/;
const GATEWAY_TIME = /^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})$/;
const RULE_TYPES = ["Acceptance", "Invalidation"];
const CERT_TYPES = ["General", "Vaccination", "Test", "Recovery"];
const GROUP_TYPES = { v: "Vaccination", t: "Test", r: "Recovery" };

function version(text) {
  const m = SEMVER.exec(text || "");
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : null;
}

function compareVersions(a, b) {
  for (let i = 0; i < 3; i++) if (a[i] !== b[i]) return a[i] < b[i] ? -1 : 1;
  return 0;
}

function field(obj, name, source) {
  if (typeof obj[name] !== "string") throw new RuleFormatError(`${source}: ${name} must be a string`);
  return obj[name];
}

function gatewayTime(obj, name, source) {
  const text = field(obj, name, source);
  const ms = GATEWAY_TIME.test(text) ? Date.parse(text) : NaN;
  if (Number.isNaN(ms)) throw new RuleFormatError(`${source}: ${name} ${JSON.stringify(text.slice(0, 40))} is not an ISO 8601 timestamp`);
  return ms;
}

const isObject = (x) => x !== null && typeof x === "object" && !Array.isArray(x);

/** A rule from its JSON (verifier.rules.parse_rule); RuleFormatError otherwise. */
export function parseRule(obj, source = "<rule>") {
  if (!isObject(obj)) throw new RuleFormatError(`${source}: a rule must be a JSON object`);
  const identifier = field(obj, "Identifier", source);
  if (!RULE_ID.test(identifier)) throw new RuleFormatError(`${source}: Identifier is not a rule identifier`);
  const where = `${source} (${identifier})`;
  const type = field(obj, "Type", where);
  const certificateType = field(obj, "CertificateType", where);
  if (!RULE_TYPES.includes(type)) throw new RuleFormatError(`${where}: bad Type ${JSON.stringify(type.slice(0, 30))}`);
  if (!CERT_TYPES.includes(certificateType)) throw new RuleFormatError(`${where}: bad CertificateType`);
  const country = field(obj, "Country", where);
  if (!COUNTRY.test(country)) throw new RuleFormatError(`${where}: Country is not an ISO 3166 alpha-2 code`);
  const ver = field(obj, "Version", where);
  if (!version(ver)) throw new RuleFormatError(`${where}: Version is not a semantic version`);
  const desc = obj.Description ?? [];
  if (!Array.isArray(desc) || !desc.every((d) => isObject(d) && typeof d.lang === "string" && typeof d.desc === "string")) {
    throw new RuleFormatError(`${where}: Description must be a list of {lang, desc}`);
  }
  const affected = obj.AffectedFields ?? [];
  if (!Array.isArray(affected) || !affected.every((f) => typeof f === "string")) {
    throw new RuleFormatError(`${where}: AffectedFields must be a list of strings`);
  }
  if (!("Logic" in obj)) throw new RuleFormatError(`${where}: no Logic`);
  const validFrom = gatewayTime(obj, "ValidFrom", where);
  const validTo = gatewayTime(obj, "ValidTo", where);
  return {
    identifier,
    type,
    country,
    version: ver,
    versionKey: version(ver),
    schemaVersion: field(obj, "SchemaVersion", where),
    engine: field(obj, "Engine", where),
    engineVersion: field(obj, "EngineVersion", where),
    certificateType,
    descriptions: Object.fromEntries(desc.map((d) => [d.lang, d.desc])),
    validFrom,
    validTo,
    affectedFields: affected,
    logic: obj.Logic,
    raw: obj,
  };
}

function description(rule, lang = "en") {
  const d = rule.descriptions;
  return d[lang] || d.en || Object.values(d)[0] || "";
}

function parseProfiles(obj, source) {
  if (!isObject(obj) || !isObject(obj.profiles)) throw new RuleFormatError(`${source}: expected {'country': ..., 'profiles': {...}}`);
  if (typeof obj.country !== "string" || !COUNTRY.test(obj.country)) {
    throw new RuleFormatError(`${source}: country must be an ISO 3166 alpha-2 code`);
  }
  const out = [];
  for (const [name, spec] of Object.entries(obj.profiles)) {
    const ids = isObject(spec) ? spec.rules : null;
    if (!Array.isArray(ids) || !ids.every((i) => typeof i === "string")) {
      throw new RuleFormatError(`${source}: profile '${name}' needs a list of rule identifiers`);
    }
    out.push({ country: obj.country, name, rules: new Set(ids), descriptions: spec.description || {} });
  }
  const dflt = obj.default;
  if (dflt !== undefined && dflt !== null && !(dflt in obj.profiles)) {
    throw new RuleFormatError(`${source}: default profile '${dflt}' is not defined`);
  }
  return [out, typeof dflt === "string" ? dflt : null];
}

/** A rule set from [ruleObject, source] and [profilesObject, source] pairs (load_rules). */
export function makeRuleSet(ruleObjs, profileObjs) {
  const rules = ruleObjs.map(([obj, source]) => parseRule(obj, source));
  if (!rules.length) throw new RuleFormatError("no rules (expected <country>/<rule id>/rule.json)");
  const profiles = new Map();
  const defaults = new Map();
  for (const [obj, source] of profileObjs) {
    const [found, dflt] = parseProfiles(obj, source);
    for (const p of found) {
      profiles.set(`${p.country}/${p.name}`, p);
      if (dflt !== null) defaults.set(p.country, dflt);
    }
  }
  for (const p of profiles.values()) {
    const known = new Set(rules.filter((r) => r.country === p.country).map((r) => r.identifier));
    const missing = [...p.rules].filter((id) => !known.has(id)).sort();
    if (missing.length) throw new RuleFormatError(`profile '${p.name}' of ${p.country} names unknown rules: ${missing.join(", ")}`);
  }
  return {
    rules,
    profiles,
    defaults,
    profile(country, name) {
      const p = profiles.get(`${country}/${name}`);
      if (!p) {
        const known = [...profiles.values()].filter((x) => x.country === country).map((x) => x.name).sort();
        throw new RuleFormatError(`no profile '${name}' for ${country}${known.length ? ` (known: ${known.join(", ")})` : " (no profiles.json)"}`);
      }
      return p;
    },
  };
}

/** A rule set from one JSON file's content: a bundle {rules, profiles}, an array or one rule. */
export function ruleSetFromJson(obj, source) {
  if (isObject(obj) && Array.isArray(obj.rules)) {
    const found = obj.profiles ?? [];
    if (!Array.isArray(found)) throw new RuleFormatError(`${source}: profiles must be a list of profiles.json objects`);
    return makeRuleSet(obj.rules.map((r, i) => [r, `${source}[${i}]`]), found.map((p, i) => [p, `${source} profiles[${i}]`]));
  }
  const items = Array.isArray(obj) ? obj : [obj];
  return makeRuleSet(items.map((r, i) => [r, `${source}[${i}]`]), []);
}

export function certificateTypeOf(dcc) {
  const found = Object.entries(GROUP_TYPES)
    .filter(([g]) => Array.isArray(dcc[g]) && dcc[g].length)
    .map(([, t]) => t);
  return found.length === 1 ? found[0] : null;
}

export function selectRules(rules, { country, certificateType, at, profile = null, ruleType = "Acceptance" }) {
  const wanted = new Set(["General"]);
  if (certificateType) wanted.add(certificateType);
  const atMs = at.getTime();
  const newest = new Map();
  for (const rule of rules) {
    if (
      rule.country === country &&
      rule.type === ruleType &&
      wanted.has(rule.certificateType) &&
      rule.validFrom <= atMs &&
      atMs < rule.validTo &&
      (profile === null || profile.rules.has(rule.identifier))
    ) {
      const held = newest.get(rule.identifier);
      if (!held || compareVersions(rule.versionKey, held.versionKey) > 0) newest.set(rule.identifier, rule);
    }
  }
  return [...newest.keys()].sort().map((id) => newest.get(id));
}

/** validationClock as Java's ISO_OFFSET_DATE_TIME writes it (Z for UTC). */
export function isoClock(at) {
  const text = at.toISOString();
  return text.endsWith(".000Z") ? `${text.slice(0, -5)}Z` : text;
}

function utcDate(epoch) {
  if (typeof epoch === "bigint") epoch = Number(epoch);
  if (typeof epoch !== "number" || !Number.isFinite(epoch)) return null;
  const d = new Date(epoch * 1000);
  const year = d.getUTCFullYear();
  if (Number.isNaN(d.getTime()) || year < 1 || year > 9999) return null;
  return d.toISOString().slice(0, 10);
}

export function externalParameters({ at, country, valueSets, exp = null, iat = null, issuerCountry = null, kid = null, region = "" }) {
  const out = {
    validationClock: isoClock(at),
    valueSets,
    countryCode: country,
    exp: utcDate(exp),
    iat: utcDate(iat),
    issuerCountryCode: issuerCountry || "",
    region,
  };
  if (kid !== null) out.kid = kid;
  return out;
}

function compatible(rule, dccVersion) {
  if (rule.engine !== ENGINE) return ["engine_unsupported", `engine '${rule.engine.slice(0, 40)}' is not ${ENGINE}`];
  const engine = version(rule.engineVersion);
  if (!engine || compareVersions(engine, ENGINE_VERSION) > 0) {
    return ["engine_unsupported", `rule needs CertLogic ${rule.engineVersion.slice(0, 20)}, this verifier has ${ENGINE_VERSION.join(".")}`];
  }
  const schema = version(rule.schemaVersion);
  const ver = version(dccVersion || "");
  if (!schema || !ver || ver[0] !== schema[0] || compareVersions(ver, schema) < 0) {
    return ["schema_version_mismatch", `rule is for DCC schema ${rule.schemaVersion.slice(0, 20)}, certificate is ${String(dccVersion).slice(0, 20)}`];
  }
  return null;
}

function resultDict(rule, result, reason = null, message = null) {
  return {
    rule: rule.identifier,
    country: rule.country,
    version: rule.version,
    certificate_type: rule.certificateType,
    result,
    reason,
    message,
    description: Object.fromEntries(RESULT_LANGS.filter((l) => l in rule.descriptions).map((l) => [l, rule.descriptions[l]])),
    affected_fields: [...rule.affectedFields],
  };
}

export function evaluateRule(rule, data, { dccVersion = null, evaluate }) {
  const problem = compatible(rule, dccVersion);
  if (problem) return resultDict(rule, "open", problem[0], problem[1]);
  let value;
  try {
    value = evaluate(rule.logic, data);
  } catch (err) {
    return resultDict(rule, "open", "evaluation_error", String(err && err.message).slice(0, 200));
  }
  if (value === true) return resultDict(rule, "passed");
  if (value === false) return resultDict(rule, "failed", "rule_failed", description(rule, "en"));
  let shown;
  try {
    shown = JSON.stringify(value);
  } catch {
    shown = String(value);
  }
  return resultDict(rule, "open", "not_boolean", `rule evaluated to ${String(shown).slice(0, 60)}, not a boolean`);
}

/** Select and run the rules for a DCC (JSON): {country, profile, certificateType, results,
 * passed, refusal}. Throws RuleFormatError only for an unknown profile. */
export function checkCertificate(ruleSet, dcc, { country, at, profile = null, exp = null, iat = null, issuerCountry = null, valueSets = {}, evaluate }) {
  const chosen = profile !== null ? ruleSet.profile(country, profile) : null;
  const certificateType = certificateTypeOf(dcc);
  const rules = selectRules(ruleSet.rules, { country, certificateType, at, profile: chosen });
  const data = { payload: dcc, external: externalParameters({ at, country, valueSets, exp, iat, issuerCountry }) };
  const dccVersion = typeof dcc.ver === "string" ? dcc.ver : null;
  const results = rules.map((r) => evaluateRule(r, data, { dccVersion, evaluate }));
  const ofType = certificateType !== null && results.some((r) => r.certificate_type === certificateType);
  const refusal = ofType ? null : "no_rules";
  return { country, profile, certificateType, results, refusal, passed: refusal === null && results.every((r) => r.result === "passed") };
}

/** The profile to apply: the one asked for, else the country's default; "all" is none. */
export function profileName(ruleSet, country, asked) {
  const name = asked ?? ruleSet.defaults.get(country) ?? null;
  return name === "all" ? null : name;
}

/** The verdict with the rule results (`rules`, `checks.rules`): rules_cli.apply_rules. */
export function applyRules(verdict, ruleSet, { country, profile, now, valueSets, evaluate }) {
  const payload = verdict.payload;
  const dcc = payload ? payload.hcert : null;
  if (!payload || !isObject(dcc)) return { ...verdict, checks: { ...verdict.checks, rules: null }, rules: [] };
  const report = checkCertificate(ruleSet, dcc, {
    country,
    at: now,
    profile,
    exp: payload.exp,
    iat: payload.iat,
    issuerCountry: typeof payload.iss === "string" ? payload.iss : null,
    valueSets,
    evaluate,
  });
  const errors = [...verdict.errors];
  for (const r of report.results) {
    if (r.result === "failed") errors.push({ stage: "rules", reason: "rule_failed", message: `${r.rule}: ${r.message}` });
    else if (r.result === "open") errors.push({ stage: "rules", reason: "rule_open", message: `${r.rule}: ${r.reason}: ${r.message}` });
  }
  if (report.refusal) {
    const kind = report.certificateType || "unknown type of";
    errors.push({
      stage: "rules",
      reason: "no_rules",
      message: `no rule of ${report.country}${report.profile ? ` (profile ${report.profile})` : ""} applies to a ${kind} certificate: refused`,
    });
  }
  const passed = report.passed;
  return {
    ...verdict,
    valid: verdict.valid && passed,
    stage_failed: verdict.stage_failed || (passed ? null : "rules"),
    errors,
    checks: { ...verdict.checks, rules: passed },
    rules: report.results,
  };
}

// `verify-js rules test DIR` with certlogic-js (Node only): every <country>/<rule id>/rule.json
// under DIR against its tests/*.json, one line per disagreement, last line `N passed, M failed`
// (the contract of `python -m verifier rules test DIR`, verifier/rules_cli.py). A test agrees
// when the rule's Logic evaluates, on {payload, external} of the test, to exactly `expected`
// (an evaluation error never agrees) and its validationClock, if any, lies in the rule's
// [ValidFrom, ValidTo): the checks of the EU reference runner.

import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const certlogic = require("certlogic-js");
const internals = require("certlogic-js/dist/internals.js");

export const MAX_RULE_FILE_BYTES = 1024 * 1024;
const MAX_TESTS_PER_RULE = 10000;
const RULE_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const COUNTRY = /^[A-Z]{2}$/;
const SEMVER = /^([0-9]+)\.([0-9]+)\.([0-9]+)/;
const GATEWAY_TIME = /^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})$/;
const RULE_TYPES = ["Acceptance", "Invalidation"];
const CERT_TYPES = ["General", "Vaccination", "Test", "Recovery"];

export class RuleFormatError extends Error {}

export function readJson(file, limit = MAX_RULE_FILE_BYTES) {
  let data;
  try {
    data = fs.readFileSync(file);
  } catch (err) {
    throw new RuleFormatError(`cannot read ${file}: ${err.message}`);
  }
  if (data.length > limit) throw new RuleFormatError(`${file}: larger than ${limit} bytes`);
  try {
    return JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(data));
  } catch (err) {
    throw new RuleFormatError(`${file}: not valid JSON (${err.message})`);
  }
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

/** The rule's checked fields (verifier.rules.parse_rule); RuleFormatError otherwise. */
export function parseRule(obj, source) {
  if (!obj || typeof obj !== "object" || Array.isArray(obj)) throw new RuleFormatError(`${source}: a rule must be a JSON object`);
  const id = field(obj, "Identifier", source);
  if (!RULE_ID.test(id)) throw new RuleFormatError(`${source}: Identifier is not a rule identifier`);
  const where = `${source} (${id})`;
  if (!RULE_TYPES.includes(field(obj, "Type", where))) throw new RuleFormatError(`${where}: bad Type`);
  if (!CERT_TYPES.includes(field(obj, "CertificateType", where))) throw new RuleFormatError(`${where}: bad CertificateType`);
  if (!COUNTRY.test(field(obj, "Country", where))) throw new RuleFormatError(`${where}: Country is not an ISO 3166 alpha-2 code`);
  if (!SEMVER.test(field(obj, "Version", where))) throw new RuleFormatError(`${where}: Version is not a semantic version`);
  const desc = obj.Description ?? [];
  if (!Array.isArray(desc) || !desc.every((d) => d && typeof d === "object" && typeof d.lang === "string" && typeof d.desc === "string")) {
    throw new RuleFormatError(`${where}: Description must be a list of {lang, desc}`);
  }
  const affected = obj.AffectedFields ?? [];
  if (!Array.isArray(affected) || !affected.every((f) => typeof f === "string")) {
    throw new RuleFormatError(`${where}: AffectedFields must be a list of strings`);
  }
  if (!("Logic" in obj)) throw new RuleFormatError(`${where}: no Logic`);
  const validFrom = gatewayTime(obj, "ValidFrom", where);
  const validTo = gatewayTime(obj, "ValidTo", where);
  for (const name of ["SchemaVersion", "Engine", "EngineVersion"]) field(obj, name, where);
  return { id, logic: obj.Logic, validFrom, validTo };
}

function show(value) {
  const text = value instanceof Date ? value.toISOString() : JSON.stringify(value);
  if (text === undefined) return "undefined";
  return text.length <= 60 ? text : `${text.slice(0, 57)}...`;
}

function same(a, b, depth = 0) {
  if (depth > 200) return false;
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => same(x, b[i], depth + 1));
  if (a && b && typeof a === "object" && typeof b === "object" && !Array.isArray(a) && !Array.isArray(b)) {
    if (a instanceof Date || b instanceof Date) return false;
    const ka = Object.keys(a).sort();
    const kb = Object.keys(b).sort();
    return same(ka, kb, depth + 1) && ka.every((k) => same(a[k], b[k], depth + 1));
  }
  return a === b;
}

/** Why one test disagrees with its rule (one line), or null when it agrees. */
export function runRuleTest(ruleObj, test, source) {
  const rule = parseRule(ruleObj, source);
  if (!test || typeof test !== "object" || Array.isArray(test) || !("expected" in test)) {
    throw new RuleFormatError(`${source}: a rule test needs an expected result`);
  }
  const external = test.external ?? {};
  if (!external || typeof external !== "object" || Array.isArray(external)) {
    throw new RuleFormatError(`${source}: external must be an object`);
  }
  const clock = external.validationClock;
  if (typeof clock === "string") {
    let at;
    try {
      at = internals.plusTime(clock, 0, "day").getTime();
    } catch {
      at = NaN;
    }
    if (Number.isNaN(at)) return `validationClock ${JSON.stringify(clock)} is not a date-time`;
    if (!(rule.validFrom <= at && at < rule.validTo)) {
      return `validationClock ${clock} is outside the rule's validity [ValidFrom, ValidTo)`;
    }
  }
  let actual;
  try {
    actual = certlogic.evaluate(rule.logic, { payload: test.payload, external });
  } catch (err) {
    return `expected ${show(test.expected)}, got error: ${err.message}`;
  }
  if (!same(actual, test.expected)) return `expected ${show(test.expected)}, got ${show(actual)}`;
  return null;
}

function ruleFiles(root) {
  const out = [];
  for (const country of fs.readdirSync(root).sort()) {
    const cdir = path.join(root, country);
    if (!fs.statSync(cdir).isDirectory()) continue;
    for (const id of fs.readdirSync(cdir).sort()) {
      const file = path.join(cdir, id, "rule.json");
      if (fs.existsSync(file) && fs.statSync(file).isFile()) out.push(file);
    }
  }
  return out;
}

/** [passed, disagreement lines] for every rule test under root. */
export function runRuleTests(root) {
  if (!fs.existsSync(root) || !fs.statSync(root).isDirectory()) throw new RuleFormatError(`${root}: not a folder`);
  const files = ruleFiles(root);
  if (!files.length) throw new RuleFormatError(`${root}: no <country>/<rule id>/rule.json`);
  let passed = 0;
  const failures = [];
  for (const file of files) {
    const ruleObj = readJson(file);
    parseRule(ruleObj, file);
    const testDir = path.join(path.dirname(file), "tests");
    const tests = fs.existsSync(testDir)
      ? fs.readdirSync(testDir).filter((n) => n.endsWith(".json")).sort().slice(0, MAX_TESTS_PER_RULE)
      : [];
    for (const name of tests) {
      const testFile = path.join(testDir, name);
      const problem = runRuleTest(ruleObj, readJson(testFile), testFile);
      if (problem === null) passed++;
      else failures.push(`${testFile}: ${problem}`.replace(/\n/g, "\\n"));
    }
  }
  return [passed, failures];
}

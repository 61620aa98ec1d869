// `verify-js rules test DIR` with certlogic-js (Node only): every <country>/<rule id>/rule.json
// under DIR against its tests/*.json, one line per disagreement, last line `N passed, M failed`
// (the contract of `python -m verifier rules test DIR`, verifier/rules_cli.py). A test agrees
// when the rule's Logic evaluates, on {payload, external} of the test, to exactly `expected`
// (an evaluation error never agrees) and its validationClock, if any, lies in the rule's
// [ValidFrom, ValidTo): the checks of the EU reference runner.

import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";

import { RuleFormatError, parseRule } from "./verify/rules.js";

export { RuleFormatError };
const require = createRequire(import.meta.url);
const certlogic = require("certlogic-js");
const internals = require("certlogic-js/dist/internals.js");

export const MAX_RULE_FILE_BYTES = 4 * 1024 * 1024;
const MAX_TESTS_PER_RULE = 10000;

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

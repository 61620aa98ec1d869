// Rule sets and value sets from disk for verify-js (Node): a folder (every **/rule.json and
// **/profiles.json under it) or one JSON file (a bundle {rules, profiles}, an array of rules
// or one rule), as verifier.rules.load_rules; the EU value sets shipped in
// verifier/data/valuesets, as verifier.rules.value_sets.

import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { createRequire } from "node:module";
import { RuleFormatError, makeRuleSet, ruleSetFromJson } from "./verify/rules.js";
import { isSignedRuleSet } from "./verify/signed-rules.js";

const require = createRequire(import.meta.url);
export const { evaluate } = require("certlogic-js");
const MAX_RULE_FILE_BYTES = 4 * 1024 * 1024;
const MAX_BUNDLE_BYTES = 32 * 1024 * 1024;
const VALUESETS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../verifier/data/valuesets");

export function readJson(file, limit = MAX_RULE_FILE_BYTES) {
  let data;
  try {
    data = fs.readFileSync(file);
  } catch (err) {
    throw new RuleFormatError(`cannot read ${file}: ${err.code === "ENOENT" ? "No such file or directory" : err.message}`);
  }
  if (data.length > limit) throw new RuleFormatError(`${file}: larger than ${limit} bytes`);
  try {
    let text = new TextDecoder("utf-8", { fatal: true }).decode(data);
    if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    return JSON.parse(text);
  } catch (err) {
    throw new RuleFormatError(`${file}: not valid JSON (${err.message})`);
  }
}

function walk(dir, name, out = []) {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) walk(full, name, out);
    else if (entry.isFile() && entry.name === name) out.push(full);
  }
  return out;
}

export function loadRules(where) {
  let stat;
  try {
    stat = fs.statSync(where);
  } catch {
    throw new RuleFormatError(`no rules at ${where}: not a file or folder`);
  }
  if (stat.isDirectory()) {
    const rules = walk(where, "rule.json").sort().map((f) => [readJson(f), f]);
    const profiles = walk(where, "profiles.json").sort().map((f) => [readJson(f), f]);
    if (!rules.length) throw new RuleFormatError(`no rules at ${where} (expected <country>/<rule id>/rule.json)`);
    return makeRuleSet(rules, profiles);
  }
  return ruleSetFromJson(readJson(where, MAX_BUNDLE_BYTES), where);
}

/** The bytes of a signed rule set at `where`, or null when it is a folder or JSON. */
export function readRuleFile(where) {
  let data;
  try {
    if (!fs.statSync(where).isFile()) return null;
    data = fs.readFileSync(where);
  } catch {
    return null; // loadRules reports it
  }
  if (data.length > MAX_BUNDLE_BYTES + 1024 * 1024) throw new RuleFormatError(`${where}: file is too large`);
  const bytes = new Uint8Array(data);
  return isSignedRuleSet(bytes) ? bytes : null;
}

let shipped = null;

export function valueSets() {
  if (shipped) return shipped;
  shipped = {};
  for (const name of fs.readdirSync(VALUESETS).filter((n) => n.endsWith(".json"))) {
    const data = JSON.parse(fs.readFileSync(path.join(VALUESETS, name), "utf-8"));
    const id = data.valueSetId;
    const values = data.valueSetValues;
    if (typeof id === "string" && values && typeof values === "object" && !id.includes("encoding")) {
      shipped[id] = Object.keys(values).sort();
    }
  }
  return shipped;
}

// Verifier state in the browser (localStorage): the highest accepted trust-list seq per CSCA
// (rollback protection, as <state>/trustlist-seq.json for the command line), imported trust
// files, the scan log (time, verdict, reason codes: no personal data) and settings.

import { TrustError } from "../src/verify/errors.js";

const FILES_KEY = "vndcc.trust-files";
const LOG_KEY = "vndcc.scan-log";
const SETTINGS_KEY = "vndcc.settings";
export const DEFAULT_SETTINGS = { lang: "vi", warnDays: 14, refuseDays: 60 };

function readJson(key, fallback) {
  try {
    const v = JSON.parse(localStorage.getItem(key));
    return v ?? fallback;
  } catch {
    return fallback;
  }
}

export function browserState() {
  return {
    pinned: async () => [],
    // key "trustlist" (vndcc.trustlist-seq) or "rules" (vndcc.rules-seq, signed rule sets)
    async checkRollback(anchorId, seq, where, { key = "trustlist", what = "trust list", reason = "trust_list_rollback" } = {}) {
      const storeKey = `vndcc.${key}-seq`;
      const seen = readJson(storeKey, {});
      const held = seen[anchorId];
      const n = Number(seq);
      if (held !== undefined && n < held) {
        throw new TrustError(reason, `${where}: ${what} sequence ${n} is older than the accepted ${held} (rollback refused)`);
      }
      if (held === undefined || n > held) {
        seen[anchorId] = n;
        localStorage.setItem(storeKey, JSON.stringify(seen));
      }
    },
  };
}

function toBase64(bytes) {
  let s = "";
  for (let i = 0; i < bytes.length; i += 8192) s += String.fromCharCode(...bytes.subarray(i, i + 8192));
  return btoa(s);
}

function fromBase64(text) {
  return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
}

export function importedTrustFiles() {
  return readJson(FILES_KEY, []).map((f) => ({ where: f.where, data: fromBase64(f.data) }));
}

export function saveImportedTrustFiles(files) {
  localStorage.setItem(FILES_KEY, JSON.stringify(files.map((f) => ({ where: f.where, data: toBase64(f.data) }))));
}

export function settings() {
  return { ...DEFAULT_SETTINGS, ...readJson(SETTINGS_KEY, {}) };
}

export function saveSettings(values) {
  localStorage.setItem(SETTINGS_KEY, JSON.stringify({ ...settings(), ...values }));
}

export function scanLog() {
  return readJson(LOG_KEY, []);
}

/** One log entry: time, verdict, reason codes; never the name, birth date or QR content. */
export function logScan(verdict) {
  const log = scanLog();
  log.push({
    time: new Date().toISOString(),
    valid: verdict.valid,
    stage_failed: verdict.stage_failed,
    reasons: verdict.errors.map((e) => e.reason),
  });
  localStorage.setItem(LOG_KEY, JSON.stringify(log.slice(-5000)));
  return log.length;
}

const RULES_KEY = "vndcc.rule-set";

/** The imported signed rule set ({where, data}) or null; one at a time, the newest kept. */
export function importedRuleSet() {
  const f = readJson(RULES_KEY, null);
  return f && typeof f.data === "string" ? { where: f.where, data: fromBase64(f.data) } : null;
}

export function saveImportedRuleSet(file) {
  localStorage.setItem(RULES_KEY, JSON.stringify({ where: file.where, data: toBase64(file.data) }));
}

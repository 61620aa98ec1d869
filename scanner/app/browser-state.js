// Verifier state in the browser (localStorage): the highest accepted trust-list seq per CSCA
// (rollback protection, as <state>/trustlist-seq.json for the command line), imported trust
// files, the scan log (time, verdict, reason codes: no personal data) and settings.

import { TrustError } from "../src/verify/errors.js";

const SEQ_KEY = "vndcc.trustlist-seq";
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
    async checkRollback(anchorId, seq, where) {
      const seen = readJson(SEQ_KEY, {});
      const held = seen[anchorId];
      const n = Number(seq);
      if (held !== undefined && n < held) {
        throw new TrustError("trust_list_rollback", `${where}: trust list sequence ${n} is older than the accepted ${held} (rollback refused)`);
      }
      if (held === undefined || n > held) {
        seen[anchorId] = n;
        localStorage.setItem(SEQ_KEY, JSON.stringify(seen));
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

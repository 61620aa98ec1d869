// The checkpoint page (issue 11): camera, photo and keyboard-wedge input, verification in the
// browser (../src/verify), a full-screen green or red verdict in Vietnamese or English, trust
// material from the server or imported, a scan log without personal data, offline through the
// service worker (/sw.js).

import { verifyQrText } from "../src/verify/hc1.js";
import { applyRules, profileName, ruleSetFromJson } from "../src/verify/rules.js";
import { evaluate } from "../src/vendor/certlogic.js";
import { loadTrust } from "../src/verify/trust.js";
import { freshness, validAges } from "../src/verify/age.js";
import { isSignedRuleSet, loadSignedRules } from "../src/verify/signed-rules.js";
import {
  browserState,
  importedRuleSet,
  importedTrustFiles,
  logScan,
  saveImportedRuleSet,
  saveImportedTrustFiles,
  saveSettings,
  scanLog,
  settings,
} from "./browser-state.js";
import { LABELS, reasonText, t } from "./i18n.js";

const DAY = 86400000;
const $ = (id) => document.getElementById(id);
const ui = {
  lang: settings().lang,
  store: null,
  trustRefused: null,
  verdictShown: false,
  stream: null,
  decoding: false,
  last: { text: null, at: 0 },
  rules: null, // {ruleSet, valueSets, country, signed: {info, age} | null}
  rulesProblem: null,
  rulesRefused: null, // a configured rule set that may not be used: every verdict is red
  anchors: [], // the CSCAs of the trust material: a signed rule set must chain to one
  authority: null, // {url} when the server mirrors the issuing authority (/authority/)
};
const worker = new Worker("/app/decode-worker.js", { type: "module" });
const pending = new Map();
let nextId = 1;

worker.onmessage = ({ data }) => {
  const resolve = pending.get(data.id);
  pending.delete(data.id);
  if (resolve) resolve(data.text || null);
};

function decode(image) {
  const id = nextId++;
  return new Promise((resolve) => {
    pending.set(id, resolve);
    worker.postMessage({ id, image });
  });
}

// --------------------------------------------------------------------------- texts

function applyLanguage() {
  document.documentElement.lang = ui.lang;
  for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(ui.lang, el.dataset.i18n);
  $("lang").textContent = t(ui.lang, "lang_other");
  $("start-camera").textContent = t(ui.lang, ui.stream ? "stop_camera" : "start_camera");
  $("log-count").textContent = t(ui.lang, "log_count", { n: scanLog().length });
  showTrustStatus();
  showProfiles();
  showAuthority();
}

function setStatus(el, text, state = "ok") {
  el.textContent = text;
  el.dataset.state = state;
  el.hidden = !text;
}

// --------------------------------------------------------------------------- trust

async function serverTrustFiles() {
  try {
    const index = await fetch("/trust/index.json", { cache: "no-cache" });
    if (!index.ok) return [];
    const { files } = await index.json();
    const out = [];
    for (const name of files) {
      const res = await fetch(`/trust/${encodeURIComponent(name)}`, { cache: "no-cache" });
      if (res.ok) out.push({ where: name, data: new Uint8Array(await res.arrayBuffer()) });
    }
    return out;
  } catch {
    return [];
  }
}

let trustSummary = { kind: "loading" };

async function reloadTrust() {
  const conf = settings();
  const files = [...(await serverTrustFiles()), ...importedTrustFiles()];
  ui.store = null;
  ui.trustRefused = null;
  ui.anchors = [];
  if (!files.length) {
    trustSummary = { kind: "none" };
    showTrustStatus();
    return;
  }
  const now = new Date();
  try {
    // A list past its nextUpdate stays usable up to the refusal age (no 48-hour cliff).
    const store = await loadTrust(files, { now, state: browserState(), staleGraceMs: conf.refuseDays * DAY, supersede: true });
    ui.anchors = store.anchors;
    const newest = store.trustLists.reduce((a, b) => (a && a.issuedAt >= b.issuedAt ? a : b), null);
    const fresh = newest ? freshness(newest.issuedAt, now.getTime(), conf) : null;
    const age = fresh ? fresh.days : null;
    trustSummary = { kind: "ok", dscs: [...store.byKid.values()].flat().length, newest, age, state: fresh && fresh.state };
    if (fresh && fresh.state === "too_old") {
      ui.trustRefused = t(ui.lang, "trust_refused", { age, max: conf.refuseDays });
    } else {
      ui.store = store;
    }
    const clockBehind = newest && newest.issuedAt > now.getTime() + 5 * 60000;
    setStatus(
      $("clock-status"),
      clockBehind ? t(ui.lang, "clock_wrong", { now: now.toISOString(), iat: new Date(newest.issuedAt).toISOString() }) : "",
      "warn",
    );
  } catch (err) {
    trustSummary = { kind: "error", message: err.message };
  }
  showTrustStatus();
}

function showTrustStatus() {
  const el = $("trust-status");
  const conf = settings();
  const s = trustSummary;
  if (s.kind === "loading") return setStatus(el, t(ui.lang, "trust_loading"), "warn");
  if (s.kind === "none") return setStatus(el, t(ui.lang, "trust_none"), "error");
  if (s.kind === "error") return setStatus(el, t(ui.lang, "trust_error", { message: s.message }), "error");
  if (ui.trustRefused) return setStatus(el, t(ui.lang, "trust_refused", { age: s.age, max: conf.refuseDays }), "error");
  const lists = s.newest
    ? t(ui.lang, "trust_list", { country: s.newest.country, seq: s.newest.seq, age: s.age })
    : t(ui.lang, "trust_files");
  const text = t(ui.lang, "trust_ok", { dscs: s.dscs, lists });
  if (s.state === "old") return setStatus(el, `${text}. ${t(ui.lang, "trust_warn", { age: s.age })}`, "warn");
  setStatus(el, text, "ok");
}

// --------------------------------------------------------------------------- rules

async function fetchBytes(path) {
  const res = await fetch(path, { cache: "no-cache" });
  return res.ok ? new Uint8Array(await res.arrayBuffer()) : null;
}

/** The rule set to apply: the newest valid signed one (served at /rules/signed.cbor or
 * imported), else the server's unsigned bundle; a signed set is checked against the trust
 * anchors, its age (the trust list's two limits) and the rollback counter. */
async function loadRuleSet() {
  ui.rules = null;
  ui.rulesProblem = null;
  ui.rulesRefused = null;
  const conf = settings();
  const now = new Date();
  let valueSets = {};
  let unsigned = null;
  const signed = [];
  try {
    const sets = await fetch("/rules/valuesets.json", { cache: "no-cache" });
    if (sets.ok) valueSets = await sets.json();
    const served = await fetchBytes("/rules/signed.cbor").catch(() => null);
    if (served) signed.push({ where: "/rules/signed.cbor", data: served });
    const res = await fetch("/rules/bundle.json", { cache: "no-cache" });
    if (res.ok) unsigned = ruleSetFromJson(await res.json(), "/rules/bundle.json");
  } catch (err) {
    ui.rulesProblem = err.message;
  }
  const imported = importedRuleSet();
  if (imported) signed.push(imported);
  const country = settings().country || "VN";
  if (signed.length) {
    // every candidate verified; the highest seq is used (and only it moves the counter)
    const verified = [];
    for (const file of signed) {
      try {
        verified.push({ file, ...(await verifyCandidate(file, now)) });
      } catch (err) {
        ui.rulesProblem = err.message;
      }
    }
    verified.sort((a, b) => b.info.seq - a.info.seq);
    if (verified.length) {
      try {
        const policy = { warnDays: conf.warnDays, refuseDays: conf.refuseDays };
        const { ruleSet, info, age } = await loadSignedRules(verified[0].file.data, verified[0].file.where, { anchors: ui.anchors, now, state: browserState(), policy });
        ui.rules = { ruleSet, valueSets, country, signed: { info, age } };
        ui.rulesProblem = null;
      } catch (err) {
        ui.rulesRefused = err.message;
      }
    } else {
      ui.rulesRefused = ui.rulesProblem;
    }
  } else if (unsigned) {
    ui.rules = { ruleSet: unsigned, valueSets, country, signed: null };
  }
  showProfiles();
}

async function verifyCandidate(file, now) {
  if (!isSignedRuleSet(file.data)) throw new Error(`${file.where}: not a signed rule set`);
  if (!ui.anchors.length) throw new Error(`${file.where}: ${t(ui.lang, "rules_need_trust")}`);
  const { verifySignedRuleSet } = await import("../src/verify/signed-rules.js");
  return verifySignedRuleSet(file.data, file.where, ui.anchors, now);
}

/** A rule set chosen on the page: verified before it is kept; a refused one changes nothing. */
async function importRules(file) {
  const data = new Uint8Array(await file.arrayBuffer());
  const candidate = { where: file.name, data };
  try {
    const now = new Date();
    const { info } = await verifyCandidate(candidate, now);
    const conf = settings();
    const age = freshness(info.issuedAt, now.getTime(), conf);
    if (age.state === "too_old") {
      throw new Error(`${file.name}: rule set seq ${info.seq} is ${age.days} days old, more than the ${conf.refuseDays} accepted: get a newer one from the issuing authority`);
    }
    const held = importedRuleSet();
    if (held) {
      const old = await verifyCandidate(held, new Date()).catch(() => null);
      if (old && old.info.seq > info.seq) {
        throw new Error(`${file.name}: rule set sequence ${info.seq} is older than the accepted ${old.info.seq} (rollback refused)`);
      }
    }
    saveImportedRuleSet(candidate);
  } catch (err) {
    setStatus($("rules-status"), t(ui.lang, "rules_refused", { message: err.message }), "error");
    $("rules-status").dataset.refused = "true";
    return;
  }
  delete $("rules-status").dataset.refused;
  await loadRuleSet();
}

function currentProfile() {
  if (!ui.rules) return null;
  const chosen = settings().profile;
  const { ruleSet, country } = ui.rules;
  if (chosen && chosen !== "all" && ruleSet.profiles.has(`${country}/${chosen}`)) return chosen;
  return profileName(ruleSet, country, chosen === "all" ? "all" : null);
}

function showProfiles() {
  const select = $("profile");
  const status = $("rules-status");
  if (!ui.rules) {
    select.replaceChildren();
    select.disabled = true;
    if (ui.rulesRefused) return setStatus(status, t(ui.lang, "rules_refused", { message: ui.rulesRefused }), "error");
    setStatus(status, ui.rulesProblem ? t(ui.lang, "rules_error", { message: ui.rulesProblem }) : t(ui.lang, "rules_none"), ui.rulesProblem ? "error" : "warn");
    return;
  }
  const { ruleSet, country } = ui.rules;
  const names = [...ruleSet.profiles.values()].filter((p) => p.country === country);
  select.replaceChildren(
    ...names.map((p) => {
      const o = document.createElement("option");
      o.value = p.name;
      o.textContent = p.name;
      o.title = p.descriptions[ui.lang] || p.descriptions.en || "";
      return o;
    }),
  );
  select.disabled = false;
  const profile = currentProfile();
  select.value = profile ?? "";
  const count = ruleSet.rules.filter((r) => r.country === country).length;
  const parts = [t(ui.lang, "rules_ok", { n: count, country, profile: profile ?? "all" })];
  let state = "ok";
  const signed = ui.rules.signed;
  if (signed) {
    parts.push(t(ui.lang, "rules_signed", { country: signed.info.country, seq: signed.info.seq, age: signed.age.days }));
    if (signed.age.state === "old") {
      parts.push(t(ui.lang, "rules_warn", { age: signed.age.days }));
      state = "warn";
    } else if (signed.age.state === "future") {
      parts.push(t(ui.lang, "rules_clock"));
      state = "warn";
    }
  } else {
    parts.push(t(ui.lang, "rules_unsigned"));
  }
  if (ui.rulesProblem) {
    parts.push(t(ui.lang, "rules_error", { message: ui.rulesProblem }));
    state = "warn";
  }
  setStatus(status, parts.join(". "), state);
  status.dataset.seq = signed ? String(signed.info.seq) : "";
  status.dataset.age = signed ? String(signed.age.days) : "";
}

function withRules(verdict) {
  if (ui.rulesRefused) {
    // a rule set was configured but may not be used: fail closed, never "valid without rules"
    const errors = [...verdict.errors, { stage: "rules", reason: "rules_refused", message: ui.rulesRefused }];
    return { ...verdict, valid: false, stage_failed: verdict.stage_failed || "rules", errors };
  }
  if (!ui.rules) return verdict;
  const { ruleSet, valueSets, country } = ui.rules;
  return applyRules(verdict, ruleSet, { country, profile: currentProfile(), now: new Date(), valueSets, evaluate });
}

// --------------------------------------------------------------------------- verdict

function refusal(code, message) {
  return { valid: false, stage_failed: "signature", errors: [{ stage: "signature", reason: code, message }], payload: null };
}

async function handleText(text, { fromImage }) {
  let verdict;
  if (!ui.store) {
    verdict = refusal("unknown_kid", ui.trustRefused || t(ui.lang, "trust_none"));
  } else {
    verdict = withRules(await verifyQrText(text, ui.store, { now: new Date(), qr: fromImage ? true : null }));
  }
  $("log-count").textContent = t(ui.lang, "log_count", { n: logScan(verdict) });
  showVerdict(verdict);
}

function addDetail(dl, label, value) {
  if (value === undefined || value === null || value === "") return;
  const dt = document.createElement("dt");
  dt.textContent = label;
  const dd = document.createElement("dd");
  dd.textContent = String(value);
  dl.append(dt, dd);
}

function showVerdict(verdict) {
  const L = LABELS[ui.lang] || LABELS.en;
  const box = $("verdict");
  box.dataset.valid = String(verdict.valid);
  box.dataset.reasons = verdict.errors.map((e) => e.reason).join(" ");
  $("verdict-title").textContent = verdict.valid ? L.valid : L.invalid;
  const dl = $("verdict-details");
  dl.replaceChildren();
  const hcert = verdict.payload && verdict.payload.hcert;
  if (hcert && typeof hcert === "object") {
    const nam = hcert.nam || {};
    const name = [nam.fn || nam.fnt, nam.gn || nam.gnt].filter(Boolean).join(" ");
    addDetail(dl, L.name, name);
    addDetail(dl, L.dob, hcert.dob);
    const v = Array.isArray(hcert.v) ? hcert.v[0] : null;
    if (v) addDetail(dl, L.vaccination, `${t(ui.lang, "dose", { dn: v.dn, sd: v.sd })} (${v.dt})`);
    const test = Array.isArray(hcert.t) ? hcert.t[0] : null;
    if (test) addDetail(dl, L.test, t(ui.lang, "sampled", { sc: test.sc }));
    const r = Array.isArray(hcert.r) ? hcert.r[0] : null;
    if (r) addDetail(dl, L.recovery, t(ui.lang, "positive_on", { fr: r.fr, df: r.df, du: r.du }));
    const exp = Number(verdict.payload.exp);
    if (Number.isFinite(exp)) addDetail(dl, L.expires, new Date(exp * 1000).toISOString().slice(0, 10));
  }
  const list = $("verdict-reasons");
  list.replaceChildren();
  if (!verdict.valid) {
    const texts = verdict.errors.map((e) =>
      e.reason === "rules_refused" ? t(ui.lang, "rules_refused", { message: e.message }) : reasonText(ui.lang, e.reason),
    );
    for (const r of verdict.rules || []) {
      if (r.result !== "passed") texts.push(`${r.rule}: ${r.description[ui.lang] || r.description.en || r.reason}`);
    }
    for (const text of new Set(texts)) {
      const li = document.createElement("li");
      li.textContent = text;
      list.append(li);
    }
  }
  box.hidden = false;
  ui.verdictShown = true;
}

function hideVerdict() {
  $("verdict").hidden = true;
  ui.verdictShown = false;
  ui.last.at = Date.now();
  $("qr-text").focus();
}

// --------------------------------------------------------------------------- camera

let detector = null;

async function nativeDetector() {
  if (!("BarcodeDetector" in globalThis)) return null;
  try {
    const formats = await globalThis.BarcodeDetector.getSupportedFormats();
    // QR, and Aztec where the browser reads it (as verifier/image.py)
    const wanted = ["qr_code", "aztec"].filter((f) => formats.includes(f));
    return wanted.includes("qr_code") ? new globalThis.BarcodeDetector({ formats: wanted }) : null;
  } catch {
    return null;
  }
}

async function startCamera(deviceId) {
  stopCamera();
  const video = $("video");
  try {
    ui.stream = await navigator.mediaDevices.getUserMedia({
      audio: false,
      video: deviceId
        ? { deviceId: { exact: deviceId } }
        : { facingMode: { ideal: "environment" }, width: { ideal: 1280 }, height: { ideal: 720 } },
    });
  } catch (err) {
    setStatus($("scan-status"), t(ui.lang, "camera_error", { message: err.message }), "error");
    return;
  }
  video.srcObject = ui.stream;
  await video.play();
  $("start-camera").textContent = t(ui.lang, "stop_camera");
  setStatus($("scan-status"), t(ui.lang, "scanning"), "ok");
  const cameras = (await navigator.mediaDevices.enumerateDevices()).filter((d) => d.kind === "videoinput");
  const select = $("camera-select");
  select.replaceChildren(
    ...cameras.map((c, i) => {
      const o = document.createElement("option");
      o.value = c.deviceId;
      o.textContent = c.label || `Camera ${i + 1}`;
      return o;
    }),
  );
  const track = ui.stream.getVideoTracks()[0];
  select.value = track.getSettings().deviceId || "";
  select.hidden = cameras.length < 2;
  const caps = track.getCapabilities ? track.getCapabilities() : {};
  $("torch").hidden = !caps.torch;
  detector = await nativeDetector();
  scanLoop();
}

function stopCamera() {
  if (!ui.stream) return;
  for (const track of ui.stream.getTracks()) track.stop();
  ui.stream = null;
  $("video").srcObject = null;
  $("start-camera").textContent = t(ui.lang, "start_camera");
  setStatus($("scan-status"), "", "ok");
}

const canvas = new OffscreenCanvas(1, 1);
const ctx = canvas.getContext("2d", { willReadFrequently: true });

async function scanFrame() {
  const video = $("video");
  if (!video.videoWidth) return null;
  if (detector) {
    const found = await detector.detect(video);
    const hc1 = found.find((f) => f.rawValue && f.rawValue.startsWith("HC1:")) || found[0];
    return hc1 ? hc1.rawValue : null;
  }
  canvas.width = video.videoWidth;
  canvas.height = video.videoHeight;
  ctx.drawImage(video, 0, 0);
  return decode(ctx.getImageData(0, 0, canvas.width, canvas.height));
}

async function scanLoop() {
  if (!ui.stream) return;
  if (!ui.verdictShown && !ui.decoding) {
    ui.decoding = true;
    try {
      const text = await scanFrame();
      // the same code still in front of the camera right after its verdict is not re-read
      const repeat = text === ui.last.text && Date.now() - ui.last.at < 3000;
      if (text && !repeat && !ui.verdictShown) {
        ui.last = { text, at: Date.now() };
        await handleText(text, { fromImage: true });
      }
    } finally {
      ui.decoding = false;
    }
  }
  setTimeout(scanLoop, 60);
}

async function toggleTorch() {
  const track = ui.stream && ui.stream.getVideoTracks()[0];
  if (!track) return;
  const on = !(track.getSettings().torch === true);
  await track.applyConstraints({ advanced: [{ torch: on }] });
}

// --------------------------------------------------------------------------- files

async function decodeImageFile(file) {
  const head = new Uint8Array(await file.slice(0, 5).arrayBuffer());
  const isPdf = String.fromCharCode(...head) === "%PDF-";
  if (isPdf || file.type === "application/pdf" || file.name.toLowerCase().endsWith(".pdf")) {
    // no PDF check in the browser (docs/scanner.md): say what is not checked, never a verdict
    setStatus($("scan-status"), t(ui.lang, "pdf_unsupported", { name: file.name }), "warn");
    $("scan-status").dataset.pdf = "unchecked";
    return;
  }
  delete $("scan-status").dataset.pdf;
  const text = await decode(file);
  if (text) await handleText(text, { fromImage: true });
  else showVerdict({ valid: false, stage_failed: "qr", errors: [{ stage: "qr", reason: "no_qr_code", message: "" }], payload: null });
}

async function importTrust(fileList) {
  const files = importedTrustFiles();
  for (const f of fileList) files.push({ where: f.name, data: new Uint8Array(await f.arrayBuffer()) });
  saveImportedTrustFiles(files);
  await reloadTrust();
  await loadRuleSet();
}

// --------------------------------------------------------------------------- issuing authority

/** `/authority/` is the issuing authority's trust list and rule set on this page's own origin
 * (the CSP allows no other): `verifier serve --authority-url URL` mirrors them, or the operator
 * places the files there (docs/scanner.md "Import by URL"). The page verifies both itself. */
async function authorityIndex() {
  try {
    const res = await fetch("/authority/index.json", { cache: "no-cache" });
    if (!res.ok) return;
    ui.authority = await res.json();
  } catch {
    return;
  }
  $("authority-update").hidden = false;
  ui.authorityStatus = ["authority_from", { url: ui.authority.url }, "ok"];
  showAuthority();
}

function showAuthority() {
  if (!ui.authorityStatus) return;
  const [key, values, state] = ui.authorityStatus;
  setStatus($("authority-status"), t(ui.lang, key, values), state);
}

async function updateFromAuthority() {
  if (!ui.authority) return;
  const url = ui.authority.url;
  const got = [];
  const problems = [];
  for (const [name, kind] of [["trustlist.cbor", "trust"], ["rules.cbor", "rules"]]) {
    try {
      const res = await fetch(`/authority/${name}`, { cache: "no-store" });
      if (!res.ok) throw new Error(`${name}: ${(await res.text()).trim().slice(0, 200) || res.status}`);
      const data = new Uint8Array(await res.arrayBuffer());
      got.push({ name, kind, data });
    } catch (err) {
      problems.push(err.message);
    }
  }
  const trust = got.find((g) => g.kind === "trust");
  if (trust) {
    const before = importedTrustFiles();
    const files = before.filter((f) => f.where !== `authority/${trust.name}`);
    files.push({ where: `authority/${trust.name}`, data: trust.data });
    saveImportedTrustFiles(files);
    await reloadTrust();
    if (trustSummary.kind === "error") {
      // a list the page refuses (bad signature, rollback...) never replaces a working one
      problems.push(trustSummary.message);
      saveImportedTrustFiles(before);
      await reloadTrust();
    }
  }
  const rules = got.find((g) => g.kind === "rules");
  if (rules) {
    await importRules(new File([rules.data], `authority/${rules.name}`));
    if ($("rules-status").dataset.refused === "true") problems.push($("rules-status").textContent);
  } else {
    await loadRuleSet();
  }
  ui.authorityStatus = problems.length
    ? ["authority_error", { url, message: problems.join("; ") }, "error"]
    : ["authority_ok", { url, what: got.map((g) => g.name).join(", ") }, "ok"];
  showAuthority();
  $("authority-status").dataset.done = "true";
}

function exportLog() {
  const blob = new Blob([JSON.stringify(scanLog(), null, 1)], { type: "application/json" });
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = `scan-log-${new Date().toISOString().slice(0, 10)}.json`;
  a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 1000);
}

// --------------------------------------------------------------------------- wiring

function wire() {
  $("lang").addEventListener("click", () => {
    ui.lang = ui.lang === "vi" ? "en" : "vi";
    saveSettings({ lang: ui.lang });
    applyLanguage();
  });
  $("start-camera").addEventListener("click", () => (ui.stream ? stopCamera() : startCamera()));
  $("camera-select").addEventListener("change", (e) => startCamera(e.target.value));
  $("torch").addEventListener("click", toggleTorch);
  $("photo").addEventListener("change", (e) => e.target.files[0] && decodeImageFile(e.target.files[0]));
  $("qr-text").addEventListener("keydown", (e) => {
    if (e.key !== "Enter") return;
    e.preventDefault();
    e.stopPropagation(); // its verdict may already show when the event reaches the document
    const text = e.target.value;
    e.target.value = "";
    if (text) handleText(text, { fromImage: false });
  });
  $("trust-file").addEventListener("change", (e) => importTrust(e.target.files));
  $("rules-file").addEventListener("change", (e) => e.target.files[0] && importRules(e.target.files[0]));
  $("authority-update").addEventListener("click", () => updateFromAuthority());
  $("export-log").addEventListener("click", exportLog);
  const ages = () => {
    const warnDays = Number($("warn-days").value);
    const refuseDays = Number($("refuse-days").value);
    if (validAges({ warnDays, refuseDays })) {
      saveSettings({ warnDays, refuseDays });
      reloadTrust().then(loadRuleSet);
    } else {
      $("warn-days").value = settings().warnDays;
      $("refuse-days").value = settings().refuseDays;
    }
  };
  $("warn-days").value = settings().warnDays;
  $("refuse-days").value = settings().refuseDays;
  $("warn-days").addEventListener("change", ages);
  $("refuse-days").addEventListener("change", ages);
  $("profile").addEventListener("change", (e) => {
    saveSettings({ profile: e.target.value });
    showProfiles();
  });
  $("verdict").addEventListener("click", hideVerdict);
  document.addEventListener("keydown", (e) => {
    if (!ui.verdictShown) return;
    // a key closes the verdict; typed into the wedge field it also starts the next code
    if (e.target !== $("qr-text")) e.preventDefault();
    hideVerdict();
  });
  const drop = $("drop");
  drop.addEventListener("dragover", (e) => {
    e.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    if (e.dataTransfer.files[0]) decodeImageFile(e.dataTransfer.files[0]);
  });
  const online = () => setStatus($("offline-status"), navigator.onLine ? "" : t(ui.lang, "offline"), "warn");
  addEventListener("online", online);
  addEventListener("offline", online);
  online();
}

async function main() {
  wire();
  applyLanguage();
  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.register("/sw.js").catch(() => {});
  }
  await reloadTrust();
  await loadRuleSet();
  await authorityIndex();
  document.body.dataset.ready = "true";
  $("qr-text").focus();
}

main();

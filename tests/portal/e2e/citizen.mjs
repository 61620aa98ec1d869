// The citizen portal in headless Chromium (playwright-core from scanner/node_modules, Debian's
// /usr/bin/chromium), against a real `python -m signer serve`. Driven by
// tests/portal/test_citizen_server.py: argv[2] is a JSON config
//   {url, chromium, outbox, download, shots?, owner: {id, dob, phone}, unknown: {id, dob},
//    wrongDob: {id, dob}, locked: {id, dob}, claim: {id, dob, code, phone}, attempts}
// and one JSON object with what happened is printed on stdout.

import { createRequire } from "node:module";
import fs from "node:fs";

const require = createRequire(new URL("../../../scanner/package.json", import.meta.url));
const { chromium } = require("playwright-core");

const config = JSON.parse(process.argv[2]);
const TIMEOUT = 30000;
const out = { csp_violations: [], steps: {} };

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// The newest code the development sender wrote for `phone` after `since` messages.
async function codeFor(phone, since) {
  for (let i = 0; i < 100; i++) {
    if (fs.existsSync(config.outbox)) {
      const lines = fs.readFileSync(config.outbox, "utf-8").split("\n").filter(Boolean).map(JSON.parse);
      const mine = lines.slice(since).filter((m) => m.to === phone);
      if (mine.length) return mine[mine.length - 1].text.match(/\b(\d{6})\b/)[1];
    }
    await sleep(100);
  }
  throw new Error("no code in the outbox");
}

function outboxLength() {
  if (!fs.existsSync(config.outbox)) return 0;
  return fs.readFileSync(config.outbox, "utf-8").split("\n").filter(Boolean).length;
}

async function shot(page, name) {
  if (config.shots) await page.screenshot({ path: `${config.shots}/portal-${name}.png`, fullPage: true });
}

async function newPage(browser) {
  const context = await browser.newContext({ viewport: { width: 760, height: 900 }, acceptDownloads: true });
  const page = await context.newPage();
  page.setDefaultTimeout(TIMEOUT);
  page.on("console", (msg) => {
    if (/Content.Security.Policy|Refused to/i.test(msg.text())) out.csp_violations.push(msg.text());
  });
  return { context, page };
}

async function lookUp(page, person) {
  await page.goto(config.url);
  await page.fill("#id_number", person.id);
  await page.fill("#birth_date", person.dob);
  const [response] = await Promise.all([
    page.waitForNavigation(),
    page.click("form[action='/lookup'] button[type=submit]"),
  ]);
  return response;
}

async function enterCode(page, code) {
  await page.fill("#code", code);
  const [response] = await Promise.all([page.waitForNavigation(), page.click("form[action='/code'] button")]);
  return response;
}

async function main() {
  const browser = await chromium.launch({
    executablePath: config.chromium,
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
           "--disable-component-update", "--disable-sync"],
  });
  try {
    // 1. the owner: look-up -> code from the outbox -> passport -> PDF
    const { context, page } = await newPage(browser);
    await page.goto(config.url);
    await shot(page, "lookup-vi");
    const before = outboxLength();
    const looked = await lookUp(page, config.owner);
    out.steps.owner_lookup = { status: looked.status(), url: page.url(), text: await page.innerText("main") };
    await shot(page, "code-vi");
    const code = await codeFor(config.owner.phone, before);
    await enterCode(page, code);
    out.steps.passport = { url: page.url(), text: await page.innerText("main") };
    const qrOk = await page.evaluate(() => {
      const img = document.querySelector("img.qr");
      return !!img && img.complete && img.naturalWidth > 0;
    });
    out.steps.passport.qr_loaded = qrOk;
    await shot(page, "passport-vi");
    const [download] = await Promise.all([page.waitForEvent("download"), page.click("a.button")]);
    await download.saveAs(config.download);
    out.steps.download = { suggested: download.suggestedFilename() };
    await page.goto(`${config.url}access`);
    out.steps.access = { text: await page.innerText("main") };
    await shot(page, "access-vi");
    // English, by the language link
    await page.click("a.lang");
    await page.goto(`${config.url}passport`);
    out.steps.passport_en = { text: await page.innerText("main") };
    await shot(page, "passport-en");
    await page.goto(`${config.url}access`);
    await shot(page, "access-en");
    await page.goto(`${config.url}claim`);
    await shot(page, "claim-en");
    await page.goto(config.url);
    await shot(page, "lookup-en");
    // sign out: the passport page asks to sign in again
    await page.goto(`${config.url}passport`);
    await Promise.all([page.waitForNavigation(), page.click("form[action='/signout'] button")]);
    out.steps.signout = { text: await page.innerText("main") };
    const again = await page.goto(`${config.url}passport`);
    out.steps.after_signout = { status: again.status() };
    await context.close();

    // 2. enumeration: unknown ID and wrong date of birth look the same as the owner's look-up
    for (const [name, person] of [["unknown", config.unknown], ["wrong_dob", config.wrongDob]]) {
      const { context: c, page: p } = await newPage(browser);
      const r = await lookUp(p, person);
      out.steps[name] = { status: r.status(), url: p.url(), text: await p.innerText("main") };
      const wrong = await enterCode(p, "000000");
      out.steps[name].wrong_status = wrong.status();
      out.steps[name].wrong_text = await p.innerText("main");
      await c.close();
    }

    // 3. lockout: wrong codes lock the look-up; the claim code undoes it
    {
      const { context: c, page: p } = await newPage(browser);
      await p.goto(`${config.url}?lang=vi`);
      await lookUp(p, config.locked);
      const statuses = [];
      for (let i = 0; i < config.attempts; i++) statuses.push((await enterCode(p, "000000")).status());
      out.steps.lock_wrong = statuses;
      const locked = await lookUp(p, config.locked);
      out.steps.locked = { status: locked.status(), text: await p.innerText("main") };
      await shot(p, "locked-vi");
      if (config.shots) {
        // the English pages of a look-up (the code page) and of the lock, for docs/screenshots only
        for (const [name, person] of [["code-en", config.unknown], ["locked-en", config.locked]]) {
          const { context: c2, page: p2 } = await newPage(browser);
          await p2.goto(`${config.url}?lang=en`);
          await lookUp(p2, person);
          await shot(p2, name);
          await c2.close();
        }
      }
      await p.goto(`${config.url}claim`);
      await shot(p, "claim-vi");
      await p.fill("#id_number", config.claim.id);
      await p.fill("#birth_date", config.claim.dob);
      await p.fill("#claim_code", config.claim.code);
      await p.fill("#phone", config.claim.phone);
      const mark = outboxLength();
      const claimed = await Promise.all([p.waitForNavigation(), p.click("form[action='/claim'] button")]);
      out.steps.claim = { status: claimed[0].status(), url: p.url() };
      const claimCode = await codeFor(config.claim.e164, mark);
      await enterCode(p, claimCode);
      out.steps.claim_passport = { url: p.url(), text: await p.innerText("main") };
      await c.close();
    }
  } finally {
    await browser.close();
  }
  process.stdout.write(JSON.stringify(out));
}

main().catch((err) => {
  process.stderr.write(String(err && err.stack ? err.stack : err));
  process.stdout.write(JSON.stringify(out));
  process.exit(1);
});

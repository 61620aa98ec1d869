// A scripted session on the scanner page in headless Chromium (playwright-core, Debian's
// /usr/bin/chromium), for the tests of signed rule sets and the issuing authority's mirror
// (tests/scanner/test_page_rules.py). argv[2] is a JSON config {url, chromium, lang, steps}
// with steps of the kinds
//   {do: "import-rules", file}      choose a file in "Import a signed rule set"
//   {do: "wedge", text, profile?}   type an HC1 text into the scanner field (+ Enter)
//   {do: "authority"}               press "Update from the issuing authority"
//   {do: "photo", file}             choose a file in "Photo of a QR code"
//   {do: "drop", file, name?}       drop a file (any name, no type) on the drop area
//   {do: "status"}                  only read the status lines
// and one JSON object is printed: {steps: [{do, status: {...}, verdict?}], csp_violations}.

import { chromium } from "playwright-core";

const config = JSON.parse(process.argv[2]);
const TIMEOUT = 30000;

const browser = await chromium.launch({
  executablePath: config.chromium,
  headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const out = { steps: [], csp_violations: [], console: [] };
try {
  const context = await browser.newContext({ viewport: { width: 900, height: 900 } });
  const page = await context.newPage();
  page.on("console", (msg) => {
    out.console.push(msg.text());
    if (/Content.Security.Policy|Refused to/i.test(msg.text())) out.csp_violations.push(msg.text());
  });
  page.on("pageerror", (err) => out.csp_violations.push(`pageerror: ${err.message}`));
  await page.goto(config.url);
  await page.waitForSelector("body[data-ready=true]", { timeout: TIMEOUT });
  if (config.lang && (await page.getAttribute("html", "lang")) !== config.lang) await page.click("#lang");

  const status = () =>
    page.evaluate(() => {
      const el = (id) => document.getElementById(id);
      const r = el("rules-status");
      return {
        trust: el("trust-status").textContent,
        trust_state: el("trust-status").dataset.state,
        rules: r.textContent,
        rules_state: r.dataset.state,
        rules_seq: r.dataset.seq || null,
        rules_age: r.dataset.age || null,
        authority: el("authority-status").hidden ? null : el("authority-status").textContent,
        scan: el("scan-status").textContent,
        scan_state: el("scan-status").dataset.state,
        pdf: el("scan-status").dataset.pdf || null,
        verdict_shown: !el("verdict").hidden,
        authority_button: !el("authority-update").hidden,
        profiles: [...el("profile").options].map((o) => o.value),
      };
    });

  const readVerdict = async () => {
    const verdict = await page.evaluate(() => {
      const box = document.getElementById("verdict");
      return { valid: box.dataset.valid === "true", reasons: box.dataset.reasons ? box.dataset.reasons.split(" ") : [], text: box.innerText };
    });
    await page.click("#verdict");
    return verdict;
  };

  for (const step of config.steps) {
    const record = { do: step.do };
    try {
      if (step.do === "import-rules") {
        const before = await page.textContent("#rules-status");
        await page.setInputFiles("#rules-file", step.file);
        await page.waitForFunction((b) => document.getElementById("rules-status").textContent !== b, before, { timeout: TIMEOUT });
      } else if (step.do === "photo") {
        await page.setInputFiles("#photo", step.file);
        await page.waitForFunction(() => document.getElementById("scan-status").dataset.pdf || !document.getElementById("verdict").hidden, null, { timeout: TIMEOUT });
      } else if (step.do === "drop") {
        // a file dropped on the drop area, as a user does from the file manager
        const { readFileSync } = await import("node:fs");
        const b64 = readFileSync(step.file).toString("base64");
        await page.evaluate(({ b64, name }) => {
          delete document.getElementById("scan-status").dataset.pdf;
          const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
          const dt = new DataTransfer();
          dt.items.add(new File([bytes], name, { type: "" }));
          document.getElementById("drop").dispatchEvent(new DragEvent("drop", { dataTransfer: dt, bubbles: true, cancelable: true }));
        }, { b64, name: step.name || "passport" });
        await page.waitForFunction(() => document.getElementById("scan-status").dataset.pdf || !document.getElementById("verdict").hidden, null, { timeout: TIMEOUT });
      } else if (step.do === "authority") {
        await page.evaluate(() => delete document.getElementById("authority-status").dataset.done);
        await page.click("#authority-update");
        await page.waitForSelector("#authority-status[data-done=true]", { timeout: TIMEOUT });
      } else if (step.do === "wedge") {
        if (step.profile) await page.selectOption("#profile", step.profile);
        await page.fill("#qr-text", step.text);
        await page.press("#qr-text", "Enter");
        await page.waitForSelector("#verdict:not([hidden])", { timeout: TIMEOUT });
        record.verdict = await readVerdict();
      }
      record.status = await status();
      // a photo that gave a verdict: keep it, then dismiss it (as the wedge does)
      if (step.do === "photo" && record.status.verdict_shown) record.verdict = await readVerdict();
    } catch (err) {
      record.error = String(err && err.message);
      record.status = await status().catch(() => null);
    }
    out.steps.push(record);
  }
} finally {
  await browser.close();
}
process.stdout.write(`${JSON.stringify(out)}\n`);

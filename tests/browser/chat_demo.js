// Drives the chat demo page in headless Chromium (Debian's package; Playwright only drives it):
// two tabs join the demo channel as two members, a message typed in one appears in the other,
// and a third tab opened later sees both in its history.
//
//   node tests/browser/chat_demo.js <base url> <chromium path> [screenshot.png] [second base url]
//
// With a second base URL (another server process sharing the channel layer), bob's tab is
// served by it, so the message crosses processes.
// Prints one JSON line with what each tab saw; exits non-zero with a reason on any failure.
"use strict";

const { chromium } = require("playwright-core");

const [base, executablePath, screenshot, secondBase] = process.argv.slice(2);
const TIMEOUT = 10000;
const stamp = Date.now().toString(36);

async function join(context, name, server = base) {
  const page = await context.newPage();
  page.setDefaultTimeout(TIMEOUT);
  const problems = [];
  page.on("pageerror", (error) => problems.push(String(error)));
  page.on("console", (message) => {
    if (message.type() === "error") problems.push(message.text());
  });
  await page.goto(server + "/demo/chat");
  await page.fill("#name", name);
  await page.click("#join");
  try {
    await page.waitForSelector("body[data-ready=true]");
  } catch (error) {
    const status = await page.textContent("#status");
    throw new Error(`${name} could not join: ${status} ${problems.join("; ")}`);
  }
  return page;
}

async function say(page, text) {
  await page.fill("#text", text);
  await page.press("#text", "Enter");
}

async function sees(page, who, text) {
  const item = page.locator("#log li.msg", { hasText: text });
  await item.first().waitFor();
  const sender = await item.first().locator(".who").textContent();
  if (sender !== who) throw new Error(`"${text}" shown as from ${sender}, not ${who}`);
}

async function messages(page) {
  return page.$$eval("#log li.msg", (items) =>
    items.map((li) => ({ who: li.querySelector(".who").textContent, text: li.querySelector(".text").textContent })),
  );
}

(async () => {
  const browser = await chromium.launch({ executablePath, headless: true, args: ["--no-sandbox"] });
  try {
    // Two tabs of one browser: they share cookies, as a person's two tabs would.
    const context = await browser.newContext();
    const alice = await join(context, `alice-${stamp}`);
    const bob = await join(context, `bob-${stamp}`, secondBase || base);

    const hello = `hello from alice ${stamp} ✓`;
    await say(alice, hello);
    await sees(bob, `alice-${stamp}`, hello);
    await sees(alice, `alice-${stamp}`, hello);

    const reply = `and hello from bob ${stamp} <b>not bold</b>`;
    await say(bob, reply);
    await sees(alice, `bob-${stamp}`, reply);
    if ((await alice.locator("#log b").count()) !== 0) throw new Error("message text was rendered as HTML");

    await bob.waitForFunction((name) => document.querySelector("#members").textContent.includes(name), `alice-${stamp}`);

    // A tab opened later gets both from the relay's history, in order.
    const carol = await join(context, `carol-${stamp}`);
    await sees(carol, `alice-${stamp}`, hello);
    await sees(carol, `bob-${stamp}`, reply);
    const history = (await messages(carol)).map((m) => m.text);
    if (history.indexOf(hello) > history.indexOf(reply)) throw new Error("history out of order: " + JSON.stringify(history));

    if (screenshot) await alice.screenshot({ path: screenshot, fullPage: true });
    console.log(JSON.stringify({ alice: await messages(alice), bob: await messages(bob), carol: await messages(carol), version: browser.version() }));
  } finally {
    await browser.close();
  }
})().catch((error) => {
  console.error(error && error.stack ? error.stack : String(error));
  process.exit(1);
});

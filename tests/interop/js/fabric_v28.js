// The real @signalwire/js 3.28.0 Fabric chat (SignalWire({token}).chat) against Roomkey.
// Input (env): CHANNEL, TOKEN_A, TOKEN_B (chat tokens of "alice" and "bob"), BASE (http://127.0.0.1:PORT).
// The client sends HTTP to https://fabric.<host without its first label>; a fetch wrapper
// points that origin at Roomkey, which is all a test can do without DNS and TLS.
// Output: one JSON report on stdout, checked by tests/interop/test_signalwire_js.py.
globalThis.WebSocket = require("ws");
const realFetch = globalThis.fetch;
const http = [];
globalThis.fetch = (input, init) => {
  const url = new URL(typeof input === "string" ? input : input.url);
  const target = process.env.BASE + url.pathname + url.search;
  http.push({ method: (init && init.method) || "GET", path: url.pathname + url.search, host: url.host });
  return realFetch(target, init);
};
const { Fabric } = require("sw328");
const { until, run } = require("./harness");

const CHANNEL = process.env.CHANNEL || "general";
const report = { http };

async function main() {
  // `host` only names the HTTP origin here (fabric.roomkey.test); the WebSocket URL comes
  // from the token's `ch` header.
  const client = await Fabric.SignalWire({ token: process.env.TOKEN_A, host: "relay.roomkey.test" });
  const address = await client.address.getAddress({ name: CHANNEL });
  report.address = address;
  const addressId = address.id;
  report.byId = await client.address.getAddress({ id: addressId });

  const received = [];
  const sub = await client.chat.subscribe({ addressId, onMessage: (m) => received.push(m) });
  report.join = await client.chat.join({ addressId });

  report.sent = await client.chat.sendMessage({ addressId, text: "hello fabric" });
  await until(() => received.some((m) => m.text === "hello fabric"), "own message event");
  report.event = received.find((m) => m.text === "hello fabric");

  // Someone else posts through the relay-independent HTTP path: bob's token, plain fetch.
  for (let i = 0; i < 5; i++) {
    const r = await realFetch(process.env.BASE + "/api/fabric/messages", {
      method: "POST",
      headers: { Authorization: `Bearer ${process.env.TOKEN_B}`, "Content-Type": "application/json" },
      body: JSON.stringify({ conversation_id: addressId, text: `bob ${i}` }),
    });
    if (r.status !== 201) throw new Error(`bob send ${r.status} ${await r.text()}`);
  }
  await until(() => received.filter((m) => m.user_id === "bob").length === 5, "bob's messages");

  const pages = [];
  let page = await client.chat.getMessages({ addressId, pageSize: 4 });
  pages.push({ texts: page.data.map((m) => m.text), hasNext: page.hasNext, hasPrev: page.hasPrev });
  report.firstItem = page.data[0];
  while (page.hasNext) {
    page = await page.nextPage();
    if (!page) break;
    pages.push({ texts: page.data.map((m) => m.text), hasNext: page.hasNext, hasPrev: page.hasPrev });
    if (pages.length > 10) break;
  }
  report.pages = pages;
  // And back: prevPage from the last page follows its relative `prev` link to newer messages.
  const back = page && (await page.prevPage());
  report.back = back && { texts: back.data.map((m) => m.text), hasNext: back.hasNext, hasPrev: back.hasPrev };

  sub.unsubscribe();
  const before = received.length;
  await client.chat.sendMessage({ addressId, text: "after unsubscribe" });
  await new Promise((r) => setTimeout(r, 300));
  report.afterUnsubscribe = received.length - before;

  try {
    await client.chat.getMessages({ addressId: "00000000-0000-0000-0000-000000000000" });
    report.unknownAddress = "no error";
  } catch (error) {
    report.unknownAddress = String(error.message || error);
  }
  await client.disconnect();
}

run(main, report);

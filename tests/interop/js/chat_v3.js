// The real @signalwire/js 3.30.0 Chat.Client against Roomkey's relay, unchanged.
// Input (env): CHANNEL, CHANNEL_B, TOKEN_A, TOKEN_B (chat tokens for "alice" and "bob" on CHANNEL; alice
// may only read "readonly", neither token names "secret"). Output: one JSON report on stdout, which
// tests/interop/test_signalwire_js.py checks.
globalThis.WebSocket = require("ws");
const { Chat } = require("sw330");
const { until, run } = require("./harness");

const CHANNEL = process.env.CHANNEL || "general";
// Bob names the channel his own way (e.g. another Unicode normal form of the same name).
const CHANNEL_B = process.env.CHANNEL_B || CHANNEL;
const wait = (ms) => new Promise((r) => setTimeout(r, ms));
const report = { steps: [], errors: {} };

async function refused(name, promise) {
  try {
    await promise;
    report.errors[name] = null;
  } catch (error) {
    report.errors[name] = error && (error.code || error.message || String(error));
  }
}

async function main() {
  const alice = new Chat.Client({ token: process.env.TOKEN_A });
  const bob = new Chat.Client({ token: process.env.TOKEN_B });
  const seen = { alice: [], bob: [], joined: [], updated: [], left: [] };
  alice.on("message", (m) => seen.alice.push({ id: m.id, content: m.content, meta: m.meta,
    channel: m.channel, member: m.member, publishedAt: m.publishedAt }));
  bob.on("message", (m) => seen.bob.push({ id: m.id, content: m.content }));
  alice.on("member.joined", (m) => seen.joined.push({ id: m.id, channel: m.channel, state: m.state }));
  alice.on("member.updated", (m) => seen.updated.push({ id: m.id, channel: m.channel, state: m.state }));
  alice.on("member.left", (m) => seen.left.push({ id: m.id, channel: m.channel }));

  await alice.subscribe([CHANNEL]);
  report.allowed = await alice.getAllowedChannels();
  await bob.subscribe(CHANNEL_B);
  await until(() => seen.joined.some((m) => m.id === "bob"), "bob joined");
  report.steps.push("subscribed");

  await bob.publish({ channel: CHANNEL_B, content: "hello from bob", meta: { mood: "happy" } });
  await alice.publish({ channel: CHANNEL, content: { structured: ["json", 1] } });
  await until(() => seen.alice.length >= 2 && seen.bob.length >= 2, "both messages");
  report.received = seen.alice.slice(0, 2).map((m) => ({ ...m,
    publishedAt: m.publishedAt instanceof Date ? m.publishedAt.getTime() : m.publishedAt }));
  report.steps.push("published");

  // History across pages: 12 more messages, then walk back with cursor.after.
  for (let i = 0; i < 12; i++) {
    await alice.publish({ channel: CHANNEL, content: `history ${i}` });
  }
  const pages = [];
  let page = await alice.getMessages({ channel: CHANNEL });
  pages.push(page.messages.map((m) => m.content));
  report.firstCursor = page.cursor;
  while (page.cursor && page.cursor.next) {
    page = await alice.getMessages({ channel: CHANNEL, cursor: { after: page.cursor.after } });
    pages.push(page.messages.map((m) => m.content));
  }
  report.pages = pages;
  report.historySample = (await alice.getMessages({ channel: CHANNEL })).messages[0];

  const members = await alice.getMembers({ channel: CHANNEL });
  report.members = members.members.map((m) => ({ id: m.id, channel: m.channel, state: m.state }));

  await bob.setMemberState({ memberId: "bob", channels: [CHANNEL_B], state: { typing: true } });
  await until(() => seen.updated.some((m) => m.id === "bob"), "bob updated");
  report.updated = seen.updated.find((m) => m.id === "bob");
  report.bobState = await alice.getMemberState({ memberId: "bob", channels: [CHANNEL] });

  await refused("publishReadOnly", alice.publish({ channel: "readonly", content: "no" }));
  await refused("subscribeSecret", alice.subscribe(["secret"]));
  await refused("setOthersState", alice.setMemberState({ memberId: "bob", channels: [CHANNEL], state: {} }));

  await bob.unsubscribe([CHANNEL_B]);
  await until(() => seen.left.some((m) => m.id === "bob"), "bob left");
  const bobBefore = seen.bob.length;
  await alice.publish({ channel: CHANNEL, content: "after unsubscribe" });
  await until(() => seen.alice.some((m) => m.content === "after unsubscribe"), "own message");
  await wait(300);
  report.bobGotAfterUnsubscribe = seen.bob.length - bobBefore;
  report.steps.push("done");

  await bob.disconnect();
  await alice.disconnect();
}

run(main, report);

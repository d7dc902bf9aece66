// The LangGraph Platform cron how-to, JavaScript tab, verbatim in spirit: @langchain/langgraph-sdk against a real
// crongraph server. Schedules are seconds-level (six fields), so nothing waits for minutes.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { Client } from "@langchain/langgraph-sdk";
import { startServer } from "./server.mjs";

let server;
let client;

before(async () => {
  server = await startServer();
  client = new Client({ apiUrl: server.url });
});

after(() => server?.stop());

async function eventually(check, ms = 10_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 50));
  }
}

const input = { messages: [{ role: "user", content: "What time is it?" }] };

test("thread cron: create, fire, observe, delete", async () => {
  const thread = await client.threads.create();
  const cron = await client.crons.createForThread(thread.thread_id, "agent", { schedule: "* * * * * *", input });
  assert.equal(cron.thread_id, thread.thread_id);
  assert.equal(cron.payload.config.configurable.cron_id, cron.cron_id);

  const runs = await eventually(async () => {
    const list = await client.runs.list(thread.thread_id);
    return list.length > 0 ? list : null;
  });
  assert.equal(runs[0].kwargs.config.configurable.cron_id, cron.cron_id);
  await client.runs.join(thread.thread_id, runs[0].run_id);
  const state = await client.threads.getState(thread.thread_id);
  assert.equal(state.values.messages.at(-1).content, "echo: What time is it?");

  await client.crons.delete(cron.cron_id);
  const found = await client.crons.search({ threadId: thread.thread_id });
  assert.deepEqual(found, []);
});

test("stateless cron: each fire on a fresh thread, kept with onRunCompleted keep", async () => {
  const cron = await client.crons.create("agent", {
    schedule: "* * * * * *",
    input,
    onRunCompleted: "keep",
    metadata: { job: "js" },
  });
  assert.equal(cron.thread_id, null);
  assert.equal(cron.on_run_completed, "keep");
  const threads = await eventually(async () => {
    const list = await client.threads.search({ metadata: { job: "js" } });
    return list.length > 0 ? list : null;
  });
  await client.crons.delete(cron.cron_id);
  assert.equal(threads[0].metadata.job, "js");
});

test("update, search, count and the end_time clear of the JS client", async () => {
  const thread = await client.threads.create();
  const cron = await client.crons.createForThread(thread.thread_id, "agent", {
    schedule: "27 15 * * *",
    timezone: "Asia/Seoul",
    endTime: new Date(Date.now() + 86_400_000).toISOString(),
    metadata: { team: "js" },
  });
  assert.ok(cron.end_time);
  const updated = await client.crons.update(cron.cron_id, { enabled: false, endTime: null, metadata: { more: 1 } });
  assert.equal(updated.enabled, false);
  assert.equal(updated.end_time, null);
  assert.deepEqual(updated.metadata, { team: "js", more: 1 });
  assert.equal(await client.crons.count({ threadId: thread.thread_id }), 1);
  const search = await client.crons.search({ threadId: thread.thread_id, sortBy: "next_run_date", sortOrder: "asc" });
  assert.equal(search.length, 1);
  assert.equal(new Date(search[0].next_run_date).getUTCHours(), 6); // 15:27 in Seoul
  await client.crons.delete(cron.cron_id);
});

test("bad input is a 4xx that names the problem", async () => {
  await assert.rejects(
    client.crons.create("agent", { schedule: "61 * * * *" }),
    (err) => err.status === 422 && /minute/.test(String(err.message) + JSON.stringify(err.body ?? "")),
  );
  await assert.rejects(client.crons.create("nope", { schedule: "* * * * *" }), (err) => err.status === 404);
});

// Custom auth through @langchain/langgraph-sdk against a real crongraph serving tests/fixtures/auth_project: each
// client sends its bearer token in `defaultHeaders`; another user's thread, run and cron answer as if they did not
// exist, and the graph runs as whoever created its run.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { Client } from "@langchain/langgraph-sdk";
import { startServer } from "./server.mjs";

let server;
let alice;
let bob;
let anonymous;

before(async () => {
  server = await startServer({ fixture: "auth_project" });
  alice = new Client({ apiUrl: server.url, defaultHeaders: { Authorization: "Bearer alice-token" } });
  bob = new Client({ apiUrl: server.url, defaultHeaders: { Authorization: "Bearer bob-token" } });
  anonymous = new Client({ apiUrl: server.url, callerOptions: { maxRetries: 0 } });
});

after(() => server?.stop());

async function statusOf(promise) {
  try {
    await promise;
    return 200;
  } catch (error) {
    return error.status ?? error.response?.status ?? String(error);
  }
}

test("without a token every API call is 401", async () => {
  assert.equal(await statusOf(anonymous.threads.search()), 401);
  assert.equal(await statusOf(anonymous.threads.create()), 401);
});

test("threads, runs and crons are their owner's alone", async () => {
  const thread = await alice.threads.create({ metadata: { topic: "js" } });
  assert.equal(thread.metadata.owner, "alice");
  const result = await alice.runs.wait(thread.thread_id, "whoami", { input: {} });
  assert.equal(result.user_id, "alice");
  assert.equal(result.identity, "alice");
  const [run] = await alice.runs.list(thread.thread_id);

  assert.equal(await statusOf(bob.threads.get(thread.thread_id)), 404);
  assert.equal(await statusOf(bob.threads.getState(thread.thread_id)), 404);
  assert.equal(await statusOf(bob.runs.get(thread.thread_id, run.run_id)), 404);
  assert.equal(await statusOf(bob.runs.join(thread.thread_id, run.run_id)), 404);
  assert.equal(await statusOf(bob.runs.create(thread.thread_id, "whoami", { input: {} })), 404);
  const bobs = await bob.threads.search({ limit: 100 });
  assert.ok(!bobs.some((t) => t.thread_id === thread.thread_id));

  const cron = await alice.crons.createForThread(thread.thread_id, "whoami", { schedule: "0 9 * * *" });
  assert.equal(cron.user_id, "alice");
  assert.equal(await statusOf(bob.crons.delete(cron.cron_id)), 404);
  assert.equal(await statusOf(bob.crons.createForThread(thread.thread_id, "whoami", { schedule: "0 9 * * *" })), 404);
  const bobsCrons = await bob.crons.search({ limit: 100 });
  assert.ok(!bobsCrons.some((c) => c.cron_id === cron.cron_id));
  await alice.crons.delete(cron.cron_id);
});

test("the store is scoped to each user's namespace", async () => {
  await alice.store.putItem(["js"], "k", { who: "alice" });
  await bob.store.putItem(["js"], "k", { who: "bob" });
  assert.deepEqual((await alice.store.getItem(["js"], "k")).value, { who: "alice" });
  assert.deepEqual((await bob.store.getItem(["js"], "k")).value, { who: "bob" });
});

// A graph declaring a context_schema (a dataclass with defaults, as LangChain's react-agent template has), run
// through @langchain/langgraph-sdk against a real crongraph server with no context, an empty one and an override:
// the defaults reach the graph, and its factory-built siblings are described by graph id.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { Client } from "@langchain/langgraph-sdk";
import { startServer } from "./server.mjs";

let server;
let client;

before(async () => {
  server = await startServer({ fixture: "shapes" });
  client = new Client({ apiUrl: server.url });
});

after(() => server?.stop());

const input = { question: "which model?" };
const defaults = {
  type: "AgentContext",
  model: "anthropic/claude-sonnet-4-5",
  system_prompt: "You are a helpful AI assistant.",
  max_search_results: 10,
  user_id: "default-user",
};

test("no context: the context_schema defaults reach the graph", async () => {
  const thread = await client.threads.create();
  const onThread = await client.runs.wait(thread.thread_id, "ctx_dataclass", { input });
  assert.deepEqual(onThread.seen, defaults);
  const stateless = await client.runs.wait(null, "ctx_dataclass", { input, context: {} });
  assert.deepEqual(stateless.seen, defaults);
});

test("a run's context overrides the fields it gives", async () => {
  const result = await client.runs.wait(null, "ctx_dataclass", { input, context: { model: "m2" } });
  assert.deepEqual(result.seen, { ...defaults, model: "m2" });
});

test("a context-manager factory runs and its graph is described by graph id", async () => {
  const result = await client.runs.wait(null, "f_acm", { input });
  assert.equal(result.report.factory, "acm");
  assert.equal(result.report.access_context, "threads.create_run");
  const graph = await client.assistants.getGraph("f_acm");
  assert.deepEqual(new Set(graph.nodes.map((n) => n.id)), new Set(["__start__", "step", "__end__"]));
});

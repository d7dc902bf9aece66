// Register crons through the official JavaScript SDK as fast as the server takes them, printing the rate of each
// chunk as one JSON line. Driven by benchmarks/crons.py (--client js); usable alone:
//   node benchmarks/js/register.mjs --url http://127.0.0.1:2024 --total 100000 --chunk 20000 --concurrency 16
import { parseArgs } from "node:util";
import { Client } from "@langchain/langgraph-sdk";

const { values: opts } = parseArgs({
  options: {
    url: { type: "string" },
    assistant: { type: "string", default: "agent" },
    total: { type: "string", default: "100000" },
    chunk: { type: "string", default: "20000" },
    concurrency: { type: "string", default: "16" },
  },
});
const total = Number(opts.total);
const chunk = Number(opts.chunk);
const client = new Client({ apiUrl: opts.url });

// The same schedules as the Python client: one a year, spread over the minutes and hours of January 1st.
const create = (i) =>
  client.crons.create(opts.assistant, { schedule: `${i % 60} ${i % 24} 1 1 *`, input: { value: i } });

async function registerRange(from, to) {
  let next = from;
  const worker = async () => {
    while (next < to) await create(next++);
  };
  await Promise.all(Array.from({ length: Number(opts.concurrency) }, worker));
}

for (let made = 0; made < total; made += chunk) {
  const size = Math.min(chunk, total - made);
  const started = performance.now();
  const cpu = process.cpuUsage();
  await registerRange(made, made + size);
  const seconds = (performance.now() - started) / 1000;
  const used = process.cpuUsage(cpu);
  const clientCpuMs = (used.user + used.system) / 1000 / size;
  console.log(JSON.stringify({ registered: made + size, rate: size / seconds, client_cpu_ms: clientCpuMs }));
}

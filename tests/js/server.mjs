// Starts a real crongraph server for the JavaScript tests: a free loopback port, its own data folder, the
// fixture graphs; resolves once /ok answers.
import { spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, "..", "..");

function freePort() {
  return new Promise((ok, fail) => {
    const srv = createServer();
    srv.once("error", fail);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => ok(port));
    });
  });
}

// `fixture`: the folder under tests/fixtures whose langgraph.json the server serves.
export async function startServer({ fixture = "graphs" } = {}) {
  const port = await freePort();
  const data = mkdtempSync(join(tmpdir(), "crongraph-js-"));
  const bin = process.env.CRONGRAPH_BIN ?? join(root, ".venv", "bin", "crongraph");
  const config = join(root, "tests", "fixtures", fixture, "langgraph.json");
  const child = spawn(bin, ["serve", "--host", "127.0.0.1", "--port", String(port), "--config", config, "--db", data], {
    stdio: ["ignore", "ignore", "pipe"],
    env: { ...process.env, CRONGRAPH_LOG_LEVEL: "warning" },
  });
  let stderr = "";
  child.stderr.on("data", (chunk) => (stderr += chunk));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`crongraph exited: ${stderr}`);
    try {
      const res = await fetch(`${url}/ok`);
      if (res.ok) return { url, stop: () => child.kill("SIGTERM") };
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  child.kill("SIGKILL");
  throw new Error(`crongraph did not start: ${stderr}`);
}

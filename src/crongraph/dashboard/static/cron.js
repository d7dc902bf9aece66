// One cron's page (/dashboard/crons/{cron_id}): what it is, its actions (pause, resume, run now, edit with a live
// preview, delete with a confirmation), its next occurrences, a chart of runs and tokens per day, and its runs
// and fire log, both paginated. Read and written through the public API; refreshed by short polling.
"use strict";

(() => {
  const { t, el, svg, api, wall, fromNow, num } = CG;
  const cronId = document.body.dataset.cronId;
  const base = `/runs/crons/${cronId}`;
  const PAGE = 25;
  const EVERY_MS = 2500;
  const CHART_DAYS = 14;
  const CHART_MAX_FIRES = 3000;
  const $ = (id) => document.getElementById(id);

  const state = { cron: null, runsOffset: 0, firesOffset: 0, errors: new Map(), assistant: null, seen: {}, chartAt: 0, chartRuns: -1 };

  function zone() { return (state.cron && state.cron.timezone) || "UTC"; }
  function both(iso) {
    if (!iso) return el("span", { text: "—" });
    const local = el("span", { class: "local", text: `${wall(iso, zone())} ${zone()}` });
    return zone() === "UTC" ? local : el("span", {}, local, el("span", { class: "sub utc", text: `${wall(iso, "UTC")} UTC` }));
  }
  // Repaint a part only when its data changed, so polling never disturbs a reader's selection or focus.
  function changed(part, data) {
    const signature = JSON.stringify(data);
    if (state.seen[part] === signature) return false;
    state.seen[part] = signature;
    return true;
  }

  // ---- the cron itself ----
  async function loadCron() {
    try {
      state.cron = await api("GET", base);
    } catch (error) {
      if (error.status === 404) { gone(); return false; }
      throw error;
    }
    if (state.assistant === null || (state.assistant && state.assistant.assistant_id !== state.cron.assistant_id)) {
      // Searched rather than fetched by id: an assistant the reader may not see is simply absent (no 404 noise).
      const found = await api("POST", "/assistants/search", { limit: 1000 }).catch(() => []);
      state.assistant = found.find((a) => a.assistant_id === state.cron.assistant_id) || false;
    }
    if (changed("cron", state.cron)) renderCron();
    return true;
  }

  function gone() {
    $("cron-schedule").textContent = t("not_found");
    for (const id of ["act-pause", "act-resume", "act-run", "act-edit", "act-delete"]) $(id).hidden = true;
    $("cron-details").replaceChildren();
    stopped = true;
  }

  function renderCron() {
    const c = state.cron;
    document.title = `${c.schedule} · ${t("crons")} · crongraph`;
    $("cron-schedule").textContent = c.schedule;
    const cronState = CG.stateOf(c);
    const line = [CG.statePill(c), " "];
    if (cronState === "paused" && c.paused_reason) line.push(t("paused_reason", { reason: c.paused_reason }));
    if (cronState === "active") {
      const utc = `${wall(c.next_run_date, "UTC")} UTC`;
      const local = zone() === "UTC" ? utc : `${wall(c.next_run_date, zone())} ${zone()} · ${utc}`;
      line.push(`${t("next_fire")}: ${local} · ${fromNow(c.next_run_date)}`);
    }
    $("cron-state").replaceChildren(...line);
    $("act-pause").hidden = !c.enabled;
    $("act-resume").hidden = c.enabled;
    $("act-run").hidden = false;
    $("act-edit").hidden = false;
    $("act-delete").hidden = false;

    const usage = c.usage || {};
    const assistant = state.assistant
      ? (state.assistant.name && state.assistant.name !== state.assistant.graph_id ? `${state.assistant.name} (${state.assistant.graph_id})` : state.assistant.graph_id)
      : c.assistant_id;
    const rows = [
      [t("assistant_id"), assistant],
      [t("target"), c.thread_id ? t("thread", { id: c.thread_id }) : t("stateless")],
      [t("timezone"), zone()],
      [t("ends"), c.end_time ? `${wall(c.end_time, "UTC")} UTC` : "—"],
      [t("missed_policy"), c.missed_policy],
      [t("overlap_policy"), c.overlap_policy],
      [t("max_runs"), c.max_runs ? `${num(c.remaining_runs)} / ${num(c.max_runs)}` : undefined],
      [t("pause_after_failures"), c.pause_after_failures],
      [t("jitter_seconds"), c.jitter_seconds || undefined],
      [t("usage_total"), num(usage.runs)],
      [t("runs_24h"), num(usage.runs_last_24h)],
      [t("tokens_24h"), usage.tokens_last_24h === undefined ? undefined : num(usage.tokens_last_24h)],
      [t("created_at"), `${wall(c.created_at, "UTC")} UTC`],
      [t("metadata"), Object.keys(c.metadata || {}).length ? JSON.stringify(c.metadata) : undefined],
    ];
    $("cron-details").replaceChildren(...rows.filter(([, v]) => v !== undefined && v !== null)
      .flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { text: String(v) })]));
  }

  // ---- next occurrences ----
  async function loadNext() {
    const next = await api("GET", `${base}/next?count=10`);
    if (!changed("next", [next, state.cron && state.cron.enabled, state.cron && state.cron.next_run_date])) return;
    $("cron-words").textContent = next.description;
    const dates = state.cron && state.cron.next_run_date ? next.next_run_dates : [];
    $("next-list").replaceChildren(...(dates.length
      ? dates.map((d) => el("li", {}, both(d)))
      : [el("li", { class: "help", text: "—" })]));
  }

  // ---- runs ----
  async function loadRuns() {
    const runs = await api("GET", `${base}/runs?limit=${PAGE + 1}&offset=${state.runsOffset}`);
    const page = runs.slice(0, PAGE);
    await Promise.all(page.filter((r) => r.status === "error" && !state.errors.has(r.run_id)).map(loadError));
    if (!changed("runs", [page, runs.length > PAGE, state.runsOffset, [...state.errors]])) return;
    $("runs-body").replaceChildren(...(page.length ? page.map(runRow) : [el("tr", {}, el("td", { colspan: 6, text: t("none") }))]));
    pager("runs", state.runsOffset, page.length, runs.length > PAGE);
  }
  // A failed run's error text: the join endpoint answers an errored run with {"__error__": {error, message}}.
  async function loadError(run) {
    try {
      const out = await api("GET", `/threads/${run.thread_id}/runs/${run.run_id}/join`);
      const err = out && out.__error__;
      state.errors.set(run.run_id, err ? [err.error, err.message].filter(Boolean).join(": ") : "");
    } catch (error) {
      state.errors.set(run.run_id, error.detail || "");
    }
  }
  function runTokens(run) {
    const usage = run.usage || {};
    return usage.total_tokens ?? run.tokens ?? usage.tokens;
  }
  // "schedule", "manual" (POST …/trigger) or "backfill": the server marks the explicit ones in run metadata.
  function runKind(run) {
    return run.cron_fire_kind || run.kind || (run.metadata && run.metadata.cron_fire_kind) || "schedule";
  }
  function runRow(run) {
    const terminal = !["pending", "running"].includes(run.status);
    const end = run.ended_at || (terminal ? run.updated_at : null);
    const duration = end ? new Date(end) - new Date(run.started_at || run.created_at) : null;
    const kind = runKind(run);
    return el("tr", { "data-run-id": run.run_id, "data-kind": kind },
      el("td", {}, both(run.scheduled_for || run.created_at)),
      el("td", {}, el("span", { class: `pill s-${run.status}`, text: CG.statusWord(run.status) }),
        kind === "schedule" ? null : el("span", { class: `pill kind k-${kind}`, text: CG.kindWord(kind) })),
      el("td", { class: "num", text: CG.ms(run.delay_ms) }),
      el("td", { class: "num", text: CG.ms(duration) }),
      el("td", { class: "num", text: num(runTokens(run)) }),
      el("td", { class: "error", text: state.errors.get(run.run_id) || "" }));
  }

  // ---- fire log ----
  async function loadFires() {
    const fires = await api("GET", `${base}/fires?limit=${PAGE + 1}&offset=${state.firesOffset}`);
    const page = fires.slice(0, PAGE);
    if (!changed("fires", [page, fires.length > PAGE, state.firesOffset])) return;
    $("fires-body").replaceChildren(...(page.length ? page.map((f) => el("tr", {},
      el("td", {}, both(f.scheduled_for)),
      el("td", {}, both(f.fired_at)),
      el("td", { class: "kind", text: CG.kindWord(f.kind || "schedule") }),
      el("td", {}, el("span", { class: `pill s-${f.outcome}`, text: CG.outcomeWord(f.outcome) }),
        f.run_status ? el("span", { class: `pill s-${f.run_status}`, text: CG.statusWord(f.run_status) }) : null),
      el("td", { class: f.outcome === "failed" ? "error" : "", text: f.detail || "" }))) : [el("tr", {}, el("td", { colspan: 5, text: t("none") }))]));
    pager("fires", state.firesOffset, page.length, fires.length > PAGE);
  }

  function pager(name, offset, count, more) {
    $(`${name}-prev`).disabled = offset === 0;
    $(`${name}-next`).disabled = !more;
    $(`${name}-info`).textContent = count ? `${num(offset + 1)}–${num(offset + count)}` : "";
  }
  $("runs-prev").addEventListener("click", () => { state.runsOffset = Math.max(0, state.runsOffset - PAGE); poller.now(); });
  $("runs-next").addEventListener("click", () => { state.runsOffset += PAGE; poller.now(); });
  $("fires-prev").addEventListener("click", () => { state.firesOffset = Math.max(0, state.firesOffset - PAGE); poller.now(); });
  $("fires-next").addEventListener("click", () => { state.firesOffset += PAGE; poller.now(); });

  // ---- chart: runs and tokens per day (the cron's zone), from the fire log ----
  async function loadChart() {
    const runsNow = (state.cron && state.cron.usage && state.cron.usage.runs) ?? 0;
    // The fire log is re-read when the cron has fired since (at most every 30 s), and every 5 minutes.
    const age = Date.now() - state.chartAt;
    if (!(state.chartRuns < 0 || (runsNow !== state.chartRuns && age >= 30000) || age >= 300000)) return;
    state.chartAt = Date.now();
    state.chartRuns = runsNow;
    const since = Date.now() - CHART_DAYS * 86400000;
    const fires = [];
    for (let offset = 0; offset < CHART_MAX_FIRES; offset += 1000) {
      const page = await api("GET", `${base}/fires?limit=1000&offset=${offset}`);
      fires.push(...page);
      if (page.length < 1000 || new Date(page[page.length - 1].scheduled_for).getTime() < since) break;
    }
    drawChart(fires, since);
  }

  function drawChart(fires, since) {
    const days = [];
    for (let i = CHART_DAYS - 1; i >= 0; i -= 1) days.push(wall(new Date(Date.now() - i * 86400000).toISOString(), zone()).slice(0, 10));
    const per = new Map(days.map((d) => [d, { runs: 0, failed: 0, tokens: 0 }]));
    let counted = 0;
    for (const f of fires) {
      if (new Date(f.scheduled_for).getTime() < since - 86400000) continue;
      const day = per.get(wall(f.scheduled_for, zone()).slice(0, 10));
      if (!day) continue;
      counted += 1;
      if (f.outcome === "created") day.runs += 1;
      if (f.outcome === "failed" || f.run_status === "error") day.failed += 1;
      day.tokens += f.tokens || 0;
    }
    const W = 560, H = 170, left = 34, right = 44, top = 10, bottom = 22;
    const plotW = W - left - right, plotH = H - top - bottom, bw = plotW / days.length;
    const maxRuns = Math.max(1, ...[...per.values()].map((d) => d.runs + (d.failed > d.runs ? d.failed - d.runs : 0)));
    const maxTokens = Math.max(1, ...[...per.values()].map((d) => d.tokens));
    const hasTokens = [...per.values()].some((d) => d.tokens > 0);
    const chart = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-labelledby": "chart-h" });
    chart.append(svg("line", { class: "axis-line", x1: left, x2: W - right, y1: top + plotH, y2: top + plotH }));
    chart.append(svg("text", { class: "axis", x: 2, y: top + 8 }, document.createTextNode(num(maxRuns))));
    if (hasTokens) chart.append(svg("text", { class: "axis", x: W - right + 4, y: top + 8 }, document.createTextNode(num(maxTokens))));
    const points = [];
    days.forEach((dayName, i) => {
      const d = per.get(dayName);
      const x = left + i * bw;
      const h = (plotH * d.runs) / maxRuns;
      const fh = (plotH * Math.min(d.failed, d.runs || d.failed)) / maxRuns;
      const label = `${dayName}: ${num(d.runs)} ${t("chart_runs")}, ${num(d.failed)} ${t("status_error")}, ${num(d.tokens)} ${t("chart_tokens")}`;
      const group = svg("g", {}, svg("title", {}, document.createTextNode(label)));
      if (d.runs) group.append(svg("rect", { class: "runs", x: x + 2, width: bw - 4, y: top + plotH - h, height: h }));
      if (d.failed) group.append(svg("rect", { class: "failed", x: x + 2, width: bw - 4, y: top + plotH - fh, height: fh }));
      group.append(svg("rect", { x, width: bw, y: top, height: plotH, fill: "transparent" }));
      chart.append(group);
      if (i % 2 === 0) chart.append(svg("text", { class: "axis", x: x + 2, y: H - 6 }, document.createTextNode(dayName.slice(5))));
      points.push([x + bw / 2, top + plotH - (plotH * d.tokens) / maxTokens]);
    });
    if (hasTokens) {
      chart.append(svg("polyline", { class: "tokens", points: points.map((p) => p.join(",")).join(" ") }));
      for (const [x, y] of points) chart.append(svg("circle", { class: "tokdot", cx: x, cy: y, r: 2.5 }));
    }
    const legend = el("div", { class: "legend" },
      el("span", {}, el("span", { class: "sw runs" }), t("chart_runs")),
      el("span", {}, el("span", { class: "sw failed" }), t("status_error")),
      el("span", {}, el("span", { class: "sw tokens" }), t("chart_tokens")));
    $("chart").replaceChildren(chart, legend);
    $("chart-caption").textContent = `${t("chart_source", { n: num(counted) })} (${zone()})`;
  }

  // ---- actions ----
  async function act(work, message) {
    try {
      await work();
      CG.flash(message);
      state.chartRuns = -1;
      await poller.now();
    } catch (error) {
      CG.report(error);
    }
  }
  $("act-pause").addEventListener("click", () => act(() => api("PATCH", base, { enabled: false }), t("paused_ok")));
  $("act-resume").addEventListener("click", () => act(() => api("PATCH", base, { enabled: true }), t("resumed_ok")));
  $("act-run").addEventListener("click", () => act(() => api("POST", `${base}/trigger`, {}), t("triggered")));
  const deleteDialog = $("delete-dialog");
  $("act-delete").addEventListener("click", () => deleteDialog.showModal());
  deleteDialog.addEventListener("close", async () => {
    if (deleteDialog.returnValue !== "delete") return;
    try {
      await api("DELETE", base);
      CG.flashNext(t("deleted"));
      location.href = `${CG.root}/dashboard`;
    } catch (error) {
      CG.report(error);
    }
  });

  const editForm = $("edit-form");
  const preview = CG.schedulePreview({
    schedule: $("e-schedule"), timezone: $("e-timezone"), end: $("e-end"),
    list: $("e-preview"), words: $("e-words"), error: $("e-error"),
  });
  $("act-edit").addEventListener("click", () => {
    if (!editForm.hidden) { editForm.hidden = true; return; }
    CG.fillZones();
    $("e-schedule").value = state.cron.schedule;
    $("e-timezone").value = state.cron.timezone || "";
    $("e-end").value = CG.endTimeInput(state.cron.end_time);
    editForm.hidden = false;
    $("e-schedule").focus();
    preview.refresh();
  });
  $("e-cancel").addEventListener("click", () => { editForm.hidden = true; });
  editForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const c = state.cron;
    const patch = {};
    const schedule = $("e-schedule").value.trim();
    const tz = $("e-timezone").value.trim() || null;
    const end = CG.endTimeValue($("e-end"));
    if (schedule !== c.schedule) patch.schedule = schedule;
    if (tz !== (c.timezone || null)) patch.timezone = tz;
    if ((end || null) !== (c.end_time ? `${CG.endTimeInput(c.end_time)}Z` : null)) patch.end_time = end;
    if (!Object.keys(patch).length) { editForm.hidden = true; return; }
    try {
      await api("PATCH", base, patch);
      editForm.hidden = true;
      CG.flash(t("saved"));
      await poller.now();
    } catch (error) {
      $("e-error").textContent = error.detail || error.message;
    }
  });

  // ---- live ----
  let stopped = false;
  async function refresh() {
    if (stopped) return;
    if (!(await loadCron())) return;
    await Promise.all([loadNext(), loadRuns(), loadFires()]);
    loadChart().catch(CG.report);
  }
  const poller = CG.poll(refresh, EVERY_MS);
})();

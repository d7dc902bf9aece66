// The crons list (/dashboard): the table of crons with filters and paging, the next-24-hours timeline, and the
// create form. Everything is read and written through the public API (CG.api), refreshed by short polling.
"use strict";

(() => {
  const { t, el, svg, api, wall, fromNow, num } = CG;
  const PAGE = 100;
  const LIST_EVERY_MS = 4000;
  const TIMELINE_EVERY_MS = 60000;
  const TIMELINE_MAX_CRONS = 5000;

  const state = { offset: 0, filters: {}, assistants: new Map(), words: new Map(), lastRender: "" };
  const tbody = document.getElementById("crons-body");

  // ---- assistants: graph names for the table, choices for the filter and the create form ----
  async function loadAssistants() {
    const found = await api("POST", "/assistants/search", { limit: 1000 });
    state.assistants = new Map(found.map((a) => [a.assistant_id, a]));
    const filter = document.getElementById("f-assistant");
    const create = document.getElementById("c-assistant");
    const sorted = [...found].sort((a, b) => label(a).localeCompare(label(b)));
    filter.replaceChildren(el("option", { value: "", text: t("all") }),
      ...sorted.map((a) => el("option", { value: a.assistant_id, text: label(a) })));
    create.replaceChildren(...sorted.map((a) => el("option", { value: a.assistant_id, text: label(a) })));
  }
  function label(assistant) {
    return assistant.name && assistant.name !== assistant.graph_id
      ? `${assistant.name} (${assistant.graph_id})` : assistant.graph_id;
  }
  function assistantName(id) {
    const found = state.assistants.get(id);
    return found ? label(found) : id;
  }

  // ---- the table ----
  function query(offset, limit) {
    const body = { limit, offset, sort_by: "next_run_date", sort_order: state.filters.order || "asc" };
    if (state.filters.assistant) body.assistant_id = state.filters.assistant;
    if (state.filters.state === "active" || state.filters.state === "finished") body.enabled = true;
    if (state.filters.state === "paused") body.enabled = false;
    if (state.filters.metadata && Object.keys(state.filters.metadata).length) body.metadata = state.filters.metadata;
    return body;
  }

  async function describe(crons) {
    const missing = [];
    for (const c of crons) {
      const key = wordsKey(c);
      if (!state.words.has(key)) missing.push([key, { schedule: c.schedule, timezone: c.timezone }]);
    }
    if (!missing.length) return;
    const unique = [...new Map(missing).entries()];
    const result = await api("POST", "/dashboard/api/describe", { schedules: unique.map(([, v]) => v) });
    unique.forEach(([key], i) => state.words.set(key, result.items[i].description || result.items[i].error || ""));
  }
  function wordsKey(cron) { return `${cron.schedule}\u0000${cron.timezone || ""}`; }
  function words(cron) { return state.words.get(wordsKey(cron)) || ""; }

  async function loadPage() {
    // The assistants' names are asked for at the same time as the first page, never before it.
    const [rows] = await Promise.all([api("POST", "/runs/crons/search", query(state.offset, PAGE + 1)), assistantsReady]);
    const more = rows.length > PAGE;
    let crons = rows.slice(0, PAGE);
    const wanted = state.filters.state;
    if (wanted) crons = crons.filter((c) => CG.stateOf(c) === wanted);
    else crons = [...crons.filter((c) => CG.stateOf(c) !== "finished"), ...crons.filter((c) => CG.stateOf(c) === "finished")];
    // The rows first (the page is usable from here), then their schedules in words.
    render(crons, more);
    if (crons.some((c) => !state.words.has(wordsKey(c)))) {
      await describe(crons);
      render(crons, more, true);
    }
    if (!timelinePoll) timelinePoll = CG.poll(loadTimeline, TIMELINE_EVERY_MS); // after the first rows, not before
  }

  function render(crons, more, force) {
    // Polling repaints only when something changed (relative times are refreshed with it at most every poll).
    const signature = JSON.stringify([crons, more, state.offset, Math.floor(Date.now() / 30000)]);
    if (signature === state.lastRender && !force) return;
    state.lastRender = signature;
    const rows = crons.map(row);
    tbody.replaceChildren(...(rows.length ? rows : [el("tr", {}, el("td", { colspan: 10, text: t("no_crons") }))]));
    document.getElementById("page-prev").disabled = state.offset === 0;
    document.getElementById("page-next").disabled = !more;
    document.getElementById("page-info").textContent = crons.length
      ? t("showing", { from: num(state.offset + 1), to: num(state.offset + crons.length) }) : "";
  }

  function row(cron) {
    const zone = cron.timezone || "UTC";
    const usage = cron.usage || {};
    const href = `${CG.root}/dashboard/crons/${cron.cron_id}`;
    const next = CG.stateOf(cron) === "active"
      ? el("td", { class: "next" },
        el("span", { class: "local", text: `${wall(cron.next_run_date, zone)} ${zone}` }),
        el("span", { class: "sub utc", text: zone === "UTC" ? fromNow(cron.next_run_date) : `${wall(cron.next_run_date, "UTC")} UTC · ${fromNow(cron.next_run_date)}` }))
      : el("td", { text: "—" });
    const stateCell = el("td", {}, CG.statePill(cron));
    if (!cron.enabled && cron.paused_reason) stateCell.append(el("span", { class: "sub", text: cron.paused_reason }));
    const last = cron.last_run;
    // Runs that ended in error in the last 24 h when the server says so; else its total (marked so in a tooltip).
    const failed24 = usage.failed_runs_last_24h;
    const failed = failed24 ?? usage.failed_runs;
    return el("tr", { "data-cron-id": cron.cron_id },
      el("td", {}, el("a", { href }, el("code", { text: cron.schedule })), el("span", { class: "sub words", text: words(cron) })),
      el("td", { text: zone }),
      next,
      stateCell,
      el("td", { text: cron.thread_id ? t("thread", { id: cron.thread_id.slice(0, 8) }) : t("stateless"), title: cron.thread_id || null }),
      el("td", { text: assistantName(cron.assistant_id), title: cron.assistant_id }),
      el("td", { class: "num", text: num(usage.runs_last_24h) }),
      el("td", { class: "num", text: num(failed), title: failed24 === undefined && failed !== undefined ? t("in_total") : null }),
      el("td", { class: "num", text: num(usage.tokens_last_24h) }),
      el("td", {}, last
        ? el("span", {}, el("span", { class: `pill s-${last.status}`, text: CG.statusWord(last.status) }),
          el("span", { class: "sub", text: fromNow(last.created_at) }))
        : "—"));
  }

  // ---- the timeline of the next 24 hours ----
  async function loadTimeline() {
    const crons = [];
    for (let offset = 0; offset < TIMELINE_MAX_CRONS; offset += 1000) {
      const page = await api("POST", "/runs/crons/search", {
        enabled: true, limit: 1000, offset, sort_by: "next_run_date", sort_order: "asc",
        select: ["cron_id", "schedule", "timezone", "end_time", "next_run_date"],
      });
      crons.push(...page.filter((c) => c.next_run_date));
      if (page.length < 1000) break;
    }
    const capped = crons.length >= TIMELINE_MAX_CRONS;
    const result = await api("POST", "/dashboard/api/timeline", {
      crons: crons.slice(0, TIMELINE_MAX_CRONS).map((c) => ({
        cron_id: c.cron_id, schedule: c.schedule, timezone: c.timezone, end_time: c.end_time,
        next_run_date: c.next_run_date,
      })),
      hours: 24, bucket_minutes: 15,
    });
    drawTimeline(result, capped);
  }

  function drawTimeline(result, capped) {
    const box = document.getElementById("timeline");
    const notes = [t("upcoming_help", { tz: CG.browserZone })];
    if (result.frequent.length) notes.push(t("upcoming_frequent", { n: num(result.frequent.length) }));
    if (capped) notes.push(t("upcoming_capped", { n: num(TIMELINE_MAX_CRONS) }));
    document.getElementById("upcoming-help").textContent = notes.join(" ");
    const exact = result.buckets.reduce((sum, b) => sum + b.fires, 0);
    const estimated = result.buckets.reduce((sum, b) => sum + b.estimated, 0);
    if (!exact && !estimated) {
      box.replaceChildren(el("p", { class: "help", text: t("upcoming_none") }));
      return;
    }
    // Bars are the exact fires; the frequent crons' estimate is a pale band behind them, scaled on its own, so
    // a per-second cron never flattens the bursts this chart is for.
    const W = 960, H = 120, top = 8, bottom = 20, n = result.buckets.length, bw = W / n, plotH = H - top - bottom;
    const peak = Math.max(1, ...result.buckets.map((b) => b.fires));
    const peakEst = Math.max(1, ...result.buckets.map((b) => b.estimated));
    const chart = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-labelledby": "upcoming-h" });
    chart.append(svg("line", { class: "axis-line", x1: 0, x2: W, y1: H - bottom, y2: H - bottom }));
    result.buckets.forEach((b, i) => {
      if (!b.fires && !b.estimated) return;
      let text = t("upcoming_bucket", { time: wall(b.start, CG.browserZone).slice(11, 16), fires: num(b.fires), crons: num(b.crons) });
      if (b.estimated) text += ` (+~${num(b.estimated)})`;
      const group = svg("g", { class: "slot-group", tabindex: 0 }, svg("title", {}, document.createTextNode(text)));
      if (b.estimated) {
        const h = Math.max(1, (plotH * 0.35 * b.estimated) / peakEst);
        group.append(svg("rect", { class: "bar est", x: i * bw, width: bw, y: H - bottom - h, height: h }));
      }
      if (b.fires) {
        const h = Math.max(2, (plotH * b.fires) / peak);
        group.append(svg("rect", { class: "bar", x: i * bw + 1, width: bw - 2, y: H - bottom - h, height: h }));
      }
      group.append(svg("rect", { class: "slot", x: i * bw, width: bw, y: top, height: plotH }));
      group.addEventListener("click", () => showBucket(b, text));
      group.addEventListener("keydown", (event) => { if (event.key === "Enter") showBucket(b, text); });
      chart.append(group);
    });
    // Hour labels every three hours, in the reader's zone.
    result.buckets.forEach((b, i) => {
      const hhmm = wall(b.start, CG.browserZone).slice(11, 16);
      if (Number(hhmm.slice(3)) < result.bucket_minutes && Number(hhmm.slice(0, 2)) % 3 === 0) {
        chart.append(svg("text", { class: "axis", x: i * bw, y: H - 6 }, document.createTextNode(`${hhmm.slice(0, 2)}:00`)));
      }
    });
    box.replaceChildren(chart);
  }
  function showBucket(bucket, text) {
    const sample = bucket.sample.map((id) => id.slice(0, 8)).join(", ");
    document.getElementById("timeline-detail").textContent = sample ? `${text} — ${sample}${bucket.crons > bucket.sample.length ? ", …" : ""}` : text;
  }

  // ---- filters and paging ----
  document.getElementById("filters").addEventListener("submit", (event) => {
    event.preventDefault();
    const metadataField = document.getElementById("f-metadata");
    let metadata;
    try { metadata = CG.jsonObject(metadataField.value, t("metadata")); } catch (error) { CG.flash(error.message, true); return; }
    CG.flash("");
    state.filters = {
      assistant: document.getElementById("f-assistant").value,
      state: document.getElementById("f-state").value,
      order: document.getElementById("f-sort").value,
      metadata,
    };
    state.offset = 0;
    list.now();
  });
  document.getElementById("page-prev").addEventListener("click", () => { state.offset = Math.max(0, state.offset - PAGE); list.now(); });
  document.getElementById("page-next").addEventListener("click", () => { state.offset += PAGE; list.now(); });

  // ---- create ----
  const dialog = document.getElementById("create-dialog");
  const form = document.getElementById("create-form");
  const field = (id) => document.getElementById(id);
  const preview = CG.schedulePreview({
    schedule: field("c-schedule"), timezone: field("c-timezone"), end: field("c-end"),
    list: field("c-preview"), words: field("c-words"), error: field("c-error"),
  });
  field("create-open").addEventListener("click", () => {
    CG.fillZones();
    if (!field("c-timezone").value) field("c-timezone").value = CG.browserZone;
    dialog.showModal();
    field("c-schedule").focus();
    preview.refresh();
  });
  field("c-cancel").addEventListener("click", () => dialog.close());
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const error = field("c-error");
    let body;
    try {
      body = {
        assistant_id: field("c-assistant").value,
        schedule: field("c-schedule").value.trim(),
        input: CG.jsonObject(field("c-input").value, t("input")),
        metadata: CG.jsonObject(field("c-metadata").value, t("metadata_json")),
      };
    } catch (err) { error.textContent = err.message; return; }
    const zone = field("c-timezone").value.trim();
    if (zone) body.timezone = zone;
    const end = CG.endTimeValue(field("c-end"));
    if (end) body.end_time = end;
    const thread = field("c-thread").value.trim();
    try {
      const cron = await api("POST", thread ? `/threads/${encodeURIComponent(thread)}/runs/crons` : "/runs/crons", body);
      dialog.close();
      form.reset();
      CG.flash(t("created"));
      const link = el("a", { href: `${CG.root}/dashboard/crons/${cron.cron_id}`, text: cron.cron_id });
      document.getElementById("flash").append(" ", link);
      state.lastRender = "";
      list.now();
      if (timelinePoll) timelinePoll.now();
    } catch (err) {
      error.textContent = err.detail || err.message;
    }
  });

  // ---- start ----
  const assistantsReady = loadAssistants().catch(CG.report);
  let timelinePoll = null;
  const list = CG.poll(loadPage, LIST_EVERY_MS);
})();

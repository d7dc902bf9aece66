// What every dashboard page shares: words, the API client (same origin, with the reader's bearer token from
// sessionStorage when one was given), date formatting in any IANA zone, the language switch, and live polling.
// No framework and no build step: this file is served as written.
"use strict";

const CG = (() => {
  const body = document.body;
  const root = body.dataset.root || "";
  const lang = body.dataset.lang || "en";
  const strings = JSON.parse(document.getElementById("cg-strings").textContent);
  const TOKEN_KEY = "crongraph.token";

  function t(key, vars) {
    let text = strings[key] ?? key;
    for (const [name, value] of Object.entries(vars || {})) text = text.split(`{${name}}`).join(String(value));
    return text;
  }

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (name === "text") node.textContent = value;
      else if (name === "class") node.className = value;
      else node.setAttribute(name, value === true ? "" : value);
    }
    for (const child of children) if (child !== null && child !== undefined) node.append(child);
    return node;
  }

  const SVG = "http://www.w3.org/2000/svg";
  function svg(tag, attrs, ...children) {
    const node = document.createElementNS(SVG, tag);
    for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, String(value));
    for (const child of children) if (child) node.append(child);
    return node;
  }

  // ---- messages ----
  const flashNode = document.getElementById("flash");
  function flash(message, bad) {
    flashNode.textContent = message || "";
    flashNode.classList.toggle("bad", Boolean(bad));
  }
  // A message left by the previous page (e.g. "Cron deleted." after leaving a deleted cron's page).
  const FLASH_KEY = "crongraph.flash";
  if (sessionStorage.getItem(FLASH_KEY)) {
    flash(sessionStorage.getItem(FLASH_KEY));
    sessionStorage.removeItem(FLASH_KEY);
  }
  function flashNext(message) { sessionStorage.setItem(FLASH_KEY, message); }

  // ---- auth ----
  const tokenForm = document.getElementById("token-form");
  const tokenInput = document.getElementById("token-input");
  function token() { return sessionStorage.getItem(TOKEN_KEY) || ""; }
  function askToken(message) {
    document.getElementById("token-message").textContent = message || t("token_needed");
    // Whatever still says "Loading…" waits for the reader now, not for the server: say so.
    for (const node of document.querySelectorAll("#updated, #upcoming-help, td, h1 code")) {
      if (node.textContent === t("loading")) node.textContent = t("paste_token");
    }
    tokenForm.hidden = false;
    tokenInput.focus();
  }
  document.getElementById("token-open").addEventListener("click", () => {
    if (tokenForm.hidden) askToken(t("token_needed")); else tokenForm.hidden = true;
  });
  tokenForm.addEventListener("submit", (event) => {
    event.preventDefault();
    // A token copied with its scheme ("Bearer abc") is the token "abc": the scheme is added when sending.
    sessionStorage.setItem(TOKEN_KEY, tokenInput.value.trim().replace(/^bearer\s+/i, ""));
    tokenInput.value = "";
    location.reload();
  });
  document.getElementById("token-forget").addEventListener("click", () => {
    sessionStorage.removeItem(TOKEN_KEY);
    location.reload();
  });

  class ApiError extends Error {
    constructor(status, detail) { super(detail); this.status = status; this.detail = detail; }
  }

  // One request to the public API. Resolves with the JSON body (null for 204); rejects with ApiError carrying
  // the server's {"detail"}. 401/403 open the token panel: the page then waits for the reader.
  async function api(method, path, payload) {
    const headers = { Accept: "application/json" };
    if (payload !== undefined) headers["Content-Type"] = "application/json";
    const bearer = token();
    if (bearer) headers.Authorization = `Bearer ${bearer}`;
    let response;
    try {
      response = await fetch(root + path, {
        method, headers, body: payload === undefined ? undefined : JSON.stringify(payload),
        credentials: "same-origin", cache: "no-store",
      });
    } catch (error) {
      throw new ApiError(0, String(error.message || error));
    }
    if (response.status === 204) return null;
    const text = await response.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch { data = text; }
    if (!response.ok) {
      const detail = (data && data.detail) || text || response.statusText;
      if (response.status === 401 || response.status === 403) {
        askToken(bearer ? t("token_refused", { status: response.status }) : t("token_needed"));
      }
      throw new ApiError(response.status, typeof detail === "string" ? detail : JSON.stringify(detail));
    }
    return data;
  }

  // ---- time ----
  const formatters = new Map();
  function formatter(zone) {
    const key = zone || "UTC";
    if (!formatters.has(key)) {
      let fmt;
      try {
        fmt = new Intl.DateTimeFormat("en-CA", {
          timeZone: key, year: "numeric", month: "2-digit", day: "2-digit",
          hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23",
        });
      } catch {
        fmt = null; // a zone this browser does not know: fall back to UTC below
      }
      formatters.set(key, fmt);
    }
    return formatters.get(key);
  }
  // "2026-03-08 15:27:00" for an ISO instant, as the wall clock of `zone` shows it.
  function wall(iso, zone) {
    if (!iso) return "—";
    const date = new Date(iso);
    const fmt = formatter(zone) || formatter("UTC");
    const parts = Object.fromEntries(fmt.formatToParts(date).map((p) => [p.type, p.value]));
    return `${parts.year}-${parts.month}-${parts.day} ${parts.hour}:${parts.minute}:${parts.second}`;
  }
  const relative = new Intl.RelativeTimeFormat(lang, { numeric: "auto" });
  function fromNow(iso) {
    if (!iso) return "";
    const seconds = (new Date(iso).getTime() - Date.now()) / 1000;
    const abs = Math.abs(seconds);
    if (abs < 60) return relative.format(Math.round(seconds), "second");
    if (abs < 3600) return relative.format(Math.round(seconds / 60), "minute");
    if (abs < 86400 * 2) return relative.format(Math.round(seconds / 3600), "hour");
    return relative.format(Math.round(seconds / 86400), "day");
  }
  const numbers = new Intl.NumberFormat(lang);
  function num(value) { return value === undefined || value === null ? "—" : numbers.format(value); }
  function ms(value) {
    if (value === undefined || value === null) return "—";
    if (Math.abs(value) < 1000) return `${numbers.format(Math.round(value))} ms`;
    return `${numbers.format(Math.round(value / 100) / 10)} s`;
  }
  const browserZone = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";

  function fillZones() {
    const list = document.getElementById("zones");
    if (!list || list.childElementCount || !Intl.supportedValuesOf) return;
    for (const zone of ["UTC", ...Intl.supportedValuesOf("timeZone")]) list.append(el("option", { value: zone }));
  }

  // ---- cron words ----
  function stateOf(cron) {
    if (!cron.enabled) return "paused";
    if (cron.finished || !cron.next_run_date) return "finished";
    return "active";
  }
  function statePill(cron) {
    const state = stateOf(cron);
    const pill = el("span", { class: `pill s-${state}`, text: t(state) });
    if (state === "paused" && cron.paused_reason) pill.title = t("paused_reason", { reason: cron.paused_reason });
    return pill;
  }
  function statusWord(status) { return strings[`status_${status}`] ?? status ?? "—"; }
  function outcomeWord(outcome) { return strings[`outcome_${outcome}`] ?? outcome ?? "—"; }
  function kindWord(kind) { return strings[`kind_${kind}`] ?? kind ?? "—"; }

  // ---- live ----
  const live = document.getElementById("live");
  const updated = document.getElementById("updated");
  function markUpdated(ok) {
    live.classList.toggle("stale", !ok);
    if (ok) updated.textContent = t("updated", { time: wall(new Date().toISOString(), browserZone).slice(11) });
  }
  // Call `task` now and every `intervalMs` while the tab is visible; one call at a time.
  function poll(task, intervalMs) {
    let timer = null;
    let running = false;
    async function tick() {
      clearTimeout(timer);
      if (!running && !document.hidden) {
        running = true;
        try { await task(); markUpdated(true); } catch (error) { markUpdated(false); report(error); }
        running = false;
      }
      timer = setTimeout(tick, intervalMs);
    }
    document.addEventListener("visibilitychange", () => { if (!document.hidden) tick(); });
    tick();
    return { now: tick };
  }

  function report(error) {
    if (error instanceof ApiError && (error.status === 401 || error.status === 403)) return; // the token panel says it
    flash(t("failed", { detail: error.detail || error.message || String(error) }), true);
  }

  // JSON object from a text field; throws a message naming the field otherwise.
  function jsonObject(text, field) {
    const trimmed = (text || "").trim();
    if (!trimmed) return {};
    let value;
    try { value = JSON.parse(trimmed); } catch { value = null; }
    if (!value || typeof value !== "object" || Array.isArray(value)) throw new Error(t("bad_json", { field }));
    return value;
  }

  // <input type=datetime-local> holds a naive UTC wall time here (labelled so); the API reads naive as UTC too.
  function endTimeValue(input) { return input.value ? `${input.value.length === 16 ? `${input.value}:00` : input.value}Z` : null; }
  function endTimeInput(iso) { return iso ? new Date(iso).toISOString().slice(0, 19) : ""; }

  // Live preview of a schedule: asks POST /runs/crons/preview 250 ms after the last keystroke.
  function schedulePreview({ schedule, timezone, end, list, words, error }) {
    let timer = null;
    let seq = 0;
    async function refresh() {
      const expr = schedule.value.trim();
      const mine = ++seq;
      if (!expr) {
        list.replaceChildren(el("li", { class: "help", text: t("preview_empty") }));
        words.textContent = "";
        error.textContent = "";
        return;
      }
      const zone = timezone.value.trim() || null;
      try {
        const result = await api("POST", "/runs/crons/preview", { schedule: expr, timezone: zone, count: 5 });
        if (mine !== seq) return;
        const endAt = end && endTimeValue(end);
        const dates = result.next_run_dates.filter((d) => !endAt || new Date(d) < new Date(endAt));
        error.textContent = "";
        words.textContent = result.description;
        list.replaceChildren(...dates.map((d) => el("li", {},
          el("span", { text: `${wall(d, zone || "UTC")} (${zone || "UTC"})` }),
          el("span", { class: "sub", text: ` · ${wall(d, "UTC")} UTC` }))));
      } catch (err) {
        if (mine !== seq) return;
        words.textContent = "";
        list.replaceChildren();
        error.textContent = err.detail || err.message;
      }
    }
    function later() { clearTimeout(timer); timer = setTimeout(refresh, 250); }
    for (const input of [schedule, timezone, end]) if (input) input.addEventListener("input", later);
    return { refresh };
  }

  document.getElementById("lang-switch").addEventListener("change", (event) => {
    document.cookie = `crongraph_lang=${event.target.value}; path=/; max-age=31536000; SameSite=Lax`;
    location.reload();
  });

  return {
    root, lang, t, el, svg, api, ApiError, flash, flashNext, wall, fromNow, num, ms, browserZone, fillZones, stateOf,
    statePill, statusWord, outcomeWord, kindWord, poll, report, jsonObject, endTimeValue, endTimeInput, schedulePreview,
  };
})();

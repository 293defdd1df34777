// orkestra usage dashboard: reads /api/summary and /api/calls, follows /api/events (SSE).
// No dependencies, no requests anywhere but this server. Charts are drawn as SVG.
"use strict";

(() => {
  const TIERS = ["budget", "balanced", "premium"];
  const TIER_COLORS = { budget: "#2f9e6e", balanced: "#3b7dd8", premium: "#b5532b" };
  const PROVIDER_COLORS = ["#1f6f68", "#d08a2e", "#6b5fb5", "#c0392b", "#3b7dd8", "#8a94a0"];
  const MAX_ROWS = 200;
  const SVG_NS = "http://www.w3.org/2000/svg";

  const state = {
    since: "all",
    summary: null,
    ids: new Set(),
    cursor: "",
    source: null,
    lastFetch: 0,
    pending: null,
    withPrompts: false,
  };

  const $ = (id) => document.getElementById(id);

  // -- formatting ---------------------------------------------------------------------

  function usd(x) {
    if (!x) return "$0";
    const a = Math.abs(x);
    const digits = a >= 1 ? 2 : a >= 0.01 ? 4 : 6;
    return (x < 0 ? "−$" : "$") + a.toFixed(digits);
  }
  const pct = (x) => `${(x * 100).toFixed(1)}%`;
  const int = (n) => n.toLocaleString("en-US");
  function duration(ms) {
    if (ms === null || ms === undefined) return "–";
    if (ms >= 1000) return `${(ms / 1000).toFixed(2)} s`;
    return `${ms >= 10 ? ms.toFixed(0) : ms.toFixed(1)} ms`;
  }
  const pad = (n) => String(n).padStart(2, "0");
  function clock(t, withDate) {
    const d = new Date(t);
    const time = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
    if (!withDate) return time;
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${time}`;
  }
  const isToday = (t) => new Date(t).toDateString() === new Date().toDateString();

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else node.setAttribute(k, v);
    }
    for (const child of children) if (child !== null && child !== undefined) node.append(child);
    return node;
  }

  function svg(tag, attrs, text) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function setValue(id, value, text) {
    const node = $(id);
    node.dataset.value = String(value);
    node.textContent = text;
  }

  // -- data ---------------------------------------------------------------------------

  async function getJSON(url) {
    const response = await fetch(url, { cache: "no-store" });
    if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
    return response.json();
  }

  async function loadSummary() {
    state.lastFetch = Date.now();
    const since = state.since;
    const summary = await getJSON(`/api/summary?since=${encodeURIComponent(since)}`);
    if (since !== state.since) return; // the window changed meanwhile
    state.summary = summary;
    renderSummary();
  }

  // Refresh the totals and charts at most once a second while calls keep arriving.
  function refreshSoon() {
    if (state.pending !== null) return;
    const wait = Math.max(0, state.lastFetch + 1000 - Date.now());
    state.pending = setTimeout(() => {
      state.pending = null;
      loadSummary().catch(showError);
    }, wait);
  }

  async function loadCalls() {
    const data = await getJSON("/api/calls?limit=100");
    state.cursor = data.cursor;
    for (const call of data.calls.slice().reverse()) addCall(call, false);
    updateEmpty();
  }

  function connect() {
    const source = new EventSource(`/api/events?after=${encodeURIComponent(state.cursor)}`);
    state.source = source;
    source.addEventListener("open", () => setStatus("live", "live"));
    source.addEventListener("error", () => setStatus("reconnecting", "reconnecting…"));
    source.addEventListener("call", (event) => {
      const call = JSON.parse(event.data);
      if (state.ids.has(call.id)) return;
      addCall(call, true);
      updateEmpty();
      refreshSoon();
    });
  }

  function setStatus(kind, text) {
    $("status").dataset.state = kind;
    $("status-text").textContent = text;
  }

  function showError(error) {
    setStatus("reconnecting", "cannot reach the dashboard");
    console.error(error);
  }

  // -- the call table -----------------------------------------------------------------

  function scoresCell(call) {
    const cell = el("td", { class: "scores-cell" });
    const bars = el("span", { class: "scores" });
    const parts = [];
    for (const tier of TIERS) {
      const score = call.scores[tier];
      if (score === undefined || score === null) continue;
      const bar = el("span", { class: tier === call.tier ? "chosen" : "" });
      bar.style.height = `${Math.max(2, Math.round(score * 18))}px`;
      bars.append(bar);
      parts.push(score.toFixed(2));
    }
    if (!parts.length) {
      cell.textContent = "–";
      return cell;
    }
    const knob = call.knob === null ? "none" : call.knob;
    cell.title = `predicted quality: ${TIERS.map((t) => `${t} ${call.scores[t]?.toFixed(3) ?? "–"}`).join(", ")}; knob ${knob}`;
    cell.append(bars, el("span", { class: "scores-text", text: parts.join(" · ") }));
    return cell;
  }

  function callRow(call, fresh) {
    const failed = call.status !== "ok";
    const model = el("td", { class: "model", text: call.model });
    if (call.attempts > 1) model.append(el("span", { class: "badge retry", text: `${call.attempts} attempts` }));
    const refused = failed && call.attempts === 0;
    if (failed) model.append(el("span", { class: "badge", text: refused ? `refused: ${call.status}` : call.status, title: call.error || call.status }));
    const saved = el("td", { class: "num" });
    if (!failed) {
      saved.append(el("span", { class: call.savings > 0 ? "saved-pos" : "", text: usd(call.savings) }));
      saved.append(el("span", { class: "saved-pct", text: `${call.savings_percent.toFixed(0)}%` }));
    } else {
      saved.textContent = "–";
    }
    const row = el(
      "tr",
      { class: [fresh ? "fresh" : "", failed ? "failed" : ""].join(" ").trim(), "data-id": call.id },
      el("td", { text: clock(call.t, !isToday(call.t)), title: new Date(call.t).toISOString() }),
      el("td", { text: call.provider }),
      model,
      el("td", {}, call.tier ? el("span", { class: `pill ${call.tier}`, text: call.tier }) : "–"),
      scoresCell(call),
      el("td", { class: "num", text: failed && !call.latency_ms ? "–" : duration(call.latency_ms) }),
      el("td", { class: "num cost", text: usd(call.cost), "data-value": String(call.cost) }),
      saved,
      el("td", { class: "prompt", text: call.prompt_preview || "" }),
    );
    return row;
  }

  function addCall(call, fresh) {
    state.ids.add(call.id);
    if (call.cursor > state.cursor) state.cursor = call.cursor;
    if (call.prompt_preview) showPrompts(true);
    const body = $("calls").tBodies[0];
    body.insertBefore(callRow(call, fresh), body.firstChild);
    while (body.rows.length > MAX_ROWS) {
      const last = body.rows[body.rows.length - 1];
      state.ids.delete(last.dataset.id);
      last.remove();
    }
  }

  function showPrompts(on) {
    if (on && !state.withPrompts) {
      state.withPrompts = true;
      $("calls").classList.add("with-prompts");
    }
  }

  function updateEmpty() {
    $("calls-empty").hidden = $("calls").tBodies[0].rows.length > 0;
  }

  // -- totals -------------------------------------------------------------------------

  function renderSummary() {
    const s = state.summary;
    const t = s.totals;
    setValue("total-calls", t.calls, int(t.calls));
    $("total-calls-note").textContent =
      `${int(t.errors)} failed${t.refused ? ` (${int(t.refused)} refused unsent)` : ""} · ${int(t.input_tokens)} in / ${int(t.output_tokens)} out tokens`;
    setValue("total-cost", t.cost, usd(t.cost));
    $("total-cost-note").textContent = t.calls ? `${usd(t.cost / t.calls)} a call on average` : "";
    setValue("total-base", t.base_cost, usd(t.base_cost));
    setValue("total-savings", t.savings, usd(t.savings));
    setValue("total-savings-percent", t.savings_percent, `${t.savings_percent.toFixed(1)}% less than premium`);
    setValue("premium-share", t.premium_share, pct(t.premium_share));
    showPrompts(s.store_prompts);
    renderKnobs(s);
    renderCostChart(s);
    renderTiers(s);
    renderModels(s);
  }

  function renderKnobs(s) {
    const shares = s.knobs.shares;
    const gauge = $("premium-gauge");
    gauge.querySelector(".fill").style.width = `${Math.min(100, s.totals.premium_share * 100)}%`;
    const targeted = shares.find((k) => k.target !== null);
    const marker = gauge.querySelector(".target");
    marker.style.display = targeted ? "block" : "none";
    if (targeted) marker.style.left = `${targeted.target * 100}%`;
    const list = $("knobs");
    list.replaceChildren();
    const scope = s.knobs.scope_seconds ? ` (last ${Math.round(s.knobs.scope_seconds / 3600)} h)` : "";
    for (const k of shares.slice(0, 3)) {
      const name = k.knob === null ? "model named" : `knob ${k.knob}`;
      const value = el("span", { class: "v" }, el("b", { text: pct(k.premium_share) }));
      if (k.target !== null) value.append(` / ${+(k.target * 100).toFixed(1)}% target`);
      const item = el("li", {}, el("span", { class: "k", text: `${name} (${int(k.calls)})` }), value);
      item.title = `${pct(k.premium_share)} of ${int(k.calls)} calls routed at ${name} went premium${scope}` +
        (k.target !== null ? `; calibrated for ${pct(k.target)}` : "");
      list.append(item);
    }
    if (!shares.length) list.append(el("li", { text: "share of calls routed to a premium model" }));
  }

  // -- charts -------------------------------------------------------------------------

  function niceStep(max, count) {
    const raw = max / count;
    const mag = 10 ** Math.floor(Math.log10(raw));
    const norm = raw / mag;
    return (norm <= 1 ? 1 : norm <= 2 ? 2 : norm <= 2.5 ? 2.5 : norm <= 5 ? 5 : 10) * mag;
  }

  function timeTicks(start, end, count) {
    const span = end - start;
    const steps = [1, 5, 10, 30, 60, 300, 600, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 7 * 86400].map((s) => s * 1000);
    const step = steps.find((s) => span / s <= count) || 30 * 86400 * 1000;
    const ticks = [];
    const offset = new Date().getTimezoneOffset() * 60000; // align whole hours and days locally
    for (let t = Math.ceil((start - offset) / step) * step + offset; t <= end; t += step) ticks.push(t);
    return { ticks, step };
  }

  function tickLabel(t, step) {
    const d = new Date(t);
    if (step >= 86400000) return `${d.getMonth() + 1}/${d.getDate()}`;
    if (step < 60000) return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
    return `${pad(d.getHours())}:${pad(d.getMinutes())}`;
  }

  function cumulative(points, bucketMs, start, end, key) {
    const out = [[start, 0]];
    let sum = 0;
    for (const p of points) {
      out.push([Math.max(start, p.t), sum]);
      sum += p[key];
      out.push([Math.min(end, p.t + bucketMs), sum]);
    }
    out.push([end, sum]);
    return out;
  }

  function renderCostChart(s) {
    const box = $("chart-cost");
    const width = Math.max(320, box.clientWidth);
    const height = Math.max(220, box.clientHeight);
    const m = { left: 64, right: 118, top: 12, bottom: 26 };
    const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, height: String(height), role: "img" });
    box.replaceChildren(root);
    const points = s.series.points;
    if (!points.length) {
      root.setAttribute("aria-label", "no calls in this window");
      root.append(svg("text", { x: width / 2, y: height / 2, "text-anchor": "middle", class: "empty-note" }, "No calls in this window yet"));
      return;
    }
    const bucketMs = s.series.bucket_seconds * 1000;
    const end = Math.max(s.now, points[points.length - 1].t + 1);
    const start = Math.min(s.start ?? points[0].t, points[0].t);
    const cost = cumulative(points, bucketMs, start, end, "cost");
    const base = cumulative(points, bucketMs, start, end, "base");
    const top = Math.max(base[base.length - 1][1], cost[cost.length - 1][1]) || 1;
    const yStep = niceStep(top, 4);
    const yMax = Math.ceil(top / yStep) * yStep;
    const x = (t) => m.left + ((t - start) / (end - start || 1)) * (width - m.left - m.right);
    const y = (v) => height - m.bottom - (v / yMax) * (height - m.top - m.bottom);
    root.setAttribute("aria-label", `cumulative cost ${usd(cost[cost.length - 1][1])} against ${usd(base[base.length - 1][1])} on premium models`);

    const mantissa = yStep / 10 ** Math.floor(Math.log10(yStep));
    const decimals = Math.max(0, -Math.floor(Math.log10(yStep)) + (Math.abs(mantissa - 2.5) < 1e-9 ? 1 : 0));
    for (let i = 0; i * yStep <= yMax + yStep / 2; i += 1) {
      const v = i * yStep;
      root.append(svg("line", { x1: m.left, x2: width - m.right, y1: y(v), y2: y(v), class: v === 0 ? "axis" : "grid" }));
      root.append(svg("text", { x: m.left - 8, y: y(v) + 4, "text-anchor": "end" }, v ? `$${v.toFixed(decimals)}` : "$0"));
    }
    const { ticks, step } = timeTicks(start, end, 6);
    for (const t of ticks) {
      root.append(svg("line", { x1: x(t), x2: x(t), y1: height - m.bottom, y2: height - m.bottom + 4, class: "axis" }));
      root.append(svg("text", { x: x(t), y: height - 8, "text-anchor": "middle" }, tickLabel(t, step)));
    }
    const path = (pts) => pts.map(([t, v], i) => `${i ? "L" : "M"}${x(t).toFixed(1)},${y(v).toFixed(1)}`).join("");
    const area = `${path(base)}${cost.slice().reverse().map(([t, v]) => `L${x(t).toFixed(1)},${y(v).toFixed(1)}`).join("")}Z`;
    root.append(svg("path", { d: area, class: "area-saved" }));
    root.append(svg("path", { d: path(base), class: "line-base" }));
    root.append(svg("path", { d: path(cost), class: "line-cost" }));

    const lastCost = cost[cost.length - 1][1];
    const lastBase = base[base.length - 1][1];
    let yCost = y(lastCost) + 4;
    let yBase = y(lastBase) + 4;
    if (yCost - yBase < 16) yBase = yCost - 16; // keep the two end labels apart
    root.append(svg("text", { x: width - m.right + 8, y: yBase, class: "end-label base" }, `${usd(lastBase)} premium`));
    root.append(svg("text", { x: width - m.right + 8, y: yCost, class: "end-label cost" }, `${usd(lastCost)} actual`));
  }

  function arc(cx, cy, r, from, to) {
    const p = (a) => [cx + r * Math.sin(a), cy - r * Math.cos(a)];
    const [x0, y0] = p(from);
    const [x1, y1] = p(to);
    return `M${x0},${y0}A${r},${r} 0 ${to - from > Math.PI ? 1 : 0} 1 ${x1},${y1}`;
  }

  function renderTiers(s) {
    const box = $("chart-tiers");
    const byTier = Object.fromEntries(s.by_tier.map((t) => [t.group, t]));
    const total = s.totals.calls;
    const root = svg("svg", { viewBox: "0 0 150 150", role: "img" });
    root.append(svg("circle", { cx: 75, cy: 75, r: 56, fill: "none", stroke: "#edf0f3", "stroke-width": 22 }));
    let angle = 0;
    const groups = [...TIERS, ...s.by_tier.map((t) => t.group).filter((g) => !TIERS.includes(g))];
    for (const tier of groups) {
      const calls = byTier[tier]?.calls || 0;
      if (!calls) continue;
      const sweep = (calls / total) * Math.PI * 2;
      const shape = sweep >= Math.PI * 2 - 1e-6
        ? svg("circle", { cx: 75, cy: 75, r: 56, fill: "none" })
        : svg("path", { d: arc(75, 75, 56, angle, angle + sweep), fill: "none" });
      shape.setAttribute("stroke", TIER_COLORS[tier] || "#8a94a0");
      shape.setAttribute("stroke-width", "22");
      root.append(shape);
      angle += sweep;
    }
    root.append(svg("text", { x: 75, y: 78, "text-anchor": "middle", class: "center-big" }, int(total)));
    root.append(svg("text", { x: 75, y: 96, "text-anchor": "middle" }, "calls"));
    root.setAttribute("aria-label", groups.map((g) => `${g ?? "no tier"} ${byTier[g]?.calls || 0}`).join(", "));
    const legend = el("ul", { class: "donut-legend" });
    for (const tier of groups) {
      const row = byTier[tier];
      const calls = row?.calls || 0;
      const dot = el("span", { class: "dot-tier" });
      dot.style.background = TIER_COLORS[tier] || "#8a94a0";
      legend.append(
        el("li", { "data-tier": tier ?? "" }, dot, `${tier ?? "no tier"} `,
          el("span", { class: "n", text: total ? pct(calls / total) : "–" }),
          el("div", { class: "c", text: `${int(calls)} calls · ${usd(row?.cost || 0)}` })),
      );
    }
    box.replaceChildren(el("div", { class: "donut-wrap" }, root, legend));
  }

  function renderModels(s) {
    const providers = $("chart-providers");
    const total = s.totals.calls;
    const stack = el("div", { class: "stack" });
    const legend = el("div", { class: "stack-legend" });
    s.by_provider.forEach((p, i) => {
      const color = PROVIDER_COLORS[i % PROVIDER_COLORS.length];
      const part = el("span", { title: `${p.group}: ${p.calls} calls, ${usd(p.cost)}` });
      part.style.width = `${(p.calls / (total || 1)) * 100}%`;
      part.style.background = color;
      stack.append(part);
      const dot = el("span", { class: "dot-tier" });
      dot.style.background = color;
      legend.append(el("span", {}, dot, `${p.group} ${pct(p.calls / (total || 1))}`));
    });
    providers.replaceChildren(...(s.by_provider.length ? [stack, legend] : []));

    const models = $("chart-models");
    const rows = s.by_model.slice().sort((a, b) => b.calls - a.calls || b.cost - a.cost).slice(0, 8);
    const most = Math.max(1, ...rows.map((r) => r.calls));
    const bars = el("div", { class: "bars" });
    for (const r of rows) {
      const fill = el("span");
      fill.style.width = `${(r.calls / most) * 100}%`;
      bars.append(
        el("div", { class: "row", "data-model": r.group },
          el("span", { class: "name", text: r.group, title: r.group }),
          el("span", { class: "val", text: `${int(r.calls)} · ${usd(r.cost)}` }),
          el("div", { class: "track" }, fill)),
      );
    }
    if (!rows.length) bars.append(el("p", { class: "empty", text: "No calls in this window yet" }));
    models.replaceChildren(bars);
  }

  // -- start --------------------------------------------------------------------------

  function chooseWindow(button) {
    for (const b of document.querySelectorAll("#windows button")) b.classList.toggle("active", b === button);
    state.since = button.dataset.since;
    loadSummary().catch(showError);
  }

  async function start() {
    for (const b of document.querySelectorAll("#windows button")) b.addEventListener("click", () => chooseWindow(b));
    let resizeTimer = null;
    window.addEventListener("resize", () => {
      clearTimeout(resizeTimer);
      resizeTimer = setTimeout(() => state.summary && renderCostChart(state.summary), 150);
    });
    await Promise.all([loadCalls(), loadSummary()]);
    connect();
    setInterval(() => loadSummary().catch(showError), 30000); // windows slide with time
    document.body.dataset.ready = "1";
  }

  start().catch(showError);
})();

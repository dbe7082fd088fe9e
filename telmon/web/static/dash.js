// Shared by the dashboard pages: formatting, polling, tables, pagination, span buttons, and the
// uPlot charts (one per panel of a chart from /api/v1/dashboard/..., with gaps as gaps, min-max
// bands, shaded known gaps, synced crosshairs and drag-to-zoom that fetches finer data).
"use strict";

const T = {};  // the namespace the page scripts use

T.COLOURS = ["#1f6feb", "#d9480f", "#2b8a3e", "#862e9c", "#c92a2a", "#0b7285", "#5c940d", "#e67700", "#364fc7",
  "#a61e4d", "#495057", "#087f5b"];
T.LABELS = { on_time: "on time", late: "late", missing: "missing", silent: "silent", never: "never heard",
  unscheduled: "no schedule" };

T.$ = (sel, root) => (root || document).querySelector(sel);
T.text = v => (v === null || v === undefined || v === "" ? "–" : String(v));
T.when = iso => (iso ? iso.replace("T", " ").replace(/\.\d+/, "").replace("Z", "") : "–");

T.ago = (iso, nowIso) => {
  if (!iso) return "never";
  const s = (Date.parse(nowIso || new Date().toISOString()) - Date.parse(iso)) / 1000;
  if (s < 0) return "just now";
  if (s < 90) return `${Math.round(s)} s ago`;
  if (s < 5400) return `${Math.round(s / 60)} min ago`;
  if (s < 172800) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} days ago`;
};

T.num = (v, unit) => {
  if (v === null || v === undefined || !isFinite(v)) return "–";
  if (unit === "s" && Math.abs(v) >= 120) return Math.abs(v) >= 7200 ? `${+(v / 3600).toPrecision(3)} h` : `${+(v / 60).toPrecision(3)} min`;
  if (unit === "B" || unit === "B/s") {
    for (const [p, size] of [["G", 1e9], ["M", 1e6], ["k", 1e3]]) if (Math.abs(v) >= size) return `${+(v / size).toPrecision(3)} ${p}${unit}`;
    return `${+v.toPrecision(3)} ${unit}`;
  }
  const t = Math.abs(v) >= 1000 ? Math.round(v).toLocaleString("en-US") : String(+v.toPrecision(3));
  return unit === "%" ? `${t}%` : (unit ? `${t} ${unit}` : t);
};
T.int = v => (v === null || v === undefined ? "–" : Number(v).toLocaleString("en-US"));
T.interval = s => { if (!s) return "–"; if (s % 3600 === 0) return `${s / 3600} h`; if (s % 60 === 0) return `${s / 60} min`; return `${Math.round(s)} s`; };

T.fetchJSON = async url => {
  const res = await fetch(url, { cache: "no-store" });
  let body;
  try { body = await res.json(); } catch (e) { body = {}; }
  if (!res.ok) { const err = new Error(body.error || `HTTP ${res.status}`); err.status = res.status; throw err; }
  return body;
};

// Poll `fn` every `ms` while the tab is visible; a hidden tab costs the server nothing.
T.poll = (fn, ms) => {
  let timer = null;
  const tick = async () => { timer = null; try { await fn(); } finally { schedule(); } };
  const schedule = () => { if (!timer && !document.hidden) timer = setTimeout(tick, ms); };
  document.addEventListener("visibilitychange", () => { if (!document.hidden && !timer) tick(); });
  schedule();
};

T.updated = (nowIso, ok = true, message = "") => {
  const el = T.$("#updated");
  if (!el) return;
  el.textContent = ok ? `updated ${T.when(nowIso || new Date().toISOString()).slice(11, 19)} UTC` : `cannot reach telmon (${message}); retrying`;
  el.classList.toggle("bad", !ok);
};

// cells(row) -> [[content, className?, href?], ...]; content may be a Node
T.fill = (table, rows, cells, empty) => {
  const body = (typeof table === "string" ? T.$(table) : table).querySelector("tbody");
  if (!rows.length && empty) {
    const tr = document.createElement("tr"), td = document.createElement("td");
    td.colSpan = body.closest("table").querySelectorAll("thead th").length || 1;
    td.className = "empty-row";
    td.textContent = empty;
    tr.appendChild(td);
    body.replaceChildren(tr);
    return;
  }
  body.replaceChildren(...rows.map(r => {
    const tr = document.createElement("tr");
    for (const [value, cls, href, title] of cells(r)) {
      const td = document.createElement("td");
      let node;
      if (value instanceof Node) node = value;
      else if (href) { node = document.createElement("a"); node.href = href; node.textContent = T.text(value); }
      else node = document.createTextNode(T.text(value));
      td.appendChild(node);
      if (cls) td.className = cls;
      if (title) td.title = title;
      tr.appendChild(td);
    }
    return tr;
  }));
};

T.badge = status => {
  const b = document.createElement("span");
  b.className = `badge ${status || "none"}`;
  b.textContent = T.LABELS[status] || status || "–";
  return b;
};

T.params = () => new URLSearchParams(location.search);
T.setParams = changes => {
  const p = T.params();
  for (const [k, v] of Object.entries(changes)) { if (v === null || v === "" || v === undefined) p.delete(k); else p.set(k, v); }
  const q = p.toString();
  history.replaceState(null, "", q ? `${location.pathname}?${q}` : location.pathname);
};

T.pager = (el, total, offset, limit, go) => {
  el.replaceChildren();
  const info = document.createElement("span");
  info.className = "muted";
  info.textContent = total ? `${T.int(offset + 1)}–${T.int(Math.min(offset + limit, total))} of ${T.int(total)}` : "none";
  const prev = document.createElement("button"), next = document.createElement("button");
  prev.textContent = "‹ previous"; next.textContent = "next ›";
  prev.disabled = offset <= 0; next.disabled = offset + limit >= total;
  prev.onclick = () => go(Math.max(0, offset - limit));
  next.onclick = () => go(offset + limit);
  el.append(prev, info, next);
};

// Debounced search box: calls go(text) 250 ms after the last key.
T.search = (input, go) => {
  let timer = null;
  input.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(() => go(input.value.trim()), 250); });
};

// Span buttons (day, week, month, year): marks the active one, calls go(span).
T.spanButtons = (el, current, go) => {
  for (const b of el.querySelectorAll("button[data-span]")) {
    b.classList.toggle("active", b.dataset.span === current);
    b.onclick = () => { for (const x of el.querySelectorAll("button[data-span]")) x.classList.toggle("active", x === b); go(b.dataset.span); };
  }
};

// --- charts -----------------------------------------------------------------------------------

const UTC = ts => uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC");

function isolated(data) {
  // indices of values with gaps on both sides: uPlot draws no segment for them, so a dot
  const out = [];
  for (let i = 0; i < data.length; i++) {
    if (data[i] !== null && (i === 0 || data[i - 1] === null) && (i === data.length - 1 || data[i + 1] === null)) out.push(i);
  }
  return out;
}

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const pad2 = n => String(n).padStart(2, "0");

// Time-axis labels in UTC, 24-hour, chosen by the tick spacing (uPlot's defaults are local
// time and a 12-hour clock).
function timeTicks(u, splits, axisIdx, space, incr) {
  return splits.map(ts => {
    const d = new Date(ts * 1e3);
    const day = `${d.getUTCDate()} ${MONTHS[d.getUTCMonth()]}`;
    if (incr < 86400) {
      const hm = `${pad2(d.getUTCHours())}:${pad2(d.getUTCMinutes())}`;
      return ts % 86400 === 0 ? `${hm}\n${day}` : hm;
    }
    if (incr < 28 * 86400) return d.getUTCDate() === 1 && d.getUTCMonth() === 0 ? `${day}\n${d.getUTCFullYear()}` : day;
    return d.getUTCMonth() === 0 ? `${MONTHS[0]}\n${d.getUTCFullYear()}` : MONTHS[d.getUTCMonth()];
  });
}

function panelOptions(chart, panel, width, height, onZoom) {
  const bars = panel.lines.some(l => l.kind === "bars");
  const main = panel.lines.filter(l => l.kind !== "band" && !l.faint);
  const series = [{ label: "UTC", value: (u, v) => (v === null ? "–" : T.when(new Date(v * 1e3).toISOString()).slice(0, 16)) }];
  const bands = [];
  let k = 0;
  for (const line of panel.lines) {
    if (line.kind === "band") {
      series.push({ label: "max", stroke: "rgba(0,0,0,0)", width: 0, points: { show: false }, value: (u, v) => T.num(v, panel.unit) });
      series.push({ label: "min", stroke: "rgba(0,0,0,0)", width: 0, points: { show: false }, value: (u, v) => T.num(v, panel.unit) });
      bands.push({ series: [series.length - 2, series.length - 1], fill: "rgba(148,163,184,0.28)" });
      continue;
    }
    const colour = line.faint ? "#94a3b8" : T.COLOURS[main.indexOf(line) % T.COLOURS.length];
    const s = {
      label: line.label, stroke: colour, width: line.faint ? 1 : 1.6, spanGaps: false,
      value: (u, v) => T.num(v, panel.unit),
      points: { size: 5, fill: colour, filter: (u, sidx, show) => (show ? null : isolated(u.data[sidx])) },
    };
    if (line.kind === "bars") { s.paths = uPlot.paths.stepped({ align: 1 }); s.fill = colour + "55"; s.width = 1; k++; }
    series.push(s);
  }
  return {
    width, height,
    tzDate: UTC,
    series, bands,
    legend: { show: true, live: true },
    scales: { x: { time: true, range: () => [chart.view_start, chart.view_end] },
      y: { range: (u, lo, hi) => {
        if (lo === null) return [0, 1];
        const pad = (hi - lo) * 0.08 || Math.abs(hi) * 0.1 || 1;
        return [(bars || panel.percent) && lo >= 0 ? 0 : lo - pad, hi + pad];
      } } },
    axes: [
      { stroke: "#64748b", grid: { stroke: "#eef2f7" }, ticks: { stroke: "#e2e8f0" }, values: timeTicks, space: 60 },
      { stroke: "#64748b", grid: { stroke: "#eef2f7" }, ticks: { stroke: "#e2e8f0" },
        size: 74,  // one width for every panel, so their time axes line up
        values: (u, vals) => vals.map(v => T.num(v, panel.unit === "%" ? "%" : (panel.unit === "B" || panel.unit === "B/s" ? panel.unit : ""))) },
    ],
    cursor: { sync: { key: chart.syncKey, setSeries: false }, drag: { x: true, y: false, setScale: false } },
    hooks: {
      drawClear: [u => {
        // known gaps (gap table / missing slots): a light red band under the data
        if (!panel.bands || !panel.bands.length) return;
        const ctx = u.ctx, top = u.bbox.top, h = u.bbox.height;
        ctx.save();
        ctx.fillStyle = "rgba(240,62,62,0.09)";
        for (const [a, b] of panel.bands) {
          const x0 = u.valToPos(a, "x", true), x1 = u.valToPos(b, "x", true);
          if (x1 > x0) ctx.fillRect(x0, top, Math.max(1, x1 - x0), h);
        }
        ctx.restore();
      }],
      setSelect: [u => {
        if (u.select.width < 5) return;
        const a = u.posToVal(u.select.left, "x"), b = u.posToVal(u.select.left + u.select.width, "x");
        u.setSelect({ left: 0, width: 0, top: 0, height: 0 }, false);
        onZoom(a, b);
      }],
    },
  };
}

function summaryText(s, unit) {
  if (!s) return "no data";
  const parts = [`MAX ${T.num(s.max, unit)}`, `MEAN ${T.num(s.mean, unit)}`, `MIN ${T.num(s.min, unit)}`];
  if (s.median !== null && s.median !== undefined) parts.push(`median ${T.num(s.median, unit)}`);
  if (s.p95 !== null && s.p95 !== undefined) parts.push(`p95 ${T.num(s.p95, unit)}`);
  return parts.join("  ·  ");
}

// Draws every panel of `chart` (JSON from the server) into `root`, replacing what was there.
// onZoom(startEpoch, endEpoch) is called after a drag-selection.
T.drawChart = (root, chart, onZoom) => {
  for (const u of root._plots || []) u.destroy();
  root.replaceChildren();
  root._plots = [];
  chart.syncKey = root.id || "chart";
  chart.view_start = chart.start_t;
  chart.view_end = chart.end_t;
  const width = Math.max(320, root.clientWidth - 2);
  const mid = chart.step ? chart.step / 2 : 0;
  for (const panel of chart.panels) {
    const box = document.createElement("section");
    box.className = "panel";
    box.dataset.key = panel.key;
    const head = document.createElement("div");
    head.className = "panel-head";
    const title = document.createElement("h3");
    title.textContent = panel.title + (panel.unit ? ` (${panel.unit})` : "");
    const fig = document.createElement("span");
    fig.className = "figures";
    fig.textContent = (panel.summary_of && panel.summary ? `${panel.summary_of}:  ` : "") + summaryText(panel.summary, panel.unit);
    head.append(title, fig);
    box.appendChild(head);
    root.appendChild(box);
    const hasData = panel.lines.some(l => l.values.some(v => v !== null));
    if (!hasData) {
      const p = document.createElement("p");
      p.className = "panel-empty";
      p.textContent = "no data in this span";
      box.appendChild(p);
      continue;
    }
    const bars = panel.lines.some(l => l.kind === "bars");
    const x = chart.t.map(t => t + (bars ? 0 : mid));
    const data = [x];
    for (const line of panel.lines) { data.push(line.values); if (line.kind === "band") data.push(line.low); }
    const u = new uPlot(panelOptions(chart, panel, width, 170, onZoom), data, box);
    root._plots.push(u);
  }
  root.dataset.start = chart.start;
  root.dataset.end = chart.end;
  root.dataset.step = chart.step;
  root.dataset.ready = "1";
};

window.addEventListener("resize", () => {
  for (const root of document.querySelectorAll(".chart")) {
    const w = Math.max(320, root.clientWidth - 2);
    for (const u of root._plots || []) u.setSize({ width: w, height: u.height });
  }
});

// The span / zoom / refresh state of a page with one chart.  load(params) fetches the page JSON
// (params: span, or start+end when zoomed) and returns it; render(data) draws it.
T.chartPage = ({ root, buttons, resetButton, pngLink, stepLabel, load, render, pngParams, refreshMs = 30000 }) => {
  const state = { span: T.params().get("span") || "day", zoom: null };
  const range = () => (state.zoom ? { start: state.zoom[0].toFixed(0), end: state.zoom[1].toFixed(0) } : { span: state.span });
  const go = async () => {
    const q = range();
    try {
      const data = await load(new URLSearchParams(q));
      render(data);
      T.drawChart(root, data.chart, (a, b) => { state.zoom = [a, b]; resetButton.hidden = false; go(); });
      if (stepLabel) {
        const c = data.chart;
        stepLabel.textContent = `${T.when(c.start).slice(0, 16)} – ${T.when(c.end).slice(0, 16)} UTC · ` +
          (c.step ? `${T.interval(c.step)} steps` : "each time entry") + (c.tier ? ` from ${T.interval(c.tier)} buckets` : "");
      }
      if (pngLink) pngLink.href = `/graph.png?${new URLSearchParams({ ...pngParams, ...q })}`;
      T.updated(data.now);
    } catch (e) {
      T.updated(null, false, e.message);
      const err = T.$("#error");
      if (err) { err.textContent = e.status === 404 ? `Not found: ${e.message}` : e.message; err.hidden = false; }
    }
  };
  T.spanButtons(buttons, state.span, span => { state.span = span; state.zoom = null; resetButton.hidden = true; T.setParams({ span }); go(); });
  resetButton.onclick = () => { state.zoom = null; resetButton.hidden = true; go(); };
  go();
  // live: redraw with fresh data unless the user is looking at a zoomed range
  T.poll(() => (state.zoom ? Promise.resolve() : go()), refreshMs);
  return state;
};

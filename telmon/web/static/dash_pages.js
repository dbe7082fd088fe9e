// The dashboard's pages: each fills its shell from /api/v1/dashboard/... and keeps it current.
"use strict";

const PAGES = {};
const enc = encodeURIComponent;

// --- stations --------------------------------------------------------------------------------------
PAGES.stations = () => {
  const p = T.params();
  const state = { search: p.get("search") || "", status: p.get("status") || "", sort: p.get("sort") || "code",
    offset: +(p.get("offset") || 0) };
  const input = T.$("#search"), sort = T.$("#sort");
  input.value = state.search;
  sort.value = state.sort;
  const load = async () => {
    const q = new URLSearchParams({ search: state.search, status: state.status, sort: state.sort, offset: state.offset, limit: 50 });
    try {
      const d = await T.fetchJSON(`/api/v1/dashboard/stations?${q}`);
      const chips = T.$("#status-chips");
      chips.replaceChildren();
      const all = document.createElement("button");
      all.textContent = "all";
      all.className = state.status ? "" : "active";
      all.onclick = () => { state.status = ""; state.offset = 0; sync(); };
      chips.appendChild(all);
      for (const [k, n] of Object.entries(d.statuses || {})) {
        const b = document.createElement("button");
        b.dataset.status = k;
        b.className = state.status === k ? "active" : "";
        b.append(T.badge(k), ` ${T.int(n)}`);
        b.onclick = () => { state.status = k; state.offset = 0; sync(); };
        chips.appendChild(b);
      }
      T.fill("#stations", d.stations, s => [
        [s.station, "code", `/stations/${enc(s.station)}`], [s.name, "wrap"], [s.status ? T.badge(s.status) : "–"],
        [strip(s.last_24h), "", null, "arrivals per hour, last 24 h (oldest left)"],
        [T.ago(s.last_arrival, d.now), "", null, T.when(s.last_arrival)], [T.when(s.last_entry)],
        [T.interval(s.interval_s)], [T.int(s.arrivals), "n"], [T.int(s.entries), "n"],
        ["slots", "muted", `/station/${enc(s.station)}`]],
        state.search || state.status ? "No station matches." : "No stations yet: they appear as their files arrive, or import a registry (telmon stations import).");
      T.pager(T.$("#pager"), d.total, d.offset, d.limit, off => { state.offset = off; sync(); });
      T.updated(d.now);
      document.body.dataset.ready = "1";
    } catch (e) { T.updated(null, false, e.message); }
  };
  const sync = () => { T.setParams({ search: state.search, status: state.status, sort: state.sort === "code" ? "" : state.sort, offset: state.offset || "" }); load(); };
  T.search(input, text => { state.search = text; state.offset = 0; sync(); });
  sort.onchange = () => { state.sort = sort.value; state.offset = 0; sync(); };
  load();
  T.poll(load, 15000);
};

function strip(hours) {
  // 24 cells, one an hour, oldest left: a station's heartbeat at a glance
  const el = document.createElement("span");
  el.className = "strip";
  for (const n of hours || []) {
    const i = document.createElement("i");
    if (n) i.className = "on";
    i.title = `${n} arrival${n === 1 ? "" : "s"}`;
    el.appendChild(i);
  }
  return el;
}

// --- one station -----------------------------------------------------------------------------------
PAGES.station = () => {
  const code = document.body.dataset.subject;
  const fillSchedule = async () => {
    // the schedule's view of the station (issue 4), when this store keeps schedules
    try {
      const s = await T.fetchJSON(`/api/v1/stations/${enc(code)}/schedule`);
      const badge = T.$("#st-status");
      badge.replaceWith(Object.assign(T.badge(s.status), { id: "st-status" }));
      const c = (s.completeness || {})["24h"];
      T.$("#st-complete").textContent = c && c.completeness !== null && c.completeness !== undefined ? `${c.completeness} %` : "–";
      T.$("#st-complete-detail").textContent = c && c.expected ? `${c.received}/${c.expected} slots · ${c.late} late · ${c.missing} missing` : "no schedule";
      T.$("#st-next").textContent = s.next_expected ? T.when(s.next_expected.start) : "–";
    } catch (e) { /* no schedule tables: the cards keep their dashes */ }
  };
  T.chartPage({
    root: T.$("#chart"), buttons: T.$("#spans"), resetButton: T.$("#reset-zoom"), pngLink: T.$("#png"),
    stepLabel: T.$("#range"), pngParams: { station: code },
    load: q => T.fetchJSON(`/api/v1/dashboard/stations/${enc(code)}?${q}`),
    render: d => {
      const st = d.station;
      T.$("#st-name").textContent = st.name || "";
      T.$("#st-last-arrival").textContent = T.ago(st.last_arrival_at, d.now);
      T.$("#st-last-arrival").title = T.when(st.last_arrival_at);
      T.$("#st-last-entry").textContent = T.when(st.last_entry_at);
      T.$("#st-interval").textContent = T.interval(st.interval_s || st.inferred_interval_s) + (st.interval_s ? "" : (st.inferred_interval_s ? " (inferred)" : ""));
      T.$("#st-missing").textContent = T.int(d.missing);
      T.$("#st-counts").textContent = `${T.int(st.arrival_count)} arrivals · ${T.int(st.entry_count)} entries`;
      T.fill("#gaps", d.gaps.slice().reverse(), g => [[T.when(g.start)], [T.when(g.end)], [T.int(g.missing), "n"], [g.open ? "still open" : " ", "bad"]],
        "No gaps in this span.");
      T.fill("#entries", d.recent_entries, e => [[T.when(e.observed_at)], [Object.entries(e.values).map(([k, v]) => `${k}=${v}`).join("  "), "wrap mono"], [T.when(e.first_seen_at)]],
        "No time entries yet.");
      T.$("#chart-empty").hidden = !d.chart.empty;
      document.body.dataset.ready = "1";
      fillSchedule();
    },
  });
};

// --- transfer clients ------------------------------------------------------------------------------
PAGES.clients = () => {
  const state = { span: T.params().get("span") || "day", search: T.params().get("search") || "" };
  T.$("#search").value = state.search;
  const load = async () => {
    try {
      const d = await T.fetchJSON(`/api/v1/dashboard/clients?${new URLSearchParams({ span: state.span, search: state.search })}`);
      T.$("#range").textContent = `${T.when(d.start).slice(0, 16)} – ${T.when(d.end).slice(0, 16)} UTC`;
      T.fill("#clients", d.clients, c => [
        [c.direction, "muted"], [c.client, "code", `/clients/${c.direction}/${enc(c.client)}`],
        [T.int(c.files), "n"], [T.num(c.bytes, "B"), "n"], [T.int(c.errors), c.errors ? "n bad" : "n"],
        [T.int(c.over_max), "n"], [T.num(c.over_max_pct, "%"), c.over_max_pct > 5 ? "n warn" : "n"],
        [T.num(c.latency_median, "s"), "n"], [T.num(c.latency_p95, "s"), "n"], [T.num(c.latency_max, "s"), "n"],
        [c.machines.join(", "), "wrap muted"], [T.ago(c.last, d.now), "muted", null, T.when(c.last)]],
        state.search ? "No client matches." : "No transfer statistics yet: point telmon tail at MetPX tx_/rx_ logs (telmon tail DIR) or push them from each machine.");
      T.updated(d.now);
      document.body.dataset.ready = "1";
    } catch (e) { T.updated(null, false, e.message); }
  };
  T.spanButtons(T.$("#spans"), state.span, span => { state.span = span; T.setParams({ span }); load(); });
  T.search(T.$("#search"), text => { state.search = text; T.setParams({ search: text }); load(); });
  load();
  T.poll(load, 30000);
};

PAGES.client = () => {
  const { direction, client } = document.body.dataset;
  T.chartPage({
    root: T.$("#chart"), buttons: T.$("#spans"), resetButton: T.$("#reset-zoom"), pngLink: T.$("#png"),
    stepLabel: T.$("#range"), pngParams: { client: `${direction}/${client}` },
    load: q => T.fetchJSON(`/api/v1/dashboard/clients/${direction}/${enc(client)}?${q}`),
    render: d => {
      const rows = (sel, list, key) => T.fill(sel, list, r => [[r[key], "code"], [T.int(r.files), "n"], [T.num(r.bytes, "B"), "n"],
        [T.int(r.errors), r.errors ? "n bad" : "n"], [T.int(r.over_max), "n"], [T.num(r.latency_median, "s"), "n"],
        [T.num(r.latency_p95, "s"), "n"], [T.num(r.latency_max, "s"), "n"]], "Nothing in this span.");
      rows("#machines", d.machines, "machine");
      rows("#products", d.products, "product");
      document.body.dataset.ready = "1";
    },
  });
};

// --- hosts -------------------------------------------------------------------------------------------
PAGES.hosts = () => {
  const state = { search: T.params().get("search") || "" };
  T.$("#search").value = state.search;
  const load = async () => {
    try {
      const d = await T.fetchJSON(`/api/v1/dashboard/hosts?${new URLSearchParams({ search: state.search })}`);
      T.fill("#hosts", d.hosts, hostRow(d.now),
        state.search ? "No host matches." : "No host has pushed metrics yet: run telmon agent --this-host NAME --publish URL-of-this-server on a machine (or POST Lizmon-style /api/perf/HOST/EPOCH).");
      T.updated(d.now);
      document.body.dataset.ready = "1";
    } catch (e) { T.updated(null, false, e.message); }
  };
  T.search(T.$("#search"), text => { state.search = text; T.setParams({ search: text }); load(); });
  load();
  T.poll(load, 15000);
};

function meter(v) {
  // a small bar under a percentage: a glance tells a full disk from an idle one
  const wrap = document.createElement("span");
  wrap.className = "meter";
  if (v === null || v === undefined) { wrap.textContent = "–"; return wrap; }
  const bar = document.createElement("i");
  bar.style.width = `${Math.max(0, Math.min(100, v))}%`;
  bar.className = v >= 90 ? "bad" : v >= 75 ? "warn" : "";
  const label = document.createElement("b");
  label.textContent = T.num(v, "%");
  wrap.append(bar, label);
  return wrap;
}

function hostRow(now) {
  const disk = h => {
    const el = document.createElement("span");
    el.append(meter(h.disk));
    if (h.disk_mount) {
      const m = document.createElement("span");
      m.className = "muted mount";
      m.textContent = h.disk_mount === "root" ? "/" : `/${h.disk_mount.replace(/_/g, "/")}`;
      el.append(m);
    }
    return el;
  };
  return h => [[h.host, "code", `/hosts/${enc(h.host)}`], [meter(h.cpu)], [T.num(h.load), "n"], [meter(h.mem)],
    [disk(h)], [T.int(h.series), "n"], [T.ago(h.last, now), "muted", null, T.when(h.last)]];
}

PAGES.host = () => {
  const host = document.body.dataset.subject;
  T.chartPage({
    root: T.$("#chart"), buttons: T.$("#spans"), resetButton: T.$("#reset-zoom"), pngLink: T.$("#png"),
    stepLabel: T.$("#range"), pngParams: { host }, refreshMs: 15000,
    load: q => T.fetchJSON(`/api/v1/dashboard/hosts/${enc(host)}?${q}`),
    render: d => {
      T.fill("#latest", d.latest, m => [[m.panel], [m.metric, "code"], [T.num(m.last, m.unit), "n"],
        [m.summary ? T.num(m.summary.mean, m.unit) : "–", "n"], [m.summary ? T.num(m.summary.max, m.unit) : "–", "n"]], "No metrics in this span.");
      document.body.dataset.ready = "1";
    },
  });
};

// --- MetPX-like day / week / month / year pages -------------------------------------------------------
PAGES.periods = () => {
  const period = document.body.dataset.period;
  const p = T.params();
  const state = { kind: p.get("kind") || "clients", search: p.get("search") || "", offset: +(p.get("offset") || 0), open: p.get("open") || "" };
  const kind = T.$("#kind"), input = T.$("#search");
  kind.value = state.kind;
  input.value = state.search;
  const src = (s, per, w, h) => `/graph.png?${new URLSearchParams({ [s.param]: s.id, start: per.start, end: per.end, width: w, height: h })}`;
  const load = async () => {
    try {
      const q = new URLSearchParams({ kind: state.kind, search: state.search, offset: state.offset, limit: 20 });
      const d = await T.fetchJSON(`/api/v1/dashboard/periods/${period}?${q}`);
      const list = T.$("#subjects");
      list.replaceChildren();
      if (!d.subjects.length) {
        const li = document.createElement("li");
        li.className = "empty";
        li.textContent = state.search ? "Nothing matches." : `No ${state.kind} yet.`;
        list.appendChild(li);
      }
      if (!state.open && d.subjects.length) state.open = d.subjects[0].id;
      for (const s of d.subjects) {
        const li = document.createElement("li");
        li.className = "subject" + (s.id === state.open ? " open" : "");
        const head = document.createElement("div");
        head.className = "subject-head";
        const name = document.createElement("button");
        name.className = "subject-name";
        name.textContent = s.label;
        name.onclick = () => { state.open = state.open === s.id ? "" : s.id; T.setParams({ open: state.open }); load(); };
        head.appendChild(name);
        for (const per of d.periods) {
          const a = document.createElement("a");
          a.href = src(s, per, 1000, 150);
          a.textContent = per.label;
          a.className = "period-link";
          head.appendChild(a);
        }
        li.appendChild(head);
        if (s.id === state.open) {
          const grid = document.createElement("div");
          grid.className = "period-grid";
          for (const per of d.periods) {
            const fig = document.createElement("figure");
            const img = document.createElement("img");
            img.loading = "lazy";
            img.alt = `${s.label}, ${per.label}`;
            img.src = src(s, per, 760, 95);
            const cap = document.createElement("figcaption");
            cap.textContent = per.label + (per.current ? " (so far)" : "");
            const link = document.createElement("a");
            link.href = src(s, per, 1200, 170);
            link.appendChild(img);
            fig.append(cap, link);
            grid.appendChild(fig);
          }
          li.appendChild(grid);
        }
        list.appendChild(li);
      }
      T.pager(T.$("#pager"), d.total, d.offset, d.limit, off => { state.offset = off; state.open = ""; sync(); });
      T.updated(d.now);
      document.body.dataset.ready = "1";
    } catch (e) { T.updated(null, false, e.message); }
  };
  const sync = () => { T.setParams({ kind: state.kind, search: state.search, offset: state.offset || "", open: state.open }); load(); };
  kind.onchange = () => { state.kind = kind.value; state.offset = 0; state.open = ""; sync(); };
  T.search(input, text => { state.search = text; state.offset = 0; state.open = ""; sync(); });
  load();
};

(PAGES[document.body.dataset.page] || (() => {}))();

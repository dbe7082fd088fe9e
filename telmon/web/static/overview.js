// Overview page: every number links to its detail; refreshed every few seconds without a reload.
"use strict";
const REFRESH_MS = 5000;

function short(path) { if (!path) return "–"; const i = path.lastIndexOf("/"); return i < 0 ? path : path.slice(i + 1); }
function set(id, value) {
  const el = document.getElementById(id);
  if (!el) return;
  el.textContent = value;
  // a zero in a warning card is good news: grey, not red
  const card = el.closest(".card");
  if (card) card.classList.toggle("zero", value === "0");
}

async function refresh() {
  try {
    const d = await T.fetchJSON("/api/v1/dashboard/overview");
    const c = d.counts;
    const t = d.transfers_last_hour;
    const nothing = c.files === 0 && c.stations === 0 && !t && d.hosts_total === 0;
    document.getElementById("empty").hidden = !nothing;
    document.getElementById("sec-stations").hidden = c.stations === 0;
    set("c-arrivals-hour", T.int(d.arrivals_last_hour));
    set("c-updated", T.int(d.updated_last_hour));
    for (const k of ["on_time", "late", "missing", "silent"]) set(`c-${k}`, d.stations_by_status ? T.int(d.stations_by_status[k]) : "–");
    set("c-stations", T.int(d.stations_total));
    document.getElementById("sec-transfers").hidden = !t;
    if (t) {
      set("c-files", T.int(t.files));
      set("c-bytes", T.num(t.bytes, "B"));
      set("c-latency", T.num(t.latency_p95, "s"));
      set("c-median", T.num(t.latency_median, "s"));
      set("c-over", t.over_max_pct === null || !t.over_max ? T.int(t.over_max) : `${T.int(t.over_max)} (${T.num(t.over_max_pct, "%")})`);
      set("c-errors", T.int(t.errors));
      set("c-clients", T.int(d.transfer_clients));
    }
    set("c-rejected-day", T.int(d.rejected_last_day));
    set("c-rejected", T.int(c.rejected_files));
    set("c-queue", T.int(d.ingest.queued));
    set("c-arrivals", T.int(c.arrivals));
    set("c-entries", T.int(c.entries));
    document.getElementById("sec-hosts").hidden = d.hosts_total === 0;
    set("c-hosts", T.int(d.hosts_total));
    T.fill("#hosts", d.hosts, hostRow(d.now));
    T.fill("#recent", d.recent, r => [[T.when(r.received_at)], [short(r.path), "", null, r.path], [r.feed], [r.format],
      [r.status, r.status === "rejected" ? "bad" : (r.status === "partial" ? "warn" : "")],
      [r.stations.length ? (() => { const s = document.createElement("span");
        r.stations.slice(0, 3).forEach((code, i) => { if (i) s.append(", "); const a = document.createElement("a"); a.href = `/stations/${encodeURIComponent(code)}`; a.textContent = code; s.append(a); });
        if (r.stations.length > 3) s.append(` +${r.stations.length - 3}`); return s; })() : "–"],
      [T.int(r.arrivals), "n"], [T.int(r.entries), "n"]], "No files yet.");
    T.fill("#rejected", d.rejected, r => [[T.when(r.received_at)], [short(r.path), "", null, r.path],
      [r.line ? `line ${r.line}` : (r.offset !== null ? `byte ${r.offset}` : "")], [r.reason, "wrap"]], "Nothing rejected.");
    T.fill("#watchers", d.watchers, w => [[w.path], [w.feed], [w.mode], [T.int(w.files), "n"], [T.int(w.rescans), "n"], [w.fallback || w.last_error || ""]],
      "No folder is watched by this server.");
    T.updated(d.now);
    document.body.dataset.ready = "1";
  } catch (e) {
    T.updated(null, false, e.message);
  }
}
refresh();
T.poll(refresh, REFRESH_MS);

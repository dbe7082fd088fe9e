// Overview page: fetch /api/v1/overview every few seconds and redraw, no reload.
"use strict";
const REFRESH_MS = 3000;

function text(v) { return v === null || v === undefined || v === "" ? "–" : String(v); }
function short(path) { if (!path) return "–"; const i = path.lastIndexOf("/"); return i < 0 ? path : path.slice(i + 1); }
function when(iso) { return iso ? iso.slice(0, 19).replace("T", " ") : "–"; }
function interval(s) { if (!s) return "–"; if (s % 3600 === 0) return (s / 3600) + " h"; if (s % 60 === 0) return (s / 60) + " min"; return s + " s"; }

function fill(id, rows, cells) {
  const body = document.querySelector(`#${id} tbody`);
  body.replaceChildren(...rows.map(r => {
    const tr = document.createElement("tr");
    for (const [value, cls] of cells(r)) {
      const td = document.createElement("td");
      td.textContent = text(value);
      if (cls) td.className = cls;
      tr.appendChild(td);
    }
    return tr;
  }));
}

async function refresh() {
  try {
    const res = await fetch("/api/v1/overview", { cache: "no-store" });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    const d = await res.json();
    const c = d.status.counts;
    document.getElementById("c-updated").textContent = d.updated_last_hour;
    document.getElementById("c-stations").textContent = c.stations;
    document.getElementById("c-arrivals").textContent = c.arrivals;
    document.getElementById("c-entries").textContent = c.entries;
    document.getElementById("c-rejected").textContent = c.rejected_files;
    document.getElementById("c-queue").textContent = d.status.ingest.queued;
    document.getElementById("empty").hidden = c.files > 0;
    fill("recent", d.recent, r => [[when(r.received_at)], [short(r.path)], [r.feed], [r.format],
      [r.status, r.status === "rejected" ? "bad" : (r.status === "partial" ? "warn" : "")],
      [r.stations.length > 3 ? r.stations.slice(0, 3).join(", ") + ` +${r.stations.length - 3}` : r.stations.join(", ")],
      [r.arrivals], [r.entries]]);
    fill("stations", d.stations, s => [[s.station], [s.name], [when(s.last_arrival_at)], [when(s.last_entry_at)],
      [interval(s.interval_s || s.inferred_interval_s)], [s.arrival_count], [s.entry_count]]);
    fill("rejected", d.rejected, r => [[when(r.received_at)], [short(r.path)],
      [r.line ? `line ${r.line}` : (r.offset !== null ? `byte ${r.offset}` : "")], [r.reason, "wrap"]]);
    fill("watchers", d.status.watchers, w => [[w.path], [w.feed], [w.mode], [w.files], [w.rescans], [w.fallback || w.last_error || ""]]);
    document.getElementById("updated").textContent = "updated " + new Date().toISOString().slice(11, 19) + " UTC";
  } catch (e) {
    document.getElementById("updated").textContent = "cannot reach telmon (" + e.message + "); retrying";
  }
}
refresh();
setInterval(refresh, REFRESH_MS);

// Station page: fetch /api/v1/stations/<code>/schedule every few seconds and redraw, no reload.
"use strict";
const REFRESH_MS = 10000;
const code = document.body.dataset.station;
const url = `/api/v1/stations/${encodeURIComponent(code)}/schedule`;
document.getElementById("json-link").href = url;

const LABELS = { on_time: "on time", late: "late", missing: "missing", silent: "silent", never: "never heard",
                 unscheduled: "no schedule" };
function when(iso) { return iso ? iso.replace("T", " ").replace(/\.\d+/, "").replace("Z", "") : "–"; }
function text(v) { return v === null || v === undefined || v === "" ? "–" : String(v); }
function span(s) { if (!s) return "–"; if (s % 3600 === 0) return `${s / 3600} h`; if (s % 60 === 0) return `${s / 60} min`; return `${s} s`; }
function hms(s) { const h = Math.floor(s / 3600), m = Math.floor(s % 3600 / 60), x = Math.round(s % 60);
  return [h, m, x].map(v => String(v).padStart(2, "0")).join(":"); }

function fill(id, rows, cells) {
  const body = document.querySelector(`#${id} tbody`);
  body.replaceChildren(...rows.map(r => {
    const tr = document.createElement("tr");
    for (const value of cells(r)) {
      const td = document.createElement("td");
      td.textContent = text(value);
      tr.appendChild(td);
    }
    return tr;
  }));
}

function completeness(id, c) {
  const num = document.getElementById(id), detail = document.getElementById(`${id}-detail`);
  if (!c || c.expected === null || c.expected === undefined) { num.textContent = "–"; detail.textContent = "no schedule"; return; }
  num.textContent = c.completeness === null ? "–" : `${c.completeness} %`;
  detail.textContent = `${c.received}/${c.expected} received · ${c.late} late · ${c.missing} missing`;
}

async function refresh() {
  try {
    const res = await fetch(url, { cache: "no-store" });
    const d = await res.json();
    if (!res.ok) throw new Error(d.error || `HTTP ${res.status}`);
    document.getElementById("error").hidden = true;
    document.getElementById("st-name").textContent = (d.name || "") + (d.registered ? "" : " (unregistered)");
    const badge = document.getElementById("st-status");
    badge.textContent = LABELS[d.status] || d.status;
    badge.className = `badge ${d.status}`;
    document.getElementById("st-noaa").textContent = `NOAA ${d.noaa_status}`;
    document.getElementById("st-last-arrival").textContent = when(d.last_arrival);
    document.getElementById("st-last-report").textContent = when(d.last_report);
    document.getElementById("st-next").textContent = d.next_expected ? `${when(d.next_expected.start)} – ${when(d.next_expected.end).slice(11)}` : "–";
    const s = d.schedule;
    document.getElementById("st-schedule").textContent = s
      ? `every ${span(s.interval_s)} from ${hms(s.first_s)}, window ${span(s.window_s)}${s.inferred ? " (inferred)" : ` (${s.source})`}`
      : "none";
    completeness("c-24h", d.completeness["24h"]);
    completeness("c-7d", d.completeness["7d"]);
    const week = d.completeness["7d"] || {};
    fill("missing", week.missing_runs || [], g => [when(g.start), when(g.end), g.slots, g.open ? "still open" : ""]);
    fill("late", week.late_slots || [], g => [when(g.slot), `${g.code} (${g.label})`, when(g.message_time)]);
    fill("entries", d.recent_entries, e => [when(e.observed_at), Object.entries(e.values).map(([k, v]) => `${k}=${v}`).join(" "), when(e.first_seen_at)]);
    fill("arrivals", d.recent_arrivals, a => [when(a.received_at), when(a.message_time), a.feed, a.format, a.entries]);
    document.getElementById("st-location").textContent =
      `${d.kind} · ${d.lat === null ? "no location" : `${d.lat}, ${d.lon}`} · feed ${text(d.feed)} · ${d.reports} reports`;
    document.getElementById("updated").textContent = `updated ${when(d.now)} UTC`;
    document.body.dataset.ready = "1";
  } catch (e) {
    const err = document.getElementById("error");
    err.textContent = `Cannot show station ${code}: ${e.message}`;
    err.hidden = false;
  }
}

refresh();
setInterval(refresh, REFRESH_MS);

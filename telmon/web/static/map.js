// Station map: an offline GeoJSON basemap, one circle per located station coloured by status,
// a legend with counts, filters by source (feed) and status; refreshes in place, no reload.
"use strict";

const REFRESH_MS = 10000;
const STATUS_COLOURS = {
  on_time: "#2e9e44", late: "#e08e0b", missing: "#d62728",
  silent: "#7b3fa0", never: "#9aa0a6", unscheduled: "#1f77b4",
};
const STATUS_LABELS = {
  on_time: "on time", late: "late (T/U)", missing: "missing", silent: "silent (D)", never: "never heard (U)",
  unscheduled: "no schedule",
};
// SVG keeps each marker a DOM element (inspectable, testable); past this many a canvas is faster.
const SVG_LIMIT = 3000;

const map = L.map("map", { worldCopyJump: true, minZoom: 1, maxZoom: 12, zoomSnap: 0.5 }).setView([39, -98], 4);
const state = { markers: new Map(), rows: [], renderer: null, fitted: false, counts: {}, ready: false };
window.telmonMap = state;

async function basemap() {
  const style = { color: "#8a9bb0", weight: 0.7, fillColor: "#f4f1ea", fillOpacity: 1 };
  for (const [url, s] of [["/static/map/countries-110m.geojson", style],
                          ["/static/map/us-states-10m.geojson", { ...style, fillOpacity: 0, weight: 0.5, color: "#a8b4c4" }]]) {
    try {
      const res = await fetch(url);
      L.geoJSON(await res.json(), { style: s, interactive: false }).addTo(map);
    } catch (e) { console.warn("basemap layer failed", url, e); }
  }
}

function filters() {
  const feed = document.getElementById("feed").value;
  const statuses = new Set([...document.querySelectorAll("#status-filters input:checked")].map(i => i.value));
  return { feed, statuses };
}

function buildStatusFilters() {
  const box = document.getElementById("status-filters");
  for (const s of Object.keys(STATUS_COLOURS)) {
    const label = document.createElement("label");
    label.innerHTML = `<input type="checkbox" value="${s}" checked><span class="swatch" style="background:${STATUS_COLOURS[s]}"></span>${STATUS_LABELS[s]}`;
    label.querySelector("input").addEventListener("change", draw);
    box.appendChild(label);
  }
  document.getElementById("feed").addEventListener("change", draw);
}

const legend = L.control({ position: "bottomright" });
legend.onAdd = () => { const div = L.DomUtil.create("div", "legend"); div.id = "legend"; return div; };
legend.addTo(map);

function drawLegend(counts) {
  const div = document.getElementById("legend");
  div.innerHTML = "<strong>status</strong><br>" + Object.keys(STATUS_COLOURS).map(s =>
    `<span class="legend-item" data-status="${s}"><span class="swatch" style="background:${STATUS_COLOURS[s]}"></span>` +
    `${STATUS_LABELS[s]} <span class="muted">${counts[s] || 0}</span></span>`).join("<br>");
}

function popupText(r) {
  const name = r.name ? ` — ${r.name}` : "";
  return `<strong>${r.station}</strong>${name}<br>${STATUS_LABELS[r.status]} · NOAA ${r.noaa}` +
    `<br>last report ${r.last_report ? r.last_report.replace("T", " ").replace("Z", "") : "never"}`;
}

function draw() {
  const { feed, statuses } = filters();
  if (!state.renderer) state.renderer = state.rows.length > SVG_LIMIT ? L.canvas({ padding: 0.5 }) : L.svg();
  const seen = new Set();
  for (const r of state.rows) {
    const visible = statuses.has(r.status) && (!feed || r.feed === feed);
    if (!visible) continue;
    seen.add(r.station);
    const colour = STATUS_COLOURS[r.status] || "#000";
    let m = state.markers.get(r.station);
    if (!m) {
      m = L.circleMarker([r.lat, r.lon], {
        renderer: state.renderer, radius: 6, weight: 1, color: "#1d2330", fillOpacity: 0.9, fillColor: colour,
        className: `station-marker status-${r.status}`,
      });
      m.on("click", () => { window.location.href = `/station/${encodeURIComponent(m.station)}`; });
      m.on("mouseover", () => m.openTooltip());
      m.bindTooltip("", { direction: "top" });
      m.addTo(map);
      state.markers.set(r.station, m);
    }
    m.station = r.station;
    m.status = r.status;
    m.setLatLng([r.lat, r.lon]);
    m.setStyle({ fillColor: colour });
    m.setTooltipContent(popupText(r));
    const el = m.getElement && m.getElement();
    if (el) {
      el.setAttribute("class", `leaflet-interactive station-marker status-${r.status}`);
      el.dataset.station = r.station;
      el.dataset.status = r.status;
    }
  }
  for (const [code, m] of state.markers) {
    if (!seen.has(code)) { m.remove(); state.markers.delete(code); }
  }
  document.getElementById("summary").textContent =
    `${seen.size} of ${state.rows.length} located stations shown` + (state.unlocated ? ` · ${state.unlocated} without a location` : "");
}

async function refresh() {
  try {
    const res = await fetch("/api/v1/map", { cache: "no-store" });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    const d = await res.json();
    state.rows = d.stations;
    state.unlocated = d.unlocated;
    state.counts = d.counts;
    const select = document.getElementById("feed");
    const have = new Set([...select.options].map(o => o.value));
    for (const f of d.feeds) if (!have.has(f)) select.add(new Option(f, f));
    drawLegend(d.counts);
    draw();
    if (!state.fitted && state.rows.length) {
      map.fitBounds(L.latLngBounds(state.rows.map(r => [r.lat, r.lon])).pad(0.3), { maxZoom: 7 });
      state.fitted = true;
    }
    document.getElementById("updated").textContent = `updated ${d.now.replace("T", " ").replace("Z", "")} UTC`;
    state.ready = true;
    document.body.dataset.ready = "1";
  } catch (e) {
    document.getElementById("updated").textContent = `refresh failed: ${e.message}`;
  }
}

buildStatusFilters();
basemap().then(refresh);
setInterval(refresh, REFRESH_MS);

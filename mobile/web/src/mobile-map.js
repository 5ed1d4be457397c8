// The mobile app's map (issue 8). The Rust app owns all state and logic; this module only draws:
// it shows the style the app's loopback map server builds (offline basemap + replica layers),
// reports taps and view changes back to Rust, and draws what Rust asks (location, sketches of
// measurements and new geometries, a search result pin, the inspector's open tasks as labelled
// markers coloured by urgency — from a GeoJSON FeatureCollection Rust builds from the offline
// replica; a tapped marker is reported as a `task` event). No network beyond the loopback server.
import maplibregl from "maplibre-gl";

const EMPTY = { type: "FeatureCollection", features: [] };

function sketchLayers(map) {
  map.addSource("sk-sketch", { type: "geojson", data: EMPTY });
  map.addLayer({ id: "sk-sketch-fill", type: "fill", source: "sk-sketch", filter: ["==", ["geometry-type"], "Polygon"], paint: { "fill-color": "#fa8c16", "fill-opacity": 0.25 } });
  map.addLayer({ id: "sk-sketch-line", type: "line", source: "sk-sketch", filter: ["!=", ["geometry-type"], "Point"], paint: { "line-color": "#fa541c", "line-width": 3, "line-dasharray": [2, 1] } });
  map.addLayer({ id: "sk-sketch-point", type: "circle", source: "sk-sketch", filter: ["==", ["geometry-type"], "Point"], paint: { "circle-radius": 6, "circle-color": "#fa541c", "circle-stroke-color": "#fff", "circle-stroke-width": 2 } });
}

window.shikongMap = {
  map: null,
  listener: null,
  loc: null,
  pin: null,
  // The task markers (case id → Marker) and the FeatureCollection they were drawn from.
  taskData: EMPTY,
  taskMarkers: new Map(),
  // Creates the map in element `id` with the style at `styleUrl`; resolves when it is idle (the
  // first tiles drawn), with the milliseconds that took.
  init(id, styleUrl, view) {
    const t0 = performance.now();
    if (this.map) { this.map.remove(); }
    this.base = styleUrl.replace(/\/style\.json$/, "");
    const map = new maplibregl.Map({
      container: id, style: styleUrl, center: view.center, zoom: view.zoom,
      attributionControl: false, maxPitch: 0, preserveDrawingBuffer: true,
    });
    map.addControl(new maplibregl.NavigationControl({ visualizePitch: false }), "top-right");
    map.addControl(new maplibregl.ScaleControl({ unit: "metric" }), "bottom-left");
    this.map = map;
    // A new map (another area opened): the task markers move onto it.
    this.setTasks(this.taskData);
    map.on("click", (e) => this.emit({ kind: "tap", lon: e.lngLat.lng, lat: e.lngLat.lat, features: this.hits(e.point) }));
    map.on("moveend", () => { const c = map.getCenter(); this.emit({ kind: "view", lon: c.lng, lat: c.lat, zoom: map.getZoom(), bearing: map.getBearing() }); });
    return new Promise((resolve) => {
      map.on("load", () => sketchLayers(map));
      map.once("idle", () => { window.shikongMapReady = true; resolve(performance.now() - t0); });
    });
  },
  hits(point) {
    const feats = this.map.queryRenderedFeatures([[point.x - 8, point.y - 8], [point.x + 8, point.y + 8]]);
    return feats.filter((f) => f.source === "replica").slice(0, 5).map((f) => ({ layer: f.sourceLayer, id: String(f.properties.id || ""), code: String(f.properties.code || "") }));
  },
  emit(ev) { if (this.listener) this.listener(ev); },
  listen(fn) { this.listener = fn; },
  setVisible(layer, on) {
    if (!this.map) return;
    for (const l of this.map.getStyle().layers) {
      if (l.metadata && l.metadata["shikong:layer"] === layer) this.map.setLayoutProperty(l.id, "visibility", on ? "visible" : "none");
    }
  },
  setSketch(geojson) { const s = this.map && this.map.getSource("sk-sketch"); if (s) s.setData(geojson || EMPTY); },
  // The replica changed (edit, sync): new tile URLs, so no cached tile of the old state is reused.
  reload(rev) {
    const src = this.map && this.map.getSource("replica");
    if (src && src.setTiles) src.setTiles([`${this.base}/replica/{z}/{x}/{y}.mvt?rev=${rev}`]);
  },
  setLocation(lon, lat) {
    if (!this.map) return;
    if (!this.loc) { const el = document.createElement("div"); el.className = "sk-loc"; this.loc = new maplibregl.Marker({ element: el }); }
    this.loc.setLngLat([lon, lat]).addTo(this.map);
  },
  flyTo(lon, lat, zoom, pin) {
    if (!this.map) return;
    this.map.jumpTo({ center: [lon, lat], zoom: zoom || this.map.getZoom() });
    if (pin) { if (!this.pin) { const el = document.createElement("div"); el.className = "sk-pin"; this.pin = new maplibregl.Marker({ element: el }); } this.pin.setLngLat([lon, lat]).addTo(this.map); }
  },
  // Draws the tasks (a FeatureCollection of points with `case_id`, `case_no`, `urgency`) as
  // markers labelled with the case number; replaces the previous ones. Kept for a map re-created.
  setTasks(fc) {
    this.taskData = fc || EMPTY;
    for (const m of this.taskMarkers.values()) m.remove();
    this.taskMarkers = new Map();
    if (!this.map) return;
    for (const f of this.taskData.features) {
      const p = f.properties || {};
      const el = document.createElement("div");
      el.className = `sk-task sk-task-${p.urgency || "later"}`;
      el.dataset.testid = "task-marker";
      el.dataset.case = p.case_id;
      el.dataset.urgency = p.urgency || "later";
      el.textContent = p.case_no;
      el.title = [p.case_no, p.state_label, p.deadline].filter(Boolean).join(" · ");
      // A tap on a marker opens its task; it is not a tap on the map under it.
      // (with where it was tapped: while measuring, Rust takes it as a vertex there)
      el.addEventListener("click", (e) => {
        e.stopPropagation();
        const r = this.map.getCanvasContainer().getBoundingClientRect();
        const at = this.map.unproject([e.clientX - r.left, e.clientY - r.top]);
        this.emit({ kind: "task", id: String(p.case_id), lon: at.lng, lat: at.lat });
      });
      const m = new maplibregl.Marker({ element: el, anchor: "bottom", offset: [0, -5] }).setLngLat(f.geometry.coordinates).addTo(this.map);
      this.taskMarkers.set(String(p.case_id), m);
    }
  },
  // While measuring or sketching, taps are vertices: task markers let them through.
  tasksTappable(on) {
    const el = document.getElementById(this.map ? this.map.getContainer().id : "map");
    if (el) el.classList.toggle("sk-tasks-passive", !on);
  },
  // Centres the map on task `id` (at lon/lat when it has no marker) and highlights its marker.
  focusTask(id, lon, lat) {
    if (!this.map) return;
    const m = this.taskMarkers.get(String(id));
    for (const [k, x] of this.taskMarkers) x.getElement().classList.toggle("sk-task-focus", k === String(id));
    const at = m ? m.getLngLat() : { lng: lon, lat };
    this.map.jumpTo({ center: [at.lng, at.lat], zoom: Math.max(this.map.getZoom(), 17) });
  },
  rotate(deg) { if (this.map) this.map.rotateTo(deg); },
  zoomBy(d) { if (this.map) this.map.zoomTo(this.map.getZoom() + d); },
};

// Sensing stations on the web map (issue 18's live view): the latest-readings layer
// (`/collections/sta_latest/items`, GeoJSON) drawn as circles coloured by state, kept up to date
// by the live channel's `reading` and `alert` messages (`GET /events`, read with fetch because
// EventSource cannot send the Authorization header and the token never goes in a URL), and a popup with
// each datastream's latest value and a chart of one over a chosen window (`/sta/series/{id}`:
// raw readings or minute/hour/day roll-ups, at most 2,000 points, min–max band and average).
// Drawn as SVG here: no charting package, nothing from a CDN. Times are the server's Beijing
// times (RFC 3339 with +08:00), shown as they are.
//
// States: the server's (alert rules and thresholds, see sta/latest.rs) — alarm red, warning
// orange, silent grey, normal green, unknown (no reading yet) pale. A datastream with an open
// alert keeps at least the alert's state (`alert`) whatever a live reading's thresholds say; an
// `alert` message sets it at once, and its closing re-reads the layer.

export const STATE_COLORS = { normal: '#1a9641', warning: '#f39c12', alarm: '#d7191c', silent: '#9e9e9e', unknown: '#d9d9d9' };
export const STATE_LABELS = { normal: '正常', warning: '预警', alarm: '报警', silent: '静默', unknown: '未知' };
const RANK = { unknown: 0, normal: 1, silent: 2, warning: 3, alarm: 4 };
const worse = (a, b) => ((RANK[b] ?? 0) > (RANK[a] ?? 0) ? b : a);

/** A station's state: the worst of its datastreams' (unknown without any). */
export function stationState(datastreams) {
  return datastreams.reduce((s, d) => worse(s, d.state), 'unknown');
}
const SOURCE_LABELS = { raw: '原始读数', minute: '分钟汇总', hour: '小时汇总', day: '日汇总' };
const WINDOWS = [
  ['1小时', 3600e3],
  ['24小时', 86400e3],
  ['7天', 7 * 86400e3],
  ['30天', 30 * 86400e3],
  ['1年', 365 * 86400e3],
];
const SOURCE = 'sta-latest';
export const STATION_LAYER = 'sta-latest-point';
// changes that re-read the layer (alert_incidents: an alert another server process opened or closed)
const STA_LAYERS = new Set(['sta_thing', 'sta_location', 'sta_datastream', 'alert_incidents']);

/** '2026-12-04T10:00:05+08:00' → '12-04 10:00:05' (already Beijing time). */
function short(t, seconds = true) {
  if (!t) return '—';
  const m = /^\d{4}-(\d\d-\d\d)T(\d\d:\d\d)(:\d\d)?/.exec(t);
  return m ? `${m[1]} ${m[2]}${seconds && m[3] ? m[3] : ''}` : t;
}

function esc(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
}

function fmt(v) {
  if (v === undefined || v === null) return '—';
  return Math.abs(v) >= 1000 || Number.isInteger(v) ? String(v) : v.toFixed(2).replace(/0+$/, '').replace(/\.$/, '');
}

/** An SVG chart of a series answer (avg line, min–max band for roll-ups). */
export function chartSvg(series, width = 320, height = 150) {
  const pts = series.points || [];
  const pad = { l: 44, r: 8, t: 8, b: 22 };
  const w = width - pad.l - pad.r;
  const h = height - pad.t - pad.b;
  if (!pts.length) {
    return `<svg class="sk-chart" width="${width}" height="${height}"><text x="${width / 2}" y="${height / 2}" text-anchor="middle">此时段无读数</text></svg>`;
  }
  const t0 = Date.parse(series.from);
  const t1 = Date.parse(series.to);
  let lo = Math.min(...pts.map((p) => p.min));
  let hi = Math.max(...pts.map((p) => p.max));
  if (hi === lo) {
    hi += 1;
    lo -= 1;
  }
  const x = (t) => pad.l + ((Date.parse(t) - t0) / Math.max(1, t1 - t0)) * w;
  const y = (v) => pad.t + (1 - (v - lo) / (hi - lo)) * h;
  const line = pts.map((p) => `${x(p.t).toFixed(1)},${y(p.avg).toFixed(1)}`).join(' ');
  let band = '';
  if (series.source !== 'raw') {
    const up = pts.map((p) => `${x(p.t).toFixed(1)},${y(p.max).toFixed(1)}`);
    const down = pts.map((p) => `${x(p.t).toFixed(1)},${y(p.min).toFixed(1)}`).reverse();
    band = `<polygon points="${up.concat(down).join(' ')}" fill="#3b82f6" fill-opacity="0.2" stroke="none"/>`;
  }
  const dot = pts.length === 1 ? `<circle cx="${x(pts[0].t)}" cy="${y(pts[0].avg)}" r="3" fill="#1d4ed8"/>` : '';
  return `<svg class="sk-chart" width="${width}" height="${height}" role="img" aria-label="${esc(series.name)}">
<rect x="${pad.l}" y="${pad.t}" width="${w}" height="${h}" fill="#fafafa" stroke="#ddd"/>
${band}<polyline points="${line}" fill="none" stroke="#1d4ed8" stroke-width="1.5"/>${dot}
<text x="${pad.l - 4}" y="${pad.t + 8}" text-anchor="end" font-size="10">${esc(fmt(hi))}</text>
<text x="${pad.l - 4}" y="${pad.t + h}" text-anchor="end" font-size="10">${esc(fmt(lo))}</text>
<text x="${pad.l}" y="${height - 6}" font-size="10">${esc(short(series.from, false))}</text>
<text x="${width - pad.r}" y="${height - 6}" text-anchor="end" font-size="10">${esc(short(series.to, false))}</text>
</svg>`;
}

/**
 * The stations layer on `map`. `opts`: `maplibregl`, `adapter` (`json(path)`), `token()` (the
 * bearer token or null). Returns `{ restart, state }`.
 */
export function createStations(map, { maplibregl, adapter, token }) {
  let data = null; // the last FeatureCollection (updated in place by live readings)
  let error = null;
  let live = { connected: false, readings: 0, alerts: 0, lastAlert: null, controller: null };
  let dirty = false;
  let reloadTimer = null;
  let popup = null;

  const draw = () => {
    if (!data) return;
    if (!map.getSource(SOURCE)) {
      map.addSource(SOURCE, { type: 'geojson', data, promoteId: 'thing' });
      map.addLayer({
        id: STATION_LAYER,
        type: 'circle',
        source: SOURCE,
        metadata: { 'shikong:popup': 'own' },
        paint: {
          'circle-radius': 7,
          'circle-color': ['match', ['get', 'state'], 'alarm', STATE_COLORS.alarm, 'warning', STATE_COLORS.warning,
            'silent', STATE_COLORS.silent, 'normal', STATE_COLORS.normal, STATE_COLORS.unknown],
          'circle-stroke-color': '#ffffff',
          'circle-stroke-width': 2,
        },
      });
    } else {
      map.getSource(SOURCE).setData(data);
    }
  };
  const remove = () => {
    if (map.getLayer(STATION_LAYER)) map.removeLayer(STATION_LAYER);
    if (map.getSource(SOURCE)) map.removeSource(SOURCE);
  };

  const load = async () => {
    try {
      data = await adapter.json('/collections/sta_latest/items');
      error = null;
      if (map.isStyleLoaded()) draw();
    } catch (e) {
      // not signed in or not allowed: no stations layer
      data = null;
      error = String(e);
      remove();
    }
  };
  const reloadSoon = () => {
    if (!reloadTimer) reloadTimer = setTimeout(() => ((reloadTimer = null), load()), 1000);
  };
  // a new style drops our source: draw it again once the style is loaded
  const redraw = () => {
    if (data && !map.getSource(SOURCE) && map.isStyleLoaded()) draw();
  };
  map.on('styledata', redraw);
  setInterval(() => {
    redraw();
    if (dirty && map.getSource(SOURCE)) {
      dirty = false;
      map.getSource(SOURCE).setData(data);
    }
  }, 500);

  const onReading = (m) => {
    live.readings += 1;
    const f = data && data.features.find((x) => x.properties.thing === m.thing);
    const d = f && f.properties.datastreams.find((x) => x.datastream === m.datastream);
    if (!d) return reloadSoon(); // a station or datastream the layer does not know yet
    if (d.phenomenonTime && Date.parse(d.phenomenonTime) > Date.parse(m.phenomenonTime)) return;
    // an open alert keeps its colour until its closing says otherwise
    Object.assign(d, { result: m.result, phenomenonTime: m.phenomenonTime, state: d.alert ? worse(m.state, d.alert) : m.state });
    const p = f.properties;
    p.state = stationState(p.datastreams);
    p.state_label = STATE_LABELS[p.state];
    if (!p.phenomenonTime || Date.parse(m.phenomenonTime) > Date.parse(p.phenomenonTime)) p.phenomenonTime = m.phenomenonTime;
    dirty = true;
    if (popup && popup.thing === m.thing) popup.refresh();
  };

  // An alert opened (colour the station now) or closed (the server re-judges the station).
  const onAlert = (m) => {
    live.alerts += 1;
    live.lastAlert = m;
    const f = data && data.features.find((x) => x.properties.thing === m.thing);
    const d = f && f.properties.datastreams.find((x) => x.datastream === m.datastream);
    if (!d || m.state !== 'open') return reloadSoon();
    d.alert = d.alert ? worse(d.alert, m.map_state) : m.map_state;
    d.state = worse(d.state, m.map_state);
    const p = f.properties;
    p.state = stationState(p.datastreams);
    p.state_label = STATE_LABELS[p.state];
    dirty = true;
    if (popup && popup.thing === m.thing) popup.refresh();
  };

  // The live channel: SSE frames over a fetch body; reconnects after an end or an error.
  const connect = async () => {
    if (live.controller) live.controller.abort();
    const t = token();
    if (!t) return;
    const controller = new AbortController();
    live.controller = controller;
    try {
      const r = await fetch('/events', { headers: { Authorization: `Bearer ${t}`, Accept: 'text/event-stream' }, signal: controller.signal });
      if (!r.ok) throw new Error(`events ${r.status}`);
      live.connected = true;
      const reader = r.body.getReader();
      const dec = new TextDecoder();
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += dec.decode(value, { stream: true });
        let end;
        while ((end = buf.indexOf('\n\n')) >= 0) {
          const frame = buf.slice(0, end);
          buf = buf.slice(end + 2);
          const line = frame.split('\n').find((l) => l.startsWith('data:'));
          if (!line) continue;
          let m;
          try {
            m = JSON.parse(line.slice(5));
          } catch {
            continue;
          }
          if (m.type === 'reading') onReading(m);
          else if (m.type === 'alert') onAlert(m);
          else if (m.type === 'lagged' || (m.type === 'features_changed' && STA_LAYERS.has(m.layer))) reloadSoon();
        }
      }
    } catch (e) {
      if (controller.signal.aborted) return;
    } finally {
      if (live.controller === controller) live.connected = false;
    }
    if (!controller.signal.aborted) setTimeout(() => live.controller === controller && connect(), 3000);
  };

  // The popup: latest values, and a chart of the chosen datastream over the chosen window.
  const openPopup = (thing, lngLat) => {
    const el = document.createElement('div');
    el.className = 'sk-station';
    let chosen = null;
    let windowMs = 86400e3;
    const render = () => {
      const f = data && data.features.find((x) => x.properties.thing === thing);
      if (!f) return;
      const p = f.properties;
      if (chosen === null && p.datastreams.length) chosen = p.datastreams[0].datastream;
      const rows = p.datastreams
        .map(
          (d) => `<tr data-ds="${d.datastream}" class="${d.datastream === chosen ? 'chosen' : ''}">
<td>${esc(d.name)}</td><td><b>${esc(fmt(d.result))}</b> ${esc(d.unit)}</td>
<td style="color:${STATE_COLORS[d.state]}">${STATE_LABELS[d.state]}</td><td>${esc(short(d.phenomenonTime))}</td></tr>`,
        )
        .join('');
      el.innerHTML = `<h3>${esc(p.name)} <span class="sk-state" style="background:${STATE_COLORS[p.state]}">${STATE_LABELS[p.state]}</span></h3>
<table><thead><tr><th>数据流</th><th>最新值</th><th>状态</th><th>时间（北京）</th></tr></thead><tbody>${rows}</tbody></table>
<div class="sk-windows">${WINDOWS.map(([l, ms]) => `<button type="button" data-ms="${ms}" class="${ms === windowMs ? 'chosen' : ''}">${l}</button>`).join('')}</div>
<div class="sk-chart-box">加载曲线…</div>`;
      el.querySelectorAll('tr[data-ds]').forEach((tr) =>
        tr.addEventListener('click', () => ((chosen = Number(tr.dataset.ds)), render())),
      );
      el.querySelectorAll('button[data-ms]').forEach((b) =>
        b.addEventListener('click', () => ((windowMs = Number(b.dataset.ms)), render())),
      );
      if (chosen !== null) loadChart(el.querySelector('.sk-chart-box'), chosen, windowMs);
    };
    if (popup) popup.remove();
    const pop = new maplibregl.Popup({ maxWidth: '380px' }).setLngLat(lngLat).setDOMContent(el).addTo(map);
    popup = { thing, refresh: render, remove: () => pop.remove(), el };
    pop.on('close', () => {
      if (popup && popup.el === el) popup = null;
    });
    render();
  };
  let chartSeq = 0;
  const loadChart = async (box, ds, windowMs) => {
    const seq = ++chartSeq;
    const to = new Date();
    const from = new Date(to.getTime() - windowMs);
    const q = `from=${encodeURIComponent(from.toISOString())}&to=${encodeURIComponent(to.toISOString())}`;
    try {
      const s = await adapter.json(`/sta/series/${ds}?${q}`);
      if (seq !== chartSeq) return;
      box.innerHTML = `${chartSvg(s)}<div class="sk-chart-note">${esc(s.name)}（${esc(s.unit)}）· ${SOURCE_LABELS[s.source]} · ${s.points.length} 点</div>`;
      box.dataset.source = s.source;
      box.dataset.points = String(s.points.length);
    } catch (e) {
      if (seq === chartSeq) box.textContent = `曲线加载失败：${e.message}`;
    }
  };
  map.on('click', STATION_LAYER, (e) => {
    const f = e.features && e.features[0];
    if (f) openPopup(f.properties.thing, e.lngLat);
  });
  map.on('mouseenter', STATION_LAYER, () => (map.getCanvas().style.cursor = 'pointer'));
  map.on('mouseleave', STATION_LAYER, () => (map.getCanvas().style.cursor = ''));

  const restart = async () => {
    await load();
    connect();
  };
  return {
    restart,
    open: openPopup,
    /** What the tests read: the layer's features (thing, state, datastreams), the live stream. */
    state: () => ({
      loaded: Boolean(data),
      error,
      connected: live.connected,
      readings: live.readings,
      alerts: live.alerts,
      lastAlert: live.lastAlert,
      stations: data
        ? data.features.map((f) => ({
            thing: f.properties.thing,
            name: f.properties.name,
            state: f.properties.state,
            datastreams: f.properties.datastreams,
          }))
        : [],
      popup: popup ? popup.el.innerText : null,
    }),
  };
}

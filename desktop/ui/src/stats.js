// 统计 (statistics): counts and sums of a layer's features by a class field, a period of a date
// field or the division (a polygon layer) they lie in, as of the time slider's instant — drawn as a
// bar, line or pie chart (SVG, drawn here: no chart library) with its table, and as a choropleth on
// the map (fill colour by value, with a legend). Exports: the table as XLSX or CSV and the chart
// as PNG, written by the Rust side (`stats_export`, `stats_png`) to the path in the path field.
//
// Every number comes from one answer of `GET /collections/{c}/stats` (`stats_query`); the chart,
// the table, the map and the exports all read that answer, so they cannot disagree.
import { invoke, $, esc, state, on, registerView } from './core.js';
import { t, addText, applyI18n } from './i18n.js';

addText({
  st_layer: ['图层', 'Layer'],
  st_group: ['分组', 'Group by'],
  st_none: ['不分组（总数）', 'No grouping (total)'],
  st_division: ['行政区划', 'Division'],
  st_divisions: ['区划图层', 'Division layer'],
  st_measure: ['指标', 'Measure'],
  st_count: ['数量', 'Count'],
  st_sum: ['{f}合计', 'Sum of {f}'],
  st_chart: ['图表', 'Chart'],
  st_bar: ['柱状图', 'Bar'],
  st_line: ['折线图', 'Line'],
  st_pie: ['饼图', 'Pie'],
  st_filter: ['筛选（CQL2，可空）', 'Filter (CQL2, optional)'],
  st_run: ['统计', 'Count'],
  st_path: ['导出文件（不含扩展名亦可）', 'Export file (extension optional)'],
  st_xlsx: ['导出 XLSX', 'Export XLSX'],
  st_csv: ['导出 CSV', 'Export CSV'],
  st_png: ['导出图表 PNG', 'Export chart PNG'],
  st_map: ['在地图上显示分区设色图', 'Show the choropleth on the map'],
  st_map_clear: ['清除分区设色图', 'Clear the choropleth'],
  st_asof: ['数据时点：{t}', 'Data as of: {t}'],
  st_now: ['当前', 'now'],
  st_loading: ['统计中…', 'Counting…'],
  st_done: ['共 {n} 个要素，{g} 组', '{n} features in {g} groups'],
  st_saved: ['已保存：{path}（{kb} KB）', 'Saved: {path} ({kb} KB)'],
  st_year: ['年', 'year'],
  st_month: ['月', 'month'],
  st_week: ['周', 'week'],
  st_day: ['日', 'day'],
  st_nokey: ['（无）', '(none)'],
  st_total: ['合计', 'Total'],
  st_key: ['分组', 'Group'],
  st_legend: ['{layer}：{m}', '{layer}: {m}'],
  st_need_division: ['分区设色图需要按行政区划分组', 'The choropleth needs grouping by division'],
});

const UNITS = ['year', 'month', 'week', 'day'];
const PALETTE = ['#2e86ab', '#f3a712', '#c0392b', '#27ae60', '#8e44ad', '#16a085', '#d35400', '#34495e', '#e84393', '#7f8c8d'];
const RAMP = ['#fff5d6', '#fdd49e', '#fc8d59', '#e34a33', '#b30000'];
const SOURCE = 'stats-choropleth';

const st = {
  layers: [],
  fields: [],
  answer: null, // the last LayerStats shown
  folder: '',
  loaded: false,
  choropleth: false, // shown on the map
  seq: 0,
};

function html() {
  return `
  <div class="stats">
    <form class="stats-controls" id="stats-form">
      <label><span data-i18n="st_layer"></span><select id="stats-layer" data-testid="stats-layer"></select></label>
      <label><span data-i18n="st_group"></span><select id="stats-group" data-testid="stats-group"></select></label>
      <label id="stats-divisions-row"><span data-i18n="st_divisions"></span><select id="stats-divisions" data-testid="stats-divisions"></select></label>
      <label><span data-i18n="st_measure"></span><select id="stats-measure" data-testid="stats-measure"></select></label>
      <label><span data-i18n="st_chart"></span><select id="stats-chart-kind" data-testid="stats-chart-kind">
        <option value="bar" data-i18n="st_bar"></option><option value="line" data-i18n="st_line"></option><option value="pie" data-i18n="st_pie"></option></select></label>
      <label><span data-i18n="st_filter"></span><input id="stats-filter" data-testid="stats-filter" placeholder="状态 = '2'"></label>
      <p id="stats-asof" data-testid="stats-asof"></p>
      <button type="submit" id="stats-run" data-testid="stats-run" data-i18n="st_run"></button>
      <hr>
      <label><span data-i18n="st_path"></span><input id="stats-path" data-testid="stats-path"></label>
      <div class="stats-exports">
        <button type="button" id="stats-xlsx" data-i18n="st_xlsx"></button>
        <button type="button" id="stats-csv" data-i18n="st_csv"></button>
        <button type="button" id="stats-png" data-i18n="st_png"></button>
      </div>
      <button type="button" id="stats-map" data-testid="stats-map" data-i18n="st_map"></button>
      <p id="stats-status" data-testid="stats-status" role="status"></p>
      <p class="error" id="stats-error" data-testid="stats-error" role="alert"></p>
    </form>
    <div class="stats-out">
      <div id="stats-chart" data-testid="stats-chart"></div>
      <div id="stats-table" data-testid="stats-table"></div>
    </div>
  </div>`;
}

const option = (value, text, selected) =>
  `<option value="${esc(value)}"${selected ? ' selected' : ''}>${esc(text)}</option>`;

function showError(e) {
  $('stats-error').textContent = e ? String(e) : '';
}

function asOfText() {
  const at = state.asOf ? beijing(state.asOf) : t('st_now');
  $('stats-asof').textContent = t('st_asof', { t: at });
}

/** Beijing time of an RFC 3339 instant: `2026-12-07 10:00:05`. */
function beijing(s) {
  const ms = Date.parse(s);
  if (Number.isNaN(ms)) return String(s);
  return new Date(ms + 8 * 3600e3).toISOString().slice(0, 19).replace('T', ' ');
}

const polygonLayers = () => st.layers.filter((l) => /Polygon/i.test(l.geometry_type));

function fillGroupChoices() {
  const prev = $('stats-group').value;
  const opts = [option('', t('st_none'))];
  if (polygonLayers().length) opts.push(option('division', t('st_division')));
  for (const f of st.fields) {
    if (f.uses.includes('class')) opts.push(option(f.name, f.title));
    if (f.uses.includes('period')) for (const u of UNITS) opts.push(option(`${f.name}:${u}`, `${f.title}（${t('st_' + u)}）`));
  }
  $('stats-group').innerHTML = opts.join('');
  const values = [...$('stats-group').options].map((o) => o.value);
  const firstClass = st.fields.find((f) => f.coded && f.uses.includes('class')) || st.fields.find((f) => f.uses.includes('class'));
  $('stats-group').value = values.includes(prev) ? prev : firstClass ? firstClass.name : '';
  const m = $('stats-measure').value;
  $('stats-measure').innerHTML = [option('', t('st_count'))]
    .concat(st.fields.filter((f) => f.uses.includes('number')).map((f) => option(f.name, t('st_sum', { f: f.title }))))
    .join('');
  if ([...$('stats-measure').options].some((o) => o.value === m)) $('stats-measure').value = m;
  divisionRow();
}

function divisionRow() {
  $('stats-divisions-row').hidden = $('stats-group').value !== 'division';
}

/** The current choices as `stats_query` arguments. */
function ask(geometry) {
  const group = $('stats-group').value;
  const sum = $('stats-measure').value;
  return {
    layer: $('stats-layer').value,
    groupBy: group ? [group] : [],
    sums: sum ? [sum] : [],
    divisions: group === 'division' ? $('stats-divisions').value || null : null,
    filter: $('stats-filter').value.trim() || null,
    asOf: state.asOf,
    geometry: !!geometry && group === 'division',
  };
}

/** Counts with the current choices and draws the answer. */
export async function runStats() {
  showError(null);
  asOfText();
  const seq = ++st.seq;
  $('stats-status').textContent = t('st_loading');
  try {
    const answer = await invoke('stats_query', ask(true));
    if (seq !== st.seq) return st.answer; // a newer request was sent meanwhile
    st.answer = answer;
    st.fields = answer.fields;
    draw();
    // The choropleth shows divisions only: another grouping takes it off the map.
    if (st.choropleth) answer.group_by.includes('division') ? drawChoropleth() : clearChoropleth();
    $('stats-status').textContent = t('st_done', { n: answer.count, g: answer.groups.length });
    return answer;
  } catch (e) {
    if (seq === st.seq) {
      showError(e);
      $('stats-status').textContent = '';
    }
    throw e;
  }
}

/** The measure of a group: its count, or the sum asked for. */
const measure = (a, g) => (a.sums.length ? g.sums[0] : g.count);
const measureName = (a) => {
  if (!a.sums.length) return t('st_count');
  const f = a.fields.find((x) => x.name === a.sums[0]);
  return t('st_sum', { f: f ? f.title : a.sums[0] });
};
const groupText = (g) => (g.label[0] ?? g.key[0] ?? t('st_nokey')) || t('st_nokey');
const fmt = (x) => (Number.isInteger(x) ? String(x) : x.toFixed(2));

function draw() {
  const a = st.answer;
  if (!a) return;
  const items = a.groups.map((g) => ({ key: g.key.length ? g.key[0] : '', label: a.group_by.length ? groupText(g) : a.title, value: measure(a, g) }));
  const kind = $('stats-chart-kind').value;
  const title = `${a.title} · ${measureName(a)}${a.as_of ? ` · ${beijing(a.as_of)}` : ''}`;
  $('stats-chart').innerHTML = kind === 'pie' ? pie(items, title) : axes(items, title, kind);
  const rows = a.groups
    .map((g) => `<tr><td>${esc(g.key[0] ?? '')}</td><td>${esc(a.group_by.length ? groupText(g) : a.title)}</td><td class="num">${g.count}</td>${g.sums.map((s) => `<td class="num">${fmt(s)}</td>`).join('')}</tr>`)
    .join('');
  const sumHeads = a.sums.map((s) => `<th>${esc(t('st_sum', { f: (a.fields.find((f) => f.name === s) || { title: s }).title }))}</th>`).join('');
  $('stats-table').innerHTML = `<table><thead><tr><th></th><th>${esc(t('st_key'))}</th><th>${esc(t('st_count'))}</th>${sumHeads}</tr></thead>
    <tbody>${rows}</tbody><tfoot><tr><th></th><th>${esc(t('st_total'))}</th><td class="num" data-testid="stats-total">${a.count}</td>${a.totals.map((s) => `<td class="num">${fmt(s)}</td>`).join('')}</tr></tfoot></table>`;
}

const W = 760;
const H = 420;
const FONT = 'font-family="Noto Sans CJK SC, WenQuanYi Micro Hei, Microsoft YaHei, PingFang SC, sans-serif"';

/** Round axis steps: 1, 2 or 5 × 10^k. */
function ticks(max) {
  if (max <= 0) return [0, 1];
  const raw = max / 5;
  const p = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * p).find((s) => s >= raw);
  const out = [];
  for (let v = 0; v <= max + step * 0.001; v += step) out.push(v);
  if (out[out.length - 1] < max) out.push(out[out.length - 1] + step);
  return out;
}

function svgOpen(title) {
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" ${FONT} font-size="12">
    <rect width="${W}" height="${H}" fill="#ffffff"/>
    <text x="${W / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold" fill="#1d2733">${esc(title)}</text>`;
}

/** A bar or line chart with value axis and group labels. */
function axes(items, title, kind) {
  const left = 64, right = 16, top = 40, bottom = 90;
  const pw = W - left - right, ph = H - top - bottom;
  const tk = ticks(Math.max(0, ...items.map((i) => i.value)));
  const max = tk[tk.length - 1] || 1;
  const y = (v) => top + ph - (v / max) * ph;
  const n = Math.max(items.length, 1);
  const slot = pw / n;
  let s = svgOpen(title);
  for (const v of tk) {
    s += `<line x1="${left}" x2="${W - right}" y1="${y(v)}" y2="${y(v)}" stroke="#e1e7ee"/>`;
    s += `<text x="${left - 6}" y="${y(v) + 4}" text-anchor="end" fill="#56677a">${fmt(v)}</text>`;
  }
  s += `<line x1="${left}" x2="${left}" y1="${top}" y2="${top + ph}" stroke="#56677a"/>`;
  s += `<line x1="${left}" x2="${W - right}" y1="${top + ph}" y2="${top + ph}" stroke="#56677a"/>`;
  const every = Math.ceil(n / 40);
  const rotate = n > 8;
  items.forEach((it, i) => {
    const cx = left + slot * (i + 0.5);
    const attrs = `data-key="${esc(it.key ?? '')}" data-label="${esc(it.label)}" data-value="${it.value}"`;
    if (kind === 'bar') {
      const bw = Math.max(2, slot * 0.7);
      s += `<rect class="datum" ${attrs} x="${cx - bw / 2}" y="${y(it.value)}" width="${bw}" height="${top + ph - y(it.value)}" fill="${PALETTE[0]}"><title>${esc(it.label)}：${fmt(it.value)}</title></rect>`;
    } else {
      s += `<circle class="datum" ${attrs} cx="${cx}" cy="${y(it.value)}" r="3.5" fill="${PALETTE[2]}"><title>${esc(it.label)}：${fmt(it.value)}</title></circle>`;
    }
    if (n <= 30) s += `<text x="${cx}" y="${y(it.value) - 5}" text-anchor="middle" fill="#1d2733" font-size="11">${fmt(it.value)}</text>`;
    if (i % every === 0) {
      const ly = top + ph + 14;
      s += rotate
        ? `<text x="${cx}" y="${ly}" text-anchor="end" transform="rotate(-40 ${cx} ${ly})" fill="#3d4a59">${esc(it.label)}</text>`
        : `<text x="${cx}" y="${ly}" text-anchor="middle" fill="#3d4a59">${esc(it.label)}</text>`;
    }
  });
  if (kind === 'line' && items.length) {
    const pts = items.map((it, i) => `${left + slot * (i + 0.5)},${y(it.value)}`).join(' ');
    s = s.replace('<circle', `<polyline points="${pts}" fill="none" stroke="${PALETTE[2]}" stroke-width="2"/><circle`);
  }
  return s + '</svg>';
}

/** A pie chart with a legend (share and value per group). */
function pie(items, title) {
  const total = items.reduce((a, i) => a + Math.max(0, i.value), 0);
  const cx = 230, cy = 230, r = 165;
  let s = svgOpen(title);
  let angle = -Math.PI / 2;
  items.forEach((it, i) => {
    const v = Math.max(0, it.value);
    const share = total > 0 ? v / total : 0;
    const a1 = angle + share * 2 * Math.PI;
    const colour = PALETTE[i % PALETTE.length];
    const attrs = `data-key="${esc(it.key ?? '')}" data-label="${esc(it.label)}" data-value="${it.value}"`;
    const tip = `<title>${esc(it.label)}：${fmt(it.value)}（${(share * 100).toFixed(1)}%）</title>`;
    if (share >= 0.99999) {
      s += `<circle class="datum" ${attrs} cx="${cx}" cy="${cy}" r="${r}" fill="${colour}">${tip}</circle>`;
    } else {
      const large = a1 - angle > Math.PI ? 1 : 0;
      const p = (a) => `${cx + r * Math.cos(a)},${cy + r * Math.sin(a)}`;
      s += `<path class="datum" ${attrs} d="M${cx},${cy} L${p(angle)} A${r},${r} 0 ${large} 1 ${p(a1)} Z" fill="${colour}" stroke="#fff">${tip}</path>`;
    }
    angle = a1;
    if (i < 18) {
      const ly = 56 + i * 19;
      s += `<rect x="430" y="${ly - 10}" width="12" height="12" fill="${colour}"/>`;
      s += `<text x="448" y="${ly}" fill="#1d2733">${esc(it.label)}：${fmt(it.value)}（${(share * 100).toFixed(1)}%）</text>`;
    } else if (i === 18) {
      s += `<text x="448" y="${56 + i * 19}" fill="#56677a">… ${items.length - 18}</text>`;
    }
  });
  return s + '</svg>';
}

// ---------------------------------------------------------------------------------------------
// The choropleth on the map

/** Five equal classes from the smallest value to the largest (from 0 when all are equal). */
function classes(values) {
  const max = values.length ? Math.max(...values) : 0;
  let min = values.length ? Math.min(...values) : 0;
  if (min >= max) min = Math.min(0, max);
  const step = max > min ? (max - min) / RAMP.length : 1;
  return RAMP.map((c, i) => ({ colour: c, from: min + step * i, to: min + step * (i + 1) }));
}

function choroplethData() {
  const a = st.answer;
  const values = a.groups.filter((g) => g.geometry).map((g) => measure(a, g));
  const cls = classes(values);
  const colour = (v) => (cls.find((c) => v <= c.to + 1e-9) || cls[cls.length - 1]).colour;
  const features = a.groups
    .filter((g) => g.geometry)
    .map((g) => ({ type: 'Feature', geometry: g.geometry, properties: { key: g.key[0], name: groupText(g), value: measure(a, g), fill: colour(measure(a, g)) } }));
  return { fc: { type: 'FeatureCollection', features }, cls };
}

function legend(cls) {
  let el = $('stats-legend');
  if (!el) {
    el = document.createElement('div');
    el.id = 'stats-legend';
    el.dataset.testid = 'stats-legend';
    $('view-map').appendChild(el);
  }
  const a = st.answer;
  el.hidden = false;
  el.innerHTML = `<b>${esc(t('st_legend', { layer: a.title, m: measureName(a) }))}</b>${a.as_of ? `<div>${esc(beijing(a.as_of))}</div>` : ''}` +
    cls.map((c) => `<div><i style="background:${c.colour}"></i>${fmt(Math.round(c.from * 100) / 100)} – ${fmt(Math.round(c.to * 100) / 100)}</div>`).join('');
}

function drawChoropleth() {
  const map = state.map;
  const a = st.answer;
  if (!map || !a) return;
  if (!a.group_by.includes('division')) {
    showError(t('st_need_division'));
    return;
  }
  const { fc, cls } = choroplethData();
  try {
    if (map.getSource(SOURCE)) {
      map.getSource(SOURCE).setData(fc);
    } else {
      map.addSource(SOURCE, { type: 'geojson', data: fc });
      // Under the points and labels, so the features stay visible on the colours.
      const above = map.getStyle().layers.find((l) => l.type === 'circle' || l.type === 'symbol');
      const before = above ? above.id : undefined;
      map.addLayer({ id: `${SOURCE}-fill`, type: 'fill', source: SOURCE, paint: { 'fill-color': ['get', 'fill'], 'fill-opacity': 0.65 } }, before);
      map.addLayer({ id: `${SOURCE}-line`, type: 'line', source: SOURCE, paint: { 'line-color': '#6b3a1f', 'line-width': 1.2 } }, before);
      // Labels need the style's glyphs.
      if (map.getStyle().glyphs) {
        map.addLayer({ id: `${SOURCE}-label`, type: 'symbol', source: SOURCE, layout: { 'text-field': ['concat', ['get', 'name'], '\n', ['to-string', ['get', 'value']]], 'text-size': 12 }, paint: { 'text-halo-color': '#fff', 'text-halo-width': 1.5 } });
      }
    }
  } catch (e) {
    // The style is being (re)loaded: draw once the map has settled.
    if (!st.retrying) {
      st.retrying = true;
      map.once('idle', () => {
        st.retrying = false;
        if (st.choropleth) drawChoropleth();
      });
    }
    return;
  }
  legend(cls);
  const b = bounds(fc);
  if (b) map.fitBounds(b, { padding: 40, duration: 0 });
}

function bounds(fc) {
  let b = null;
  const walk = (c) => {
    if (typeof c[0] === 'number') {
      b = b ? [Math.min(b[0], c[0]), Math.min(b[1], c[1]), Math.max(b[2], c[0]), Math.max(b[3], c[1])] : [c[0], c[1], c[0], c[1]];
    } else c.forEach(walk);
  };
  fc.features.forEach((f) => walk(f.geometry.coordinates));
  return b && [[b[0], b[1]], [b[2], b[3]]];
}

function clearChoropleth() {
  st.choropleth = false;
  const map = state.map;
  if (map) for (const id of [`${SOURCE}-label`, `${SOURCE}-line`, `${SOURCE}-fill`]) if (map.getLayer(id)) map.removeLayer(id);
  if (map && map.getSource(SOURCE)) map.removeSource(SOURCE);
  const el = $('stats-legend');
  if (el) el.hidden = true;
  $('stats-map').textContent = t('st_map');
}

async function showChoropleth() {
  if (st.choropleth) {
    clearChoropleth();
    return;
  }
  showError(null);
  if (!st.answer || !st.answer.group_by.includes('division')) {
    showError(t('st_need_division'));
    return;
  }
  st.choropleth = true;
  $('stats-map').textContent = t('st_map_clear');
  $('tab-map').click();
  if (state.map) drawChoropleth();
}

on('map-ready', (map) => {
  // The style may be replaced (another basemap): put the layers back.
  map.on('style.load', () => st.choropleth && drawChoropleth());
  if (st.choropleth) drawChoropleth();
});

// ---------------------------------------------------------------------------------------------
// Exports

async function exportTable(format) {
  showError(null);
  if (!st.answer) return null;
  try {
    const r = await invoke('stats_export', { stats: st.answer, format, path: $('stats-path').value });
    $('stats-status').textContent = t('st_saved', { path: r.path, kb: (r.bytes / 1024).toFixed(1) });
    return r;
  } catch (e) {
    showError(e);
    throw e;
  }
}

/** The chart's SVG drawn on a canvas at twice its size, as PNG bytes. */
async function chartPng() {
  const svg = $('stats-chart').querySelector('svg');
  if (!svg) throw new Error('no chart');
  const text = new XMLSerializer().serializeToString(svg);
  const img = new Image();
  await new Promise((ok, fail) => {
    img.onload = ok;
    img.onerror = () => fail(new Error('SVG → image failed'));
    img.src = `data:image/svg+xml;charset=utf-8,${encodeURIComponent(text)}`;
  });
  const canvas = document.createElement('canvas');
  canvas.width = W * 2;
  canvas.height = H * 2;
  const ctx = canvas.getContext('2d');
  ctx.fillStyle = '#fff';
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  ctx.drawImage(img, 0, 0, canvas.width, canvas.height);
  const blob = await new Promise((ok) => canvas.toBlob(ok, 'image/png'));
  return new Uint8Array(await blob.arrayBuffer());
}

async function exportPng() {
  showError(null);
  try {
    const png = await chartPng();
    const r = await invoke('stats_png', { png: Array.from(png), path: $('stats-path').value });
    $('stats-status').textContent = t('st_saved', { path: r.path, kb: (r.bytes / 1024).toFixed(1) });
    return r;
  } catch (e) {
    showError(e);
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------
// The view

function defaultPath() {
  const layer = $('stats-layer').value || 'layer';
  const day = new Date(Date.now() + 8 * 3600e3).toISOString().slice(0, 10);
  const sep = st.folder.includes('\\') ? '\\' : '/';
  return st.folder ? `${st.folder}${sep}统计-${layer}-${day}` : '';
}

/** Reads the layer's fields (an ungrouped count), then counts with the default grouping. */
async function pickLayer() {
  showError(null);
  try {
    const a = await invoke('stats_query', { layer: $('stats-layer').value, groupBy: [], sums: [], divisions: null, filter: null, asOf: state.asOf, geometry: false });
    st.fields = a.fields;
    fillGroupChoices();
    $('stats-path').value = defaultPath();
    await runStats();
  } catch (e) {
    showError(e);
  }
}

async function load() {
  const root = $('view-stats');
  root.innerHTML = html();
  applyI18n(root);
  asOfText();
  st.folder = await invoke('stats_folder');
  st.layers = await invoke('stats_layers');
  const counted = st.layers.filter((l) => !/Polygon/i.test(l.geometry_type));
  const first = counted.find((l) => l.name === 'manhole') || counted[0] || st.layers[0];
  $('stats-layer').innerHTML = st.layers.map((l) => option(l.name, `${l.title}（${l.name}）`, first && l.name === first.name)).join('');
  // The demo's district boundaries (区县界) are the natural default when the layer exists.
  const divisionLayer = polygonLayers().find((l) => l.name === 'district') || polygonLayers()[0];
  $('stats-divisions').innerHTML = polygonLayers().map((l) => option(l.name, `${l.title}（${l.name}）`, divisionLayer && l.name === divisionLayer.name)).join('');
  $('stats-layer').addEventListener('change', pickLayer);
  $('stats-group').addEventListener('change', () => {
    divisionRow();
    runStats().catch(() => {});
  });
  for (const id of ['stats-measure', 'stats-divisions']) $(id).addEventListener('change', () => runStats().catch(() => {}));
  $('stats-chart-kind').addEventListener('change', draw);
  $('stats-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    runStats().catch(() => {});
  });
  $('stats-xlsx').addEventListener('click', () => exportTable('xlsx').catch(() => {}));
  $('stats-csv').addEventListener('click', () => exportTable('csv').catch(() => {}));
  $('stats-png').addEventListener('click', () => exportPng().catch(() => {}));
  $('stats-map').addEventListener('click', showChoropleth);
  st.loaded = true;
  await pickLayer();
}

async function show() {
  hooks();
  if (!st.loaded) {
    try {
      await load();
    } catch (e) {
      showError(e);
    }
  }
}

// The statistics follow the time slider (quietly, a quarter second after it stops).
let pending = null;
on('asof', () => {
  if (!st.loaded) return;
  asOfText();
  clearTimeout(pending);
  pending = setTimeout(() => runStats().catch(() => {}), 250);
});
on('lang', () => {
  if (!st.loaded) return;
  applyI18n($('view-stats'));
  asOfText();
  draw();
});
on('signed-out', () => {
  clearChoropleth();
  st.loaded = false;
  st.answer = null;
  $('view-stats').innerHTML = '';
});

registerView('stats', { show });

// What the end-to-end test reads: the answer on screen and the chart's numbers as drawn. Added
// after app.js has set `window.shikongDesktop` (it runs after its imports).
function hooks() {
  window.shikongDesktop = Object.assign(window.shikongDesktop || {}, {
    stats: {
      answer: () => st.answer,
      chart: () => [...document.querySelectorAll('#stats-chart .datum')].map((e) => ({ key: e.dataset.key, label: e.dataset.label, value: Number(e.dataset.value) })),
      run: runStats,
      exportTable,
      exportPng,
      choropleth: () => (state.map && state.map.getSource(SOURCE) ? choroplethData().fc.features.map((f) => f.properties) : null),
    },
  });
}
setTimeout(hooks, 0);

// 打印 (print): the map as a layout sheet — title, map, legend, scale bar, north arrow, date (the
// map's instant `state.asOf`, or now; Beijing time) and CRS note — previewed here and written as
// PDF (by the Rust side, `print_pdf`: real text and vector shapes around the map image) or PNG
// (composed here on a canvas, written by `print_png`).
//
// The sheet's geometry comes from Rust (`print_layout`, the same code the PDF uses), as a display
// list in millimetres; `drawSheet` draws it on a canvas. The map is rendered by an offscreen
// MapLibre map of the frame's size at the print's pixel ratio, so labels and lines keep their
// on-screen physical size and the frame shows what the screen showed (its centred crop).
import maplibregl from 'maplibre-gl';
import { invoke, $, state, on, registerView } from './core.js';
import { t, lang, addText, applyI18n } from './i18n.js';
import { showMap } from './map.js';

addText({
  print_title: ['标题', 'Title'],
  print_title_default: ['时空专题图', 'Shikong thematic map'],
  print_beijing: ['{date}（北京时间）', '{date} (Beijing time)'],
  print_paper: ['纸张', 'Paper'],
  print_orientation: ['方向', 'Orientation'],
  print_portrait: ['纵向', 'Portrait'],
  print_landscape: ['横向', 'Landscape'],
  print_dpi: ['分辨率（DPI）', 'Resolution (DPI)'],
  print_path: ['输出文件（不含扩展名亦可）', 'Output file (extension optional)'],
  print_pdf: ['导出 PDF', 'Export PDF'],
  print_png: ['导出 PNG', 'Export PNG'],
  print_date: ['数据时点', 'Data as of'],
  print_scale: ['比例尺', 'Scale'],
  print_legend: ['图例', 'Legend'],
  print_font: ['PDF 字体：{font}', 'PDF font: {font}'],
  print_rendering: ['正在渲染地图（{w} × {h} 像素）…', 'Rendering the map ({w} × {h} px)…'],
  print_saved: ['已保存：{path}（{w} × {h} 像素，{kb} KB）', 'Saved: {path} ({w} × {h} px, {kb} KB)'],
  print_no_map: ['地图尚未加载', 'The map is not loaded yet'],
  print_preview_note: ['预览与导出使用同一版式', 'The preview and the exports share one layout'],
});

/** The default title in each language (a default left as it is follows the language). */
const DEFAULT_TITLES = ['时空专题图', 'Shikong thematic map'];

/** Beijing time of an RFC 3339 instant (or now): `2026-12-07 10:00`. */
export function beijing(t) {
  const ms = t ? Date.parse(t) : Date.now();
  if (Number.isNaN(ms)) return String(t);
  return new Date(ms + 8 * 3600e3).toISOString().slice(0, 16).replace('T', ' ');
}

let setup = null; // print_setup: default folder, the PDF's font
let sheet = null; // the last layout
let built = false;
let lastView = null; // the map's last on-screen view (the map's container is hidden here)
let previewTimer = null;
let previewRun = 0;

function watchMap(map) {
  const remember = () => {
    const c = map.getContainer();
    if (!c.clientWidth || !c.clientHeight) return;
    const centre = map.getCenter();
    lastView = { width: c.clientWidth, height: c.clientHeight, zoom: map.getZoom(), lat: centre.lat, lng: centre.lng, bearing: map.getBearing() };
  };
  for (const ev of ['load', 'moveend', 'resize', 'idle']) map.on(ev, remember);
  remember();
}
on('map-ready', watchMap);

// ---------------------------------------------------------------------------------------------
// Legend: the map's visible style layers with a title (the server's styles carry
// `metadata["shikong:title"]`), one entry per title; once the printed map is drawn, only the
// layers it shows (rasters always).

const probe = document.createElement('canvas').getContext('2d');

/** A CSS colour → [r, g, b, a] (the canvas normalises it). */
function rgba(css, opacity = 1) {
  probe.fillStyle = '#000000';
  probe.fillStyle = css;
  const v = probe.fillStyle;
  let out = [0, 0, 0, 1];
  if (v.startsWith('#')) out = [parseInt(v.slice(1, 3), 16), parseInt(v.slice(3, 5), 16), parseInt(v.slice(5, 7), 16), 1];
  else {
    const m = v.match(/rgba?\(([^)]+)\)/);
    if (m) {
      const p = m[1].split(',').map(Number);
      out = [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
    }
  }
  out[3] = Math.max(0, Math.min(1, out[3] * opacity));
  return out;
}

/** The first colour in a paint value (a colour, or an expression holding colours). */
function firstColour(v) {
  if (typeof v === 'string') return v;
  if (Array.isArray(v)) {
    for (const x of v.slice(1)) {
      const c = firstColour(x);
      if (c && (c.startsWith('#') || c.startsWith('rgb') || c.startsWith('hsl'))) return c;
    }
  }
  return null;
}

const KINDS = { fill: ['fill', 'fill-color', 'fill-opacity'], 'fill-extrusion': ['fill', 'fill-extrusion-color', 'fill-extrusion-opacity'], line: ['line', 'line-color', 'line-opacity'], circle: ['circle', 'circle-color', 'circle-opacity'], raster: ['raster', null, null] };
/** The app's own layers' legend titles (text keys). */
const OWN_TITLES = { 'desk-cases': 'mt_cases' };

export function legendEntries(map, shown) {
  if (!map) return [];
  const z = map.getZoom();
  const out = [];
  const seen = new Set();
  for (const l of map.getStyle().layers) {
    const kind = KINDS[l.type];
    if (!kind) continue;
    if (map.getLayoutProperty(l.id, 'visibility') === 'none') continue;
    if ((l.minzoom != null && z < l.minzoom) || (l.maxzoom != null && z >= l.maxzoom)) continue;
    if (shown && shown.size && l.type !== 'raster' && !shown.has(l.id)) continue;
    const title = (l.metadata && l.metadata['shikong:title']) || (OWN_TITLES[l.id] && t(OWN_TITLES[l.id])) || l['source-layer'] || (l.type === 'raster' ? l.source : null);
    if (!title || seen.has(title)) continue;
    seen.add(title);
    const colour = kind[1] ? firstColour(map.getPaintProperty(l.id, kind[1])) || '#2e86ab' : '#c8d0b8';
    const op = kind[2] ? map.getPaintProperty(l.id, kind[2]) : 1;
    out.push({ title: String(title), kind: kind[0], color: rgba(colour, typeof op === 'number' ? op : 1) });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The view

function build() {
  if (built) return;
  built = true;
  const v = $('view-print');
  v.innerHTML = `
  <form class="print-side" id="print-form" autocomplete="off">
    <label><span data-i18n="print_title"></span><input id="print-title" data-testid="print-title"></label>
    <div class="print-row">
      <label><span data-i18n="print_paper"></span><select id="print-paper" data-testid="print-paper"><option value="a4">A4</option><option value="a3">A3</option></select></label>
      <label><span data-i18n="print_orientation"></span><select id="print-orientation" data-testid="print-orientation">
        <option value="portrait" data-i18n="print_portrait"></option><option value="landscape" data-i18n="print_landscape"></option></select></label>
      <label><span data-i18n="print_dpi"></span><input id="print-dpi" data-testid="print-dpi" type="number" min="72" max="300" step="1" value="150"></label>
    </div>
    <label><span data-i18n="print_path"></span><input id="print-path" data-testid="print-path"></label>
    <dl class="print-facts">
      <dt data-i18n="print_date"></dt><dd id="print-date" data-testid="print-date"></dd>
      <dt data-i18n="print_scale"></dt><dd id="print-scale" data-testid="print-scale"></dd>
      <dt data-i18n="print_legend"></dt><dd id="print-legend" data-testid="print-legend"></dd>
    </dl>
    <p class="print-font" id="print-font" data-testid="print-font"></p>
    <div class="actions">
      <button type="button" id="print-pdf" data-testid="print-pdf" data-i18n="print_pdf"></button>
      <button type="button" id="print-png" data-testid="print-png" data-i18n="print_png"></button>
    </div>
    <p id="print-status" data-testid="print-status" role="status"></p>
    <p class="error" id="print-error" data-testid="print-error" role="alert"></p>
  </form>
  <div class="print-stage" id="print-stage"><canvas id="print-preview" data-testid="print-preview"></canvas></div>`;
  applyI18n(v);
  $('print-title').value = t('print_title_default');
  for (const id of ['print-title', 'print-paper', 'print-orientation', 'print-dpi']) {
    $(id).addEventListener('input', schedulePreview);
    $(id).addEventListener('change', schedulePreview);
  }
  $('print-form').addEventListener('submit', (e) => e.preventDefault());
  $('print-pdf').addEventListener('click', () => exportAs('pdf'));
  $('print-png').addEventListener('click', () => exportAs('png'));
  new ResizeObserver(() => state.view === 'print' && schedulePreview()).observe($('print-stage'));
}

function stamp() {
  return beijing(null).replace(/[-: ]/g, '').replace(/^(\d{8})/, '$1-');
}

function job(shown) {
  const v = lastView;
  return {
    title: $('print-title').value,
    paper: $('print-paper').value,
    orientation: $('print-orientation').value,
    dpi: Math.round(Number($('print-dpi').value) || 150),
    date: beijing(state.asOf),
    // The sheet's own words (legend heading, scale, CRS, date line) in the app's language.
    lang: lang() === 'en' ? 'en' : 'zh-CN',
    screen: { width: v.width, height: v.height, zoom: v.zoom, lat: v.lat, bearing: v.bearing },
    legend: legendEntries(state.map, shown),
  };
}

/** Lays the sheet out; `shown`: the style layers the printed map drew (the legend's entries). */
async function layout(shown) {
  if (!state.map || !lastView) throw new Error(t('print_no_map'));
  const j = job(shown);
  const s = await invoke('print_layout', { job: j });
  return { job: j, sheet: s };
}

/** Shows what the sheet says beside it (and keeps it for the test hook). */
function facts(j, s) {
  sheet = s;
  $('print-date').textContent = t('print_beijing', { date: j.date });
  $('print-scale').textContent = s.scale.ratio_text;
  $('print-legend').textContent = j.legend.map((e) => e.title).join(t('list_sep')) || '—';
}

/** Renders the map for `render` (a sheet's `map`) at `pixelRatio`; resolves to its canvas and
 * a function that removes it. */
function renderMap(render, pixelRatio) {
  return new Promise((resolve) => {
    const box = document.createElement('div');
    box.className = 'print-offscreen';
    box.style.width = `${render.css_width}px`;
    box.style.height = `${render.css_height}px`;
    document.body.appendChild(box);
    const map = new maplibregl.Map({
      container: box,
      style: state.map.getStyle(),
      center: [lastView.lng, lastView.lat],
      zoom: render.zoom,
      bearing: render.bearing,
      pitch: 0,
      interactive: false,
      attributionControl: false,
      fadeDuration: 0,
      pixelRatio,
      canvasContextAttributes: { preserveDrawingBuffer: true, antialias: true },
    });
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      const shown = new Set(map.queryRenderedFeatures().map((f) => f.layer.id));
      resolve({ canvas: map.getCanvas(), shown, remove: () => { map.remove(); box.remove(); } });
    };
    map.once('idle', finish);
    // A tile that never answers must not hold the print: after 30 s, what is drawn is printed.
    setTimeout(finish, 30000);
  });
}

const ALIGN = { start: 'left', middle: 'center', end: 'right' };
const css = (c) => `rgba(${c[0]},${c[1]},${c[2]},${c[3]})`;

/** Draws `s` (a sheet) on `ctx` at `k` pixels per millimetre, the map from `img` (its whole
 * area) in the frame. */
export function drawSheet(ctx, s, k, img) {
  const family = setup && setup.font ? `"${setup.font}", ` : '';
  ctx.save();
  ctx.fillStyle = '#fff';
  ctx.fillRect(0, 0, s.width_mm * k, s.height_mm * k);
  const f = s.frame;
  if (img) ctx.drawImage(img, 0, 0, img.width, img.height, f.x * k, f.y * k, f.w * k, f.h * k);
  else {
    ctx.fillStyle = '#eef2f6';
    ctx.fillRect(f.x * k, f.y * k, f.w * k, f.h * k);
  }
  ctx.lineJoin = 'miter';
  const paint = (fill, stroke, width) => {
    if (fill) {
      ctx.fillStyle = css(fill);
      ctx.fill();
    }
    if (stroke) {
      ctx.strokeStyle = css(stroke);
      ctx.lineWidth = width * k;
      ctx.stroke();
    }
  };
  for (const it of s.items) {
    ctx.beginPath();
    switch (it.type) {
      case 'text':
        ctx.font = `${it.size * k}px ${family}"Noto Sans CJK SC", "WenQuanYi Micro Hei", sans-serif`;
        ctx.textAlign = ALIGN[it.anchor];
        ctx.textBaseline = 'alphabetic';
        ctx.fillStyle = css(it.color);
        ctx.fillText(it.text, it.x * k, it.y * k);
        break;
      case 'rect':
        ctx.rect(it.rect.x * k, it.rect.y * k, it.rect.w * k, it.rect.h * k);
        paint(it.fill, it.stroke, it.width);
        break;
      case 'polygon':
      case 'line':
        it.points.forEach(([x, y], i) => (i ? ctx.lineTo(x * k, y * k) : ctx.moveTo(x * k, y * k)));
        if (it.type === 'polygon') {
          ctx.closePath();
          paint(it.fill, it.stroke, it.width);
        } else paint(null, it.stroke, it.width);
        break;
      case 'circle':
        ctx.arc(it.cx * k, it.cy * k, it.r * k, 0, 2 * Math.PI);
        paint(it.fill, it.stroke, it.width);
        break;
      default:
        break;
    }
  }
  ctx.restore();
}

function schedulePreview() {
  clearTimeout(previewTimer);
  previewTimer = setTimeout(() => preview().catch(showError), 250);
}

function showError(e) {
  $('print-error').textContent = e ? String(e) : '';
}

async function preview() {
  const run = ++previewRun;
  const first = await layout();
  if (run !== previewRun) return;
  const s0 = first.sheet;
  facts(first.job, s0);
  const stage = $('print-stage');
  const ratio = window.devicePixelRatio || 1;
  const k = Math.max(0.5, Math.min((stage.clientWidth - 32) / s0.width_mm, (stage.clientHeight - 32) / s0.height_mm));
  const cv = $('print-preview');
  cv.width = Math.round(s0.width_mm * k * ratio);
  cv.height = Math.round(s0.height_mm * k * ratio);
  cv.style.width = `${s0.width_mm * k}px`;
  cv.style.height = `${s0.height_mm * k}px`;
  const ctx = cv.getContext('2d');
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  drawSheet(ctx, s0, k, null);
  // The map at the preview's resolution: the same extent and symbol sizes as the print.
  const m = await renderMap(s0.map, (k * ratio * 25.4) / 96);
  try {
    // The frame does not depend on the legend: the map drawn stands for the filtered sheet.
    const { job: j, sheet: s } = await layout(m.shown);
    if (run !== previewRun) return;
    facts(j, s);
    drawSheet(ctx, s, k, m.canvas);
    cv.dataset.ready = 'true';
  } finally {
    m.remove();
  }
  showError(null);
}

const blob = (canvas) => new Promise((res, rej) => canvas.toBlob((b) => (b ? res(b) : rej(new Error('canvas → PNG failed'))), 'image/png'));

/** `[u32 LE length][JSON header][bytes]`: the body `print_pdf` / `print_png` take. */
function framed(header, bytes) {
  const h = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(4 + h.length + bytes.length);
  new DataView(out.buffer).setUint32(0, h.length, true);
  out.set(h, 4);
  out.set(bytes, 4 + h.length);
  return out;
}

/** What the status line's "Saved: …" says (`print_saved`'s vars), worded again on a language
 * switch; null while nothing is saved. */
let savedLine = null;

async function exportAs(fmt) {
  const status = $('print-status');
  status.textContent = '';
  savedLine = null;
  delete status.dataset.saved;
  showError(null);
  for (const b of ['print-pdf', 'print-png']) $(b).disabled = true;
  try {
    const first = await layout();
    facts(first.job, first.sheet);
    status.textContent = t('print_rendering', { w: first.sheet.map.width_px, h: first.sheet.map.height_px });
    const m = await renderMap(first.sheet.map, first.sheet.map.pixel_ratio);
    let bytes;
    let j;
    let s;
    try {
      ({ job: j, sheet: s } = await layout(m.shown));
      facts(j, s);
      if (fmt === 'pdf') {
        bytes = new Uint8Array(await (await blob(m.canvas)).arrayBuffer());
      } else {
        const page = document.createElement('canvas');
        page.width = s.width_px;
        page.height = s.height_px;
        drawSheet(page.getContext('2d'), s, s.width_px / s.width_mm, m.canvas);
        bytes = new Uint8Array(await (await blob(page)).arrayBuffer());
      }
    } finally {
      m.remove();
    }
    const path = $('print-path').value;
    const header = fmt === 'pdf' ? { job: j, path } : { path };
    const saved = await window.__TAURI__.core.invoke(fmt === 'pdf' ? 'print_pdf' : 'print_png', framed(header, bytes));
    savedLine = { path: saved.path, w: saved.width_px, h: saved.height_px, kb: Math.round(saved.bytes / 1024) };
    status.textContent = t('print_saved', savedLine);
    status.dataset.saved = saved.path;
    return saved;
  } catch (e) {
    status.textContent = '';
    showError(e);
    throw e;
  } finally {
    for (const b of ['print-pdf', 'print-png']) $(b).disabled = false;
  }
}

async function show() {
  build();
  hooks();
  if (!setup) {
    setup = await invoke('print_setup');
    const sep = setup.folder.includes('\\') ? '\\' : '/';
    if (!$('print-path').value) $('print-path').value = `${setup.folder}${sep}${t('print_title_default')}-${stamp()}`;
    $('print-font').textContent = setup.font ? t('print_font', { font: setup.font }) : setup.font_error;
    $('print-font').classList.toggle('error', !setup.font);
    $('print-font').title = setup.font_path || '';
  }
  // The map is made when its view first opens; printing needs it (its style and view).
  if (!state.map) await showMap();
  const map = state.map;
  if (map && !map.isStyleLoaded()) await new Promise((r) => map.once('load', r));
  if (map && !lastView) {
    // Never shown: the view the map would have had, the size of this one.
    const c = map.getCenter();
    const v = $('view-print');
    lastView = { width: v.clientWidth, height: v.clientHeight, zoom: map.getZoom(), lat: c.lat, lng: c.lng, bearing: map.getBearing() };
  }
  await preview().catch(showError);
}

on('asof', () => state.view === 'print' && schedulePreview());
on('lang', () => {
  if (!built) return;
  applyI18n($('view-print'));
  // The title still the default: the default in the new language.
  const title = $('print-title');
  if (title && DEFAULT_TITLES.includes(title.value)) title.value = t('print_title_default');
  if (setup && setup.font) $('print-font').textContent = t('print_font', { font: setup.font });
  if (savedLine && $('print-status').dataset.saved) $('print-status').textContent = t('print_saved', savedLine);
  if (state.view === 'print') schedulePreview();
});

function hooks() {
  window.shikongDesktop = Object.assign(window.shikongDesktop || {}, {
    /** The print view's last sheet (display list) and what it says. */
    printSheet: () => sheet,
    /** Exports the current layout (`pdf` or `png`); resolves to what was saved. */
    print: (fmt) => exportAs(fmt),
  });
}
setTimeout(hooks, 0);

registerView('print', { show });

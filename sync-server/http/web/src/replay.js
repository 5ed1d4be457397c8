// The animation of a `replay` result (历史回放 / 模拟推演, issue 19): the layer's state at `from`,
// then each step's changes (added, changed, removed). A step slider and play/pause rebuild the
// state at any step from the first state and the changes up to it (steps are bounded by the
// server, at most 1,000), drawn as one GeoJSON source with what this step added or changed
// highlighted. Used by analysis.js in both the web map and the desktop app.
//
// DOM contract: the slider `input[type=range][data-testid=replay-slider]`, the play button
// `[data-testid=replay-play]`, the step text `[data-testid=replay-step]`.

const SOURCE = 'analysis-replay';
const FRAME_MS = 800;
const NEW = '#e15759';
const KEPT = '#4e79a7';

const el = (tag, attrs = {}, text) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
};

const keyOf = (f) => String(f.id ?? (f.properties && (f.properties.id ?? f.properties.code)));

/** The features live at step `i` (0: the first state), those of step `i` marked `sk_new`. */
export function stateAt(result, i) {
  const live = new Map();
  for (const f of result.initial || []) live.set(keyOf(f), f);
  const steps = result.steps || [];
  const fresh = new Set();
  for (let s = 0; s < Math.min(i, steps.length); s += 1) {
    const step = steps[s];
    const last = s === i - 1;
    for (const id of step.removed || []) live.delete(String(id));
    for (const f of [...(step.added || []), ...(step.changed || [])]) {
      live.set(keyOf(f), f);
      if (last) fresh.add(keyOf(f));
    }
  }
  return [...live].map(([k, f]) => ({ ...f, properties: { ...(f.properties || {}), sk_new: fresh.has(k) } }));
}

function layers() {
  const color = ['case', ['boolean', ['get', 'sk_new'], false], NEW, KEPT];
  const kind = (k) => ['==', ['geometry-type'], k];
  return [
    { id: `${SOURCE}-fill`, type: 'fill', source: SOURCE, filter: ['any', kind('Polygon'), kind('MultiPolygon')], paint: { 'fill-color': color, 'fill-opacity': 0.5 } },
    { id: `${SOURCE}-line`, type: 'line', source: SOURCE, filter: ['any', kind('LineString'), kind('MultiLineString')], paint: { 'line-color': color, 'line-width': 3 } },
    { id: `${SOURCE}-point`, type: 'circle', source: SOURCE, filter: ['any', kind('Point'), kind('MultiPoint')], paint: { 'circle-color': color, 'circle-radius': 6, 'circle-stroke-color': '#333', 'circle-stroke-width': 1 } },
  ];
}

/** The replay controls in `box` over `map`; `load(job, result)` shows a result at step 0. */
export function createReplay(box, { map, t }) {
  let result = null;
  let job = null;
  let index = 0;
  let timer = null;
  const play = el('button', { type: 'button', 'data-testid': 'replay-play' }, t('sk_play'));
  const slider = el('input', { type: 'range', min: 0, max: 0, step: 1, value: 0, 'data-testid': 'replay-slider' });
  const text = el('div', { 'data-testid': 'replay-step', class: 'sk-an-step' });
  const changes = el('div', { class: 'sk-an-changes' });
  const key = el('div', { class: 'sk-an-legend' });
  for (const [c, k] of [[NEW, 'sk_replay_new'], [KEPT, 'sk_replay_kept']]) {
    const row = el('div');
    const sw = el('span', { class: 'sk-swatch' });
    sw.style.background = c;
    row.append(sw, t(k));
    key.append(row);
  }
  box.append(el('h4', {}, t('sk_replay')), play, slider, text, changes, key);

  const stop = () => {
    if (timer) clearInterval(timer);
    timer = null;
    play.textContent = t('sk_play');
  };

  function show(i) {
    if (!result) return;
    const steps = result.steps || [];
    index = Math.max(0, Math.min(i, steps.length));
    slider.value = String(index);
    const features = stateAt(result, index);
    const data = { type: 'FeatureCollection', features };
    const src = map.getSource(SOURCE);
    if (src) src.setData(data);
    else {
      map.addSource(SOURCE, { type: 'geojson', data });
      for (const l of layers()) map.addLayer(l);
    }
    const step = index > 0 ? steps[index - 1] : null;
    const at = step ? step.at : result.from;
    text.textContent = t('sk_replay_step', { i: index, n: steps.length, at, live: step ? step.live : features.length });
    changes.textContent = step
      ? t('sk_replay_changes', { added: step.added.length, changed: step.changed.length, removed: step.removed.length })
      : '';
  }

  slider.addEventListener('input', () => {
    stop();
    show(Number(slider.value));
  });
  play.addEventListener('click', () => {
    if (timer) return stop();
    if (!result) return;
    if (index >= (result.steps || []).length) show(0);
    play.textContent = t('sk_pause');
    timer = setInterval(() => {
      if (index >= result.steps.length) stop();
      else show(index + 1);
    }, FRAME_MS);
  });

  function clear() {
    stop();
    for (const l of layers()) if (map.getLayer(l.id)) map.removeLayer(l.id);
    if (map.getSource(SOURCE)) map.removeSource(SOURCE);
    result = null;
    job = null;
    box.hidden = true;
  }

  return {
    load(jobID, r) {
      stop();
      result = r;
      job = jobID;
      slider.max = String((r.steps || []).length);
      box.hidden = false;
      show(0);
    },
    show,
    clear,
    state: () => ({ job, step: index, steps: result ? result.steps.length : 0, playing: Boolean(timer), text: text.textContent }),
  };
}

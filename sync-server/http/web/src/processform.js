// A form built from an OGC API – Processes description (issue 19), shared by the web map and the
// desktop app through analysis.js. The server adds processes over time with the same shapes, so
// nothing here knows a process: each input's JSON Schema decides its control —
//   string / number / integer / boolean → text, number (min/max/step) or checkbox;
//   `enum` → a select; `format: date-time` → a Beijing-time `datetime-local`;
//   `oneOf` of objects told apart by a `const` member (the spatial weights) → a select of the
//     alternatives, each with its own fields; `oneOf` of a string and an object (a CQL2 filter)
//     → text;
//   the input named `collection` → a select of the readable layers (GET /collections), and an
//     input named `field` → a select of that layer's numeric fields (its queryables).
// Required inputs come first; the optional ones sit in a folded "more options" part, and only
// the ones the person set are sent (the server applies its defaults).
//
// DOM contract (tests rely on it): each control has `data-input="NAME"` (an alternative's field
// `data-input="NAME.FIELD"`), the alternatives' select `data-input="NAME"` with the `const` values
// as option values.

import { fromLocalInput } from './time.js';

const el = (tag, attrs = {}, text) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'dataset') Object.assign(e.dataset, v);
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  if (text !== undefined) e.textContent = text;
  return e;
};

/** The `const` that tells a `oneOf` alternative apart (`{type: {const: 'knn'}}`), or null. */
function tagOf(alt) {
  if (!alt || alt.type !== 'object' || !alt.properties) return null;
  for (const [k, p] of Object.entries(alt.properties)) if (p && 'const' in p) return { key: k, value: p.const };
  return null;
}

function isTagged(schema) {
  return Array.isArray(schema.oneOf) && schema.oneOf.length > 0 && schema.oneOf.every((a) => tagOf(a));
}

/** A scalar control for `schema`; `value()` gives the typed value, or undefined when unset. */
function scalar(name, schema, required, t) {
  if (Array.isArray(schema.enum)) {
    const s = el('select', { 'data-input': name, required });
    if (!required) s.append(el('option', { value: '' }, t('sk_none')));
    for (const v of schema.enum) s.append(el('option', { value: String(v) }, String(v)));
    if (schema.default !== undefined) s.value = String(schema.default);
    return { node: s, value: () => (s.value === '' ? undefined : schema.enum.find((v) => String(v) === s.value)) };
  }
  const ty = schema.type;
  if (ty === 'boolean') {
    const c = el('input', { type: 'checkbox', 'data-input': name });
    const d = Boolean(schema.default);
    c.checked = d;
    return { node: c, value: () => (required || c.checked !== d ? c.checked : undefined) };
  }
  if (ty === 'number' || ty === 'integer') {
    const min = schema.minimum ?? schema.exclusiveMinimum;
    const max = schema.maximum ?? schema.exclusiveMaximum;
    const i = el('input', {
      type: 'number',
      'data-input': name,
      required,
      min,
      max,
      step: ty === 'integer' ? 1 : 'any',
      placeholder: schema.default !== undefined ? String(schema.default) : undefined,
    });
    return {
      node: i,
      value: () => {
        if (i.value === '') return undefined;
        const n = Number(i.value);
        return Number.isFinite(n) ? n : undefined;
      },
    };
  }
  if (schema.format === 'date-time') {
    const i = el('input', { type: 'datetime-local', step: 1, 'data-input': name, required });
    return { node: i, value: () => fromLocalInput(i.value) || undefined };
  }
  // Text: plain strings, and a `oneOf` of a string and an object (CQL2 text or JSON) as text.
  const examples = Array.isArray(schema.examples) ? schema.examples : [];
  const i = el('input', {
    type: 'text',
    'data-input': name,
    required,
    pattern: schema.pattern ? schema.pattern.replace(/^\^|\$$/g, '') : undefined,
    placeholder: examples.length ? examples.join(' / ') : undefined,
  });
  return { node: i, value: () => (i.value.trim() === '' ? undefined : i.value.trim()) };
}

/** A `oneOf` of tagged objects: a select of the alternatives and the chosen one's fields. */
function tagged(name, schema, required, t) {
  const select = el('select', { 'data-input': name, required });
  const boxes = [];
  for (const alt of schema.oneOf) {
    const tag = tagOf(alt);
    select.append(el('option', { value: String(tag.value) }, alt.title || String(tag.value)));
    const box = el('span', { class: 'sk-alt', dataset: { alt: String(tag.value) } });
    const fields = [];
    for (const [k, p] of Object.entries(alt.properties)) {
      if (k === tag.key) continue;
      const c = scalar(`${name}.${k}`, p, (alt.required || []).includes(k), t);
      const label = el('label', { title: p.description });
      label.append(`${p.title || k} `, c.node);
      box.append(label);
      fields.push([k, c]);
    }
    boxes.push({ tag, box, fields });
  }
  const wrap = el('span', { class: 'sk-oneof' });
  wrap.append(select, ...boxes.map((b) => b.box));
  const chosen = () => boxes.find((b) => String(b.tag.value) === select.value);
  const show = () => {
    for (const b of boxes) {
      b.box.hidden = b !== chosen();
      // Only the shown alternative's fields take part in the browser's validation.
      for (const [, c] of b.fields) c.node.disabled = b.box.hidden;
    }
  };
  select.addEventListener('change', show);
  show();
  return {
    node: wrap,
    value: () => {
      const b = chosen();
      if (!b) return undefined;
      const v = { [b.tag.key]: b.tag.value };
      for (const [k, c] of b.fields) {
        const x = c.value();
        if (x !== undefined) v[k] = x;
      }
      return v;
    },
  };
}

/**
 * Builds the form of `description` (GET /processes/{id}) into `form` (emptied first).
 * `adapter.json(path)` reads the server; `t` words the labels. Returns `{ values() }`, the
 * `inputs` object of an execute request, `ready`, resolved when the layer lists are read, and
 * `refreshLayers()`, which reads them again (after signing in or out).
 */
export function buildProcessForm(form, description, { adapter, t, collection }) {
  form.replaceChildren();
  const entries = Object.entries(description.inputs || {});
  const rank = (name, d) => (name === 'collection' ? 0 : name === 'field' ? 1 : d.minOccurs > 0 ? 2 : 3);
  entries.sort((a, b) => rank(...a) - rank(...b));
  const controls = [];
  const more = el('details', { class: 'sk-more' });
  more.append(el('summary', {}, t('sk_more_inputs')));
  let layerSelect = null;
  const fieldSelects = [];
  for (const [name, d] of entries) {
    const required = d.minOccurs > 0;
    const schema = d.schema || {};
    let c;
    if (name === 'collection' && schema.type === 'string') {
      const s = el('select', { 'data-input': name, required });
      c = { node: s, value: () => s.value || undefined };
      layerSelect = s;
    } else if (name === 'field' && schema.type === 'string') {
      const s = el('select', { 'data-input': name, required });
      c = { node: s, value: () => s.value || undefined };
      fieldSelects.push(s);
    } else if (isTagged(schema)) c = tagged(name, schema, required, t);
    else c = scalar(name, schema, required, t);
    const row = el('label', { class: 'sk-input', title: d.description });
    row.append(el('span', { class: 'sk-input-title' }, d.title || name), c.node);
    (required ? form : more).append(row);
    controls.push([name, c]);
  }
  if (more.children.length > 1) form.append(more);

  // The numeric fields of the chosen layer, from its queryables. Reads can answer out of order
  // (the first layer's read still on the way when the user picks another): only the latest
  // read may fill the selects.
  let generation = 0;
  const fillFields = async () => {
    if (!fieldSelects.length || !layerSelect) return;
    const mine = ++generation;
    const id = layerSelect.value;
    let props = {};
    if (id) {
      try {
        props = (await adapter.json(`/collections/${encodeURIComponent(id)}/queryables`)).properties || {};
      } catch {
        props = {};
      }
    }
    if (mine !== generation) return;
    // The bookkeeping `version` is numeric too, but it is no data of the layer.
    const numeric = Object.entries(props).filter(([k, p]) => k !== 'version' && (p.type === 'number' || p.type === 'integer'));
    for (const s of fieldSelects) {
      const keep = s.value;
      s.replaceChildren();
      if (!numeric.length) s.append(el('option', { value: '' }, id ? t('sk_no_numeric') : t('sk_choose')));
      for (const [k, p] of numeric) s.append(el('option', { value: k }, p.title && p.title !== k ? `${p.title} (${k})` : k));
      if (keep && numeric.some(([k]) => k === keep)) s.value = keep;
    }
  };
  // The readable layers (GET /collections). Read again when the session changes (signing in
  // shows more layers); the chosen layer and field stay when they are still there.
  let listing = 0;
  const loadLayers = () => {
    if (!layerSelect) return Promise.resolve();
    const mine = ++listing;
    return adapter
      .json('/collections')
      .then((doc) => {
        if (mine !== listing) return undefined;
        const keep = layerSelect.value || collection;
        layerSelect.replaceChildren(el('option', { value: '' }, t('sk_choose')));
        // Layers only: the catalog (`itemType` record) is listed among the collections too.
        for (const c of (doc.collections || []).filter((c) => (c.itemType || 'feature') === 'feature')) {
          layerSelect.append(el('option', { value: c.id }, c.title && c.title !== c.id ? `${c.title} (${c.id})` : c.id));
        }
        if (keep && [...layerSelect.options].some((o) => o.value === keep)) layerSelect.value = keep;
        return fillFields();
      })
      .catch(() => {});
  };
  if (layerSelect) layerSelect.addEventListener('change', () => fillFields());
  const ready = loadLayers();
  return {
    ready,
    refreshLayers: loadLayers,
    values() {
      const inputs = {};
      for (const [name, c] of controls) {
        const v = c.value();
        if (v !== undefined) inputs[name] = v;
      }
      return inputs;
    },
  };
}

// Small DOM helpers shared by the tabs: elements built as text (never HTML from the server),
// tables, forms and a status line per tab.

import { t } from './labels.js';

/** `el('button', {class: 'x', onclick: f, 'data-testid': 'y'}, 'text', child…)`. */
export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') e.addEventListener(k.slice(2), v);
    else if (k === 'class') e.className = v;
    else if (k in e && typeof v !== 'string') e[k] = v;
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

/** A table: `headers` are label keys; each row an array of cells (text or nodes), `rowAttrs(i)`. */
export function table(headers, rows, rowAttrs = () => ({})) {
  return el(
    'table',
    {},
    el('thead', {}, el('tr', {}, headers.map((h) => el('th', {}, t(h))))),
    el('tbody', {}, rows.map((r, i) => el('tr', rowAttrs(i), r.map((c) => el('td', {}, c))))),
  );
}

/** A labelled input. */
export function field(labelKey, input) {
  return el('label', { class: 'field' }, el('span', {}, t(labelKey)), input);
}

/** A line that says how the last action went (`role=status`, read by screen readers). */
export function statusLine(testid) {
  const s = el('p', { class: 'status', role: 'status', 'data-testid': testid });
  return {
    node: s,
    ok(text) {
      s.className = 'status ok';
      s.textContent = text;
    },
    fail(err) {
      s.className = 'status error';
      s.textContent = t('failed', { msg: err && err.message ? err.message : String(err) });
    },
    clear() {
      s.className = 'status';
      s.textContent = '';
    },
  };
}

export function section(titleKey, ...children) {
  return el('section', { class: 'card' }, el('h2', {}, t(titleKey)), ...children);
}

export function fmtBytes(n) {
  if (n === undefined || n === null) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i += 1;
  }
  return `${v.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

export function fmtTime(s) {
  if (!s) return '—';
  const d = new Date(s);
  if (Number.isNaN(d.getTime())) return s;
  return d.toLocaleString('zh-CN', { timeZone: 'Asia/Shanghai', hour12: false });
}

export function fmtNum(x, digits = 1) {
  return x === undefined || x === null ? '—' : Number(x).toFixed(digits);
}

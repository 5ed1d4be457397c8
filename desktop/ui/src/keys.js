// Keyboard shortcuts for the common actions (issue 16), and their help overlay (?). Views add
// their own with `shortcut(keys, textKey, run)`; the overlay lists every registered one in the
// current language. Keys typed into a text field stay there (except Esc, which leaves the
// field and cancels the active tool, and the registered Ctrl chords).
import { $, esc, emit, on } from './core.js';
import { t, lang, setLang } from './i18n.js';

/** Registered shortcuts: `{ keys: ['m', 'M'], label: 'M', text: 'i18n key', run(ev) }`. */
const shortcuts = [];

/** Registers a shortcut: `keys` as `KeyboardEvent.key` values (`Ctrl+p` for a Ctrl chord). */
export function shortcut(keys, text, run, label) {
  shortcuts.push({ keys: [].concat(keys), text, run, label: label || [].concat(keys)[0] });
}

function typing(el) {
  return el && (el.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(el.tagName));
}

function chord(ev) {
  const mod = ev.ctrlKey || ev.metaKey ? 'Ctrl+' : '';
  const key = ev.key.length === 1 ? ev.key.toLowerCase() : ev.key;
  return mod + key;
}

/** Opens the `n`-th tab (1-based) of the header. */
function openTab(n) {
  const b = document.querySelectorAll('header nav button')[n - 1];
  if (b) b.click();
}

/** Opens the map tab (the map tools' shortcuts act there). */
export function openMap() {
  const b = $('tab-map');
  if (b && !b.classList.contains('active')) b.click();
}

// ---------------------------------------------------------------------------------------------
// Help overlay

let help = null;

function renderHelp() {
  if (!help) return;
  const rows = shortcuts
    .map((s) => `<tr><td><kbd>${esc(s.label)}</kbd></td><td>${esc(t(s.text))}</td></tr>`)
    .join('');
  help.innerHTML = `<div class="keys-box" role="dialog" aria-label="${esc(t('keys_title'))}">
      <h2>${esc(t('keys_title'))}</h2>
      <table>${rows}</table>
      <button type="button" id="keys-close">${esc(t('close'))}</button>
    </div>`;
  $('keys-close').addEventListener('click', () => toggleHelp(false));
}

/** Shows (or hides, or toggles without an argument) the shortcut overlay. */
export function toggleHelp(show) {
  if (!help) {
    help = document.createElement('div');
    help.id = 'keys-help';
    help.dataset.testid = 'keys-help';
    help.hidden = true;
    help.addEventListener('click', (ev) => {
      if (ev.target === help) toggleHelp(false);
    });
    document.body.appendChild(help);
  }
  const next = show === undefined ? help.hidden : show;
  if (next) renderHelp();
  help.hidden = !next;
}

on('lang', () => renderHelp());

// ---------------------------------------------------------------------------------------------
// The shell's own shortcuts

shortcut(['1', '2', '3', '4', '5', '6'], 'keys_tabs', (ev) => openTab(Number(ev.key)), '1 – 6');
shortcut(['Ctrl+p'], 'keys_print', () => {
  const b = $('tab-print');
  if (b) b.click();
}, 'Ctrl+P');
shortcut(['Escape'], 'keys_cancel', () => {
  toggleHelp(false);
  emit('cancel');
}, 'Esc');
shortcut(['?'], 'keys_help', () => toggleHelp(), '?');
shortcut(['g'], 'keys_lang', () => setLang(lang() === 'en' ? 'zh' : 'en'), 'G');

document.addEventListener('keydown', (ev) => {
  if (document.getElementById('main')?.hidden) return; // the sign-in screen types freely
  const key = chord(ev);
  // In a text field only Esc (leave the field) and the Ctrl chords registered here (Ctrl+P)
  // act; every other key is the field's.
  if (typing(ev.target)) {
    if (key !== 'Escape' && !key.startsWith('Ctrl+')) return;
    if (key === 'Escape') ev.target.blur();
  }
  if (ev.altKey) return;
  const s = shortcuts.find((x) => x.keys.includes(key));
  if (!s) return;
  ev.preventDefault();
  s.run(ev);
});

/** What the end-to-end test reads: the registered keys. */
export const registered = () => shortcuts.map((s) => ({ label: s.label, text: t(s.text) }));

const keysBtn = $('keys-btn');
if (keysBtn) keysBtn.addEventListener('click', () => toggleHelp());

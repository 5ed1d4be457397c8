// Native file dialogs beside the typed paths (issue 16): a 选择… / Choose… button after each path
// field of import, export, print, the attribute table's and the statistics' exports. The button
// calls the official dialog plugin's commands (`plugin:dialog|open`, `plugin:dialog|save`)
// through `invoke` — no npm package — and puts the chosen path into the field, which stays
// editable and is what the views read (and the tests type). The capability grants only these two
// commands of the plugin. The views build their forms lazily, so the buttons are added when a
// field appears (a MutationObserver), once per field.
import { invoke } from './core.js';
import { t, addText } from './i18n.js';

addText({
  pick_file: ['选择…', 'Choose…'],
  pick_title_open: ['选择要导入的文件', 'Choose the file to import'],
  pick_title_save: ['保存为', 'Save as'],
  pick_gis: ['GIS 数据', 'GIS data'],
  pick_print: ['PDF 或 PNG', 'PDF or PNG'],
  pick_table: ['表格或图片', 'Tables or images'],
});

/** The path fields: `[id, mode, filter name key, extensions]`. */
export const PATH_FIELDS = [
  ['imp-path', 'open', 'pick_gis', ['geojson', 'json', 'gpkg', 'zip', 'csv', 'xlsx']],
  ['exp-path', 'save', 'pick_gis', ['geojson', 'gpkg', 'zip', 'csv']],
  ['ex-path', 'save', 'pick_gis', ['geojson', 'csv', 'gpkg']],
  ['print-path', 'save', 'pick_print', ['pdf', 'png']],
  ['stats-path', 'save', 'pick_table', ['xlsx', 'csv', 'png']],
];

/** Opens the native dialog for a field and fills it with the chosen path (nothing when cancelled). */
export async function choose(input, mode, filterKey, extensions) {
  const current = input.value.trim();
  const options = {
    title: t(mode === 'open' ? 'pick_title_open' : 'pick_title_save'),
    filters: [{ name: t(filterKey), extensions }],
    ...(current ? { defaultPath: current } : {}),
  };
  const picked = await invoke(mode === 'open' ? 'plugin:dialog|open' : 'plugin:dialog|save', { options });
  const path = Array.isArray(picked) ? picked[0] : picked;
  if (!path) return null;
  input.value = String(path);
  input.dispatchEvent(new Event('input', { bubbles: true }));
  input.dispatchEvent(new Event('change', { bubbles: true }));
  return input.value;
}

function attach() {
  for (const [id, mode, filterKey, extensions] of PATH_FIELDS) {
    const input = document.getElementById(id);
    if (!input || input.dataset.picker) continue;
    input.dataset.picker = mode;
    const b = document.createElement('button');
    b.type = 'button';
    b.className = 'pick-file';
    b.id = `${id}-pick`;
    b.dataset.testid = `${id}-pick`;
    b.dataset.i18n = 'pick_file';
    b.textContent = t('pick_file');
    b.addEventListener('click', async (ev) => {
      ev.preventDefault();
      b.disabled = true;
      try {
        await choose(input, mode, filterKey, extensions);
      } catch (e) {
        input.title = String(e);
      } finally {
        b.disabled = false;
      }
    });
    input.insertAdjacentElement('afterend', b);
  }
}

new MutationObserver(attach).observe(document.body, { childList: true, subtree: true });
attach();

// Drives the mobile app (its liveview: the app's own views rendered by the app process) in
// Debian's headless Chromium like a user: sign in, download an offline area, add a manhole with
// the form and a photo, sync, then find the inspector's tasks on the map. Saves a screenshot of each screen; prints one JSON line with what
// it saw (the Rust test then checks the server through its OGC API).
// Usage: NODE_PATH=…/node_modules node test/e2e.mjs APP_URL SERVER_URL OUT_DIR
import { createRequire } from 'node:module';
import { mkdirSync } from 'node:fs';
import path from 'node:path';

const require = createRequire(path.join(process.env.NODE_PATH || '.', 'x.js'));
const { chromium } = require('playwright-core');
const [appUrl, serverUrl, outDir] = process.argv.slice(2);
mkdirSync(outDir, { recursive: true });
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
    '--use-angle=swiftshader', '--enable-unsafe-swiftshader'],
});
const seen = {};
const page = await browser.newPage({ viewport: { width: 412, height: 915 }, deviceScaleFactor: 1 });
page.on('console', (m) => { if (m.type() === 'error') console.error('console:', m.text()); });
const T = 90_000;
const id = (t) => `[data-testid="${t}"]`;
const shot = (name) => page.screenshot({ path: path.join(outDir, `${name}.png`) });
const message = async (re) => {
  await page.waitForFunction((r) => {
    const el = document.querySelector('[data-testid="message"]');
    return el && new RegExp(r).test(el.textContent);
  }, re.source, { timeout: T });
  return page.textContent(id('message'));
};
try {
  await page.goto(appUrl);
  await page.waitForSelector(id('login'), { timeout: T });
  await page.fill(id('server'), serverUrl);
  await page.fill(id('username'), 'zhang');
  await page.fill(id('password'), '巡查员密码123');
  await shot('login');
  await page.click(id('login'));
  await page.waitForSelector(id('tab-tab_areas'), { timeout: T });

  // Offline area: the district by name, only the manhole layer, estimate, download.
  await page.click(id('tab-tab_areas'));
  await page.waitForSelector(id('layer-manhole'), { timeout: T });
  await page.fill(id('area-search'), '洪山');
  await page.waitForSelector(`${id('area-suggestions')} div`, { timeout: T });
  await page.click(`${id('area-suggestions')} div:has-text("420111")`);
  for (const box of await page.$$('input[data-testid^="layer-"]')) {
    const name = await box.getAttribute('data-testid');
    if ((await box.isChecked()) !== (name === 'layer-manhole')) await box.click();
  }
  await page.click(id('estimate'));
  await page.waitForSelector(id('estimate-result'), { timeout: T });
  seen.estimate = await page.textContent(id('estimate-result'));
  await page.click(id('download'));
  await page.waitForSelector('[data-testid^="replica-"]', { timeout: T });
  seen.download_message = await message(/要素/);
  await shot('areas');

  // The map of the new area: rendered by MapLibre from the loopback tiles.
  await page.click(id('tab-tab_map'));
  await page.waitForSelector(id('map-ready'), { timeout: T });
  seen.map_ready_ms = await page.evaluate(() => {
    const t = document.querySelector('[data-testid="map-ready"]').textContent;
    return Number((t.match(/([0-9.]+) ms/) || [])[1]);
  });
  await page.waitForTimeout(1500);
  seen.rendered = await page.evaluate(() => window.shikongMap.map.queryRenderedFeatures().filter((f) => f.source === 'replica').length);
  await page.click(id('measure-line'));
  const box = await page.locator('#map').boundingBox();
  await page.mouse.click(box.x + 100, box.y + 200);
  await page.mouse.click(box.x + 300, box.y + 200);
  await page.waitForSelector(id('measurement'), { timeout: T });
  seen.measurement = await page.textContent(id('measurement'));
  await shot('map');

  // Collect: GPS position, the form, a photo, save.
  await page.click(id('tab-tab_collect'));
  await page.waitForSelector(id('gps-point'), { timeout: T });
  await page.click(id('gps-point'));
  await page.waitForFunction(() => /1 点/.test(document.querySelector('[data-testid="vertices"]').textContent), null, { timeout: T });
  await page.fill(id('field-名称'), '浏览器采集的井盖');
  await page.selectOption(id('field-状态'), '2');
  await page.click(id('take-photo'));
  await page.waitForSelector(id('photos'), { timeout: T });
  await page.click(id('save'));
  const saved = await message(/已保存/);
  seen.saved_id = (saved.match(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/) || [])[0];
  await shot('collect');

  // Sync: one tap.
  await page.click(id('tab-tab_sync'));
  await page.waitForSelector(id('sync-now'), { timeout: T });
  await page.click(id('sync-now'));
  seen.sync_message = await message(/上传 \d+/);
  await page.waitForTimeout(300);
  await shot('sync');

  // The new feature on the map: tap it, read its history, edit it.
  await page.click(id('tab-tab_map'));
  await page.waitForTimeout(1500);
  const m = await page.locator('#map').boundingBox();
  // Where MapLibre drew the saved feature (found by its id among the rendered features).
  // (The inspector stood at the GPS fix; the map may have moved since.)
  await page.evaluate(() => new Promise((ok) => {
    const map = window.shikongMap.map;
    map.jumpTo({ center: [114.3437, 30.5043], zoom: 17 });
    map.once('idle', ok);
  }));
  const at = await page.evaluate((fid) => {
    const map = window.shikongMap.map;
    const all = map.queryRenderedFeatures().filter((x) => x.source === 'replica');
    const f = all.find((x) => x.properties.id === fid);
    return f ? map.project(f.geometry.coordinates) : { missing: all.map((x) => [x.properties.id, x.properties._local]) };
  }, seen.saved_id);
  if (at.missing) throw new Error(`the saved feature is not drawn on the map; drawn: ${JSON.stringify(at.missing)}`);
  await page.mouse.click(m.x + at.x, m.y + at.y);
  await page.waitForSelector(id('feature-info'), { timeout: T });
  seen.tapped = await page.textContent(id('feature-info'));
  await page.click(id('history'));
  await page.waitForSelector(id('history-list'), { timeout: T });
  seen.history = await page.textContent(id('history-list'));
  await page.click(id('edit'));
  await page.waitForSelector(id('edit-form'), { timeout: T });
  await page.selectOption(`${id('edit-form')} ${id('field-状态')}`, '3');
  await page.click(id('edit-save'));
  seen.edit_message = await message(/已保存/);
  await shot('feature');

  // The inspector's tasks on the map (issue 15): a marker per task, labelled with its case number;
  // 在地图上查看 in the 任务 list centres the map on one; tapping a marker opens its task.
  await page.click(id('tab-tab_tasks'));
  await page.waitForSelector(id('task-show-on-map'), { timeout: T });
  seen.task_list = await page.$$eval(id('task-no'), (els) => els.map((e) => e.textContent));
  await page.locator(id('task-show-on-map')).first().click();
  await page.waitForSelector(id('task-legend'), { timeout: T });
  await page.waitForFunction(() => document.querySelector('.sk-task-focus'), null, { timeout: T });
  await page.evaluate(() => new Promise((ok) => {
    const map = window.shikongMap.map;
    if (map.loaded()) ok(); else map.once('idle', ok);
  }));
  seen.task_markers = await page.$$eval(id('task-marker'), (els) => els.map((e) => ({
    case: e.dataset.case, label: e.textContent, urgency: e.dataset.urgency, cls: e.className,
  })));
  seen.centred = await page.evaluate(() => {
    const c = window.shikongMap.map.getCenter();
    const f = document.querySelector('.sk-task-focus');
    return { lon: c.lng, lat: c.lat, zoom: window.shikongMap.map.getZoom(), focus: f && f.dataset.case };
  });
  seen.task_legend = await page.textContent(id('task-legend'));
  await shot('tasks-map');
  const other = seen.task_markers.find((m) => m.case !== seen.centred.focus);
  if (!other) throw new Error(`no second task marker: ${JSON.stringify(seen.task_markers)}`);
  await page.click(`${id('task-marker')}[data-case="${other.case}"]`);
  await page.waitForSelector(id('task-page'), { timeout: T });
  seen.task_opened = await page.textContent(id('task-page'));
  console.log(JSON.stringify(seen));
} catch (e) {
  await shot('failure').catch(() => {});
  console.log(JSON.stringify({ ...seen, error: String(e) }));
  console.error(await page.content());
  process.exitCode = 1;
} finally {
  await browser.close();
}

// Drives the shikong web map in Debian's headless Chromium (playwright-core, no downloaded
// browser): loads /map, waits for the map to render, checks features were rendered through
// MapLibre's rendered-features query, switches date, compares two dates side by side, and saves
// screenshots. Prints one JSON object with what it saw; the Rust test asserts on it.
// Usage: node test/browser.mjs BASE_URL OUT_DIR
import { launch, report } from './launch.mjs';
import { mkdirSync } from 'node:fs';

const [base, outDir] = process.argv.slice(2);
if (!base || !outDir) {
  console.error('usage: node test/browser.mjs BASE_URL OUT_DIR');
  process.exit(2);
}
mkdirSync(outDir, { recursive: true });
const browser = await launch();
const result = { logs: [] };

/** The acquisition date of the imagery tiles the left map shows now (asks the server the same
 *  URL the map's raster source uses, for a tile at the map's centre). */
async function acquisition(page) {
  return page.evaluate(async () => {
    const m = window.shikong.maps[0];
    const src = m.getSource('raster-hillshade');
    if (!src || !src.tiles) return null;
    const z = Math.min(Math.floor(m.getZoom()), src.maxzoom);
    const c = m.getCenter();
    const n = 2 ** z;
    const x = Math.floor(((c.lng + 180) / 360) * n);
    const lat = (c.lat * Math.PI) / 180;
    const y = Math.floor(((1 - Math.asinh(Math.tan(lat)) / Math.PI) / 2) * n);
    const url = src.tiles[0].replace('{z}', z).replace('{x}', x).replace('{y}', y);
    const r = await fetch(url);
    return r.headers.get('x-acquisition-date');
  });
}
const timeout = 60_000;
await report(browser, result, async () => {
  const page = await browser.newPage({ viewport: { width: 1200, height: 800 } });
  page.on('console', (m) => result.logs.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => result.logs.push(`pageerror: ${e}`));
  await page.goto(`${base}/map?center=114.359,30.519&zoom=14`);
  await page.waitForFunction(() => window.shikong || window.shikongError, null, { timeout });
  const err = await page.evaluate(() => window.shikongError || null);
  if (err) throw new Error(`page failed: ${err}`);
  result.webgl = await page.evaluate(() => {
    const gl = document.createElement('canvas').getContext('webgl2');
    return gl ? gl.getParameter(gl.RENDERER) : null;
  });

  const count = (which) => page.evaluate((w) => window.shikong.rendered(w, ['manhole-point']).length, which);
  // Now: the grid's points render.
  await page.waitForFunction(() => window.shikong.rendered(0, ['manhole-point']).length > 0, null, { timeout });
  await page.evaluate(() => window.shikong.idle(0));
  result.now = await count(0);
  result.sample = await page.evaluate(() => window.shikong.rendered(0, ['manhole-point'])[0].properties);
  await page.screenshot({ path: `${outDir}/map-now.png` });

  // A date before the layer existed: no points (and the older imagery).
  await page.evaluate(() => window.shikong.setDate(0, '2024-01-01'));
  await page.waitForFunction(() => window.shikong.rendered(0, ['manhole-point']).length === 0, null, { timeout });
  await page.evaluate(() => window.shikong.idle(0));
  result.past = await count(0);
  result.pastUrl = await page.evaluate(() => window.shikong.maps[0].getSource('manhole').url);
  result.rasterPast = await acquisition(page);
  await page.screenshot({ path: `${outDir}/map-2024-01-01.png` });

  // Earlier still: the 2019 imagery.
  await page.evaluate(() => window.shikong.setDate(0, '2020-06-01'));
  await page.waitForFunction(() => window.shikong.maps[0].getSource('raster-hillshade')?.url?.includes('2020-06-01'), null, { timeout });
  await page.evaluate(() => window.shikong.idle(0));
  result.raster2020 = await acquisition(page);
  await page.screenshot({ path: `${outDir}/map-2020-06-01.png` });
  await page.evaluate(() => window.shikong.setDate(0, '2024-01-01'));
  await page.evaluate(() => window.shikong.idle(0));

  // Side by side: left 2024-01-01, right now.
  await page.evaluate(() => window.shikong.compare(true));
  await page.waitForFunction(() => window.shikong.maps[1] && window.shikong.rendered(1, ['manhole-point']).length > 0, null, { timeout });
  await page.evaluate(() => window.shikong.idle(1));
  result.compareLeft = await count(0);
  result.compareRight = await count(1);
  await page.screenshot({ path: `${outDir}/map-compare.png` });

  // Back to now on the left.
  await page.evaluate(() => window.shikong.setDate(0, ''));
  await page.waitForFunction(() => window.shikong.rendered(0, ['manhole-point']).length > 0, null, { timeout });
  result.back = await count(0);
});

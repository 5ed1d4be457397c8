// Debian's Chromium, headless, with WebGL on SwiftShader (no GPU, no downloaded browser): shared
// by the browser drivers of the web map (browser.mjs, demo.mjs).
import { chromium } from 'playwright-core';

export function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-quic',
      '--no-first-run',
      '--disable-component-update',
      '--disable-sync',
      // WebGL without a GPU: ANGLE on SwiftShader (software Vulkan/GL).
      '--use-angle=swiftshader',
      '--enable-unsafe-swiftshader',
    ],
  });
}

// Runs `body` (which fills `result`), then closes the browser and prints `result` as one JSON line
// with `ok` (and `error` when `body` threw): the line the Rust test reads.
export async function report(browser, result, body) {
  try {
    await body();
    result.ok = true;
  } catch (e) {
    result.ok = false;
    result.error = String(e && e.stack ? e.stack : e);
  } finally {
    await browser.close();
  }
  console.log(JSON.stringify(result));
}

// Drives the admin console (/admin, issue 20) in Debian's headless Chromium (playwright-core):
// an office user signs in and sees only 需要管理员权限; the administrator signs in, approves a
// pending registration, registers an outside service and watches its health go 在线 → 下线 → 在线
// while the Rust test stops and restarts that service (a handshake over stdin/stdout: this
// script prints {"step": "stop"|"start"} and waits for a line), creates an API key with a quota,
// sets a layer rule, creates an enrolment QR code, reads the audit log, sets a memory threshold
// that raises an alert, and switches to English. Screenshots go to OUT_DIR. The last stdout line
// is one JSON object with what it saw; tests/admin_browser.rs asserts on it.
// Usage: node test/admin.mjs BASE_URL OUT_DIR ADMIN OFFICE PASSWORD PENDING_USER SERVICE_URL
import { createInterface } from 'node:readline';
import { mkdirSync } from 'node:fs';
import { launch, report } from './launch.mjs';

const [base, outDir, admin, office, password, pending, serviceUrl] = process.argv.slice(2);
if (!serviceUrl) {
  console.error('usage: node test/admin.mjs BASE_URL OUT_DIR ADMIN OFFICE PASSWORD PENDING_USER SERVICE_URL');
  process.exit(2);
}
mkdirSync(outDir, { recursive: true });
const rl = createInterface({ input: process.stdin });
const lines = rl[Symbol.asyncIterator]();
/** Asks the Rust test to do `step` and waits until it says it did. */
async function handshake(step) {
  console.log(JSON.stringify({ step }));
  const { value, done } = await lines.next();
  if (done) throw new Error(`no answer to ${step}`);
  return value;
}

const browser = await launch();
const result = { logs: [], states: [] };
const timeout = 60_000;
const SERVICE = '测试服务';

await report(browser, result, async () => {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.on('console', (m) => result.logs.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => result.logs.push(`pageerror: ${e}`));
  // Development only: serve the freshly built bundle instead of the one in the binary.
  if (process.env.SK_ADMIN_JS) await page.route('**/admin/assets/admin.js', (r) => r.fulfill({ path: process.env.SK_ADMIN_JS }));
  const requests = [];
  page.on('request', (r) => requests.push(new URL(r.url()).pathname));
  const shot = (name) => page.screenshot({ path: `${outDir}/${name}`, fullPage: true });
  const signIn = async (user) => {
    await page.fill('#username', user);
    await page.fill('#password', password);
    await page.click('#signin button[type=submit]');
  };
  const view = () => page.evaluate(() => document.body.dataset.view);

  await page.goto(`${base}/admin`);
  await page.waitForFunction(() => document.body.dataset.view === 'signin', null, { timeout });
  result.anonymous = { view: await view(), lang: await page.evaluate(() => document.documentElement.lang) };

  // An office user: the refusal and no data.
  await signIn(office);
  await page.waitForFunction(() => document.body.dataset.view === 'forbidden', null, { timeout });
  result.office = await page.evaluate(() => ({
    view: document.body.dataset.view,
    heading: document.querySelector('#forbidden h2').textContent,
    consoleHidden: document.getElementById('console').hidden,
    tables: document.querySelectorAll('table').length,
  }));
  result.office.adminCalls = requests.filter((p) => p.startsWith('/admin/') && !p.startsWith('/admin/assets/'));
  await shot('admin-forbidden.png');
  await page.click('#signout');
  await page.waitForFunction(() => document.body.dataset.view === 'signin', null, { timeout });

  // The administrator: users and approvals.
  await signIn(admin);
  await page.waitForFunction(() => document.body.dataset.view === 'console', null, { timeout });
  const statusSel = `[data-testid="status-${pending}"]`;
  await page.waitForSelector(statusSel, { timeout });
  result.pendingBefore = await page.textContent(statusSel);
  await page.click(`[data-testid="approve-${pending}"]`);
  await page.waitForFunction((sel) => document.querySelector(sel)?.textContent === '正常', statusSel, { timeout });
  result.pendingAfter = await page.textContent(statusSel);
  result.usersMessage = await page.textContent('[data-testid=users-status]');
  await shot('admin-users.png');

  // Services and their health, polled live.
  await page.click('[data-testid=tab-services]');
  await page.fill('[data-testid=service-url]', serviceUrl);
  await page.selectOption('[data-testid=service-type]', 'ogcapi-features');
  await page.fill('[data-testid=service-title]', SERVICE);
  await page.click('[data-testid=service-register]');
  const badge = `tr[data-title="${SERVICE}"] [data-state]`;
  await page.waitForSelector(badge, { timeout });
  result.serviceId = await page.getAttribute(`tr[data-title="${SERVICE}"]`, 'data-service');
  const waitState = async (state) => {
    await page.waitForFunction(([sel, s]) => document.querySelector(sel)?.dataset.state === s, [badge, state], { timeout });
    const text = await page.textContent(badge);
    result.states.push({ state, text });
  };
  await waitState('up');
  await shot('admin-services-up.png');
  await handshake('stop');
  await waitState('down');
  result.downError = await page.textContent(`tr[data-title="${SERVICE}"] td:nth-child(6)`);
  await shot('admin-services-down.png');
  await handshake('start');
  await waitState('up');

  // Keys and quotas.
  await page.click('[data-testid=tab-keys]');
  await page.waitForSelector(`[data-testid=key-services] input[data-title="${SERVICE}"]`, { timeout });
  await page.fill('[data-testid=key-name]', '测试应用');
  await page.fill('[data-testid=key-quota]', '100');
  await page.check(`[data-testid=key-services] input[data-title="${SERVICE}"]`);
  await page.click('[data-testid=key-create]');
  await page.waitForSelector('[data-testid=key-secret], [data-testid=keys-status].error', { timeout });
  result.keySecret = await page.evaluate(() => document.querySelector('[data-testid=key-secret]')?.textContent || null);
  result.keyError = await page.textContent('[data-testid=keys-status]');
  await page.waitForSelector('tr[data-key="测试应用"]', { timeout }).catch(() => {});
  result.keyRow = await page.evaluate(() => [...(document.querySelector('tr[data-key="测试应用"]')?.children || [])].map((td) => td.textContent));
  await shot('admin-keys.png');

  // Catalogue harvesting: the server's own CSW as a source, harvested now.
  await page.click('[data-testid=tab-harvest]');
  await page.fill('[data-testid=harvest-url]', `${base}/csw`);
  await page.selectOption('[data-testid=harvest-type]', 'csw');
  await page.fill('[data-testid=harvest-title]', '本机目录');
  await page.click('[data-testid=harvest-add]');
  await page.waitForSelector('tr[data-title="本机目录"] [data-testid^=harvest-run-]', { timeout });
  await page.click('tr[data-title="本机目录"] [data-testid^=harvest-run-]');
  await page.waitForFunction(() => Number(document.querySelector('tr[data-title="本机目录"] [data-testid^=records-]')?.textContent) > 0
    || document.querySelector('[data-testid=harvest-status].error'), null, { timeout });
  result.harvest = await page.evaluate(() => ({
    records: Number(document.querySelector('tr[data-title="本机目录"] [data-testid^=records-]').textContent),
    run: document.querySelector('tr[data-title="本机目录"] [data-testid^=run-]').textContent,
    status: document.querySelector('[data-testid=harvest-status]').textContent,
  }));
  await shot('admin-harvest.png');

  // Layers: the schema and a rule.
  await page.click('[data-testid=tab-layers]');
  await page.click('li[data-layer=manhole] button');
  await page.waitForSelector('[data-testid=layer-detail] table', { timeout });
  await page.fill('[data-testid=layer-detail] form input >> nth=0', 'role:citizen');
  await page.fill('[data-testid=layer-detail] form input >> nth=1', 'read');
  await page.click('[data-testid=layer-detail] form button[type=submit]');
  await page.waitForFunction(() => document.querySelector('[data-testid=rules]')?.textContent.includes('role:citizen')
    || document.querySelector('[data-testid=layers-status].error'), null, { timeout });
  result.layer = await page.evaluate(() => ({
    status: document.querySelector('[data-testid=layers-status]').textContent,
    fields: [...document.querySelectorAll('[data-testid=layer-detail] table')[0].querySelectorAll('tbody tr td:first-child')].map((td) => td.textContent),
    rules: document.querySelector('[data-testid=rules]').textContent,
  }));
  await shot('admin-layers.png');
  // …and removed again (the page confirms first).
  page.once('dialog', (d) => d.accept());
  await page.click('[data-testid=rules] button');
  await page.waitForFunction(() => !document.querySelector('[data-testid=rules] table'), null, { timeout });
  result.layer.rulesAfterDelete = await page.textContent('[data-testid=rules]');

  // Devices: an enrolment code and its QR.
  await page.click('[data-testid=tab-devices]');
  await page.fill('[data-testid=enrol-user]', pending);
  await page.click('[data-testid=enrol-create]');
  await page.waitForSelector('[data-testid=enrol-qr]', { timeout });
  await page.waitForFunction(() => document.querySelector('[data-testid=enrol-qr]').naturalWidth > 0, null, { timeout });
  result.enrolment = await page.evaluate(() => ({
    code: document.querySelector('[data-testid=enrol-code]').textContent,
    link: document.querySelector('[data-testid=enrol-qr]').alt,
    qrWidth: document.querySelector('[data-testid=enrol-qr]').naturalWidth,
  }));
  await shot('admin-devices.png');

  // The audit log filtered by action, and the usage statistics.
  await page.click('[data-testid=tab-audit]');
  await page.fill('[data-testid=audit-action]', 'user.approve');
  await page.click('[data-testid=audit-search]');
  // The tab's first, unfiltered page may still be on its way: wait for the filtered answer.
  await page.waitForFunction(() => {
    const rows = [...document.querySelectorAll('[data-testid=audit-list] tbody tr')];
    return rows.length > 0 && rows.every((tr) => tr.dataset.action === 'user.approve');
  }, null, { timeout });
  result.audit = await page.evaluate(() => [...document.querySelectorAll('[data-testid=audit-list] tbody tr')].map((tr) => ({
    action: tr.dataset.action,
    cells: [...tr.children].map((td) => td.textContent),
  })));
  await page.waitForFunction(() => document.querySelector('[data-testid=usage] table'), null, { timeout });
  result.usageRoutes = await page.evaluate(() => [...document.querySelectorAll('[data-testid=usage] tbody tr td:first-child')].map((td) => td.textContent));
  await shot('admin-audit.png');

  // System resources: a memory threshold of 1 MiB is crossed at once.
  await page.click('[data-testid=tab-system]');
  await page.waitForSelector('[data-testid=sys-memory]', { timeout });
  await page.fill('[data-testid=th-memory]', '1');
  await page.click('[data-testid=th-save]');
  await page.waitForSelector('[data-testid=system-alerts] li[data-metric=memory]', { timeout });
  result.system = await page.evaluate(() => ({
    alert: document.querySelector('[data-testid=system-alerts] li[data-metric=memory]').textContent,
    memory: document.querySelector('[data-testid=sys-memory]').textContent,
    memoryAlerting: document.querySelector('[data-testid=sys-memory]').classList.contains('alerting'),
    disk: document.querySelector('[data-testid=sys-disk]').textContent,
  }));
  await shot('admin-system.png');

  // English.
  await page.click('[data-testid=lang]');
  await page.waitForFunction(() => document.querySelector('[data-testid=tab-system]').textContent === 'System resources', null, { timeout });
  result.english = await page.evaluate(() => ({
    tabs: [...document.querySelectorAll('#tabs button')].map((b) => b.textContent),
    lang: document.documentElement.lang,
    alert: document.querySelector('[data-testid=system-alerts] li')?.textContent,
  }));
  await shot('admin-system-en.png');
});
rl.close();

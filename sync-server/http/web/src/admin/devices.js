// 设备与注册: the devices (GET /devices) and one-time enrolment codes with their QR code
// (POST /auth/enrolments answers the code, the shikong://enrol link and its SVG).

import { latestReader, post } from './api.js';
import { t } from './labels.js';
import { el, field, fmtTime, section, statusLine, table } from './ui.js';

export function render(panel) {
  const status = statusLine('devices-status');
  const list = el('div', { 'data-testid': 'device-list' }, t('loading'));
  const out = el('div', { class: 'enrolment', 'data-testid': 'enrolment' });

  const read = latestReader();
  async function load() {
    try {
      const r = await read('/devices');
      if (!r) return;
      const { devices } = r;
      list.replaceChildren(table(
        ['device', 'user', 'deviceName', 'platform', 'created', 'revoked'],
        devices.map((d) => [el('code', {}, d.device), d.username, d.name, d.platform, fmtTime(d.created_at), d.revoked ? t('yes') : t('no')]),
      ));
    } catch (e) {
      list.textContent = '';
      status.fail(e);
    }
  }

  const user = el('input', { 'data-testid': 'enrol-user' });
  const form = el('form', { class: 'row', onsubmit: async (ev) => {
    ev.preventDefault();
    try {
      const who = user.value.trim();
      const e = await post('/auth/enrolments', who ? { username: who } : {});
      // The SVG is the server's own drawing; shown as an image, never parsed into the page.
      const img = el('img', { alt: e.qr.payload, 'data-testid': 'enrol-qr', src: `data:image/svg+xml;charset=utf-8,${encodeURIComponent(e.qr.svg)}` });
      out.replaceChildren(img, el('dl', {},
        el('dt', {}, t('user')), el('dd', {}, e.username),
        el('dt', {}, t('code')), el('dd', {}, el('code', { 'data-testid': 'enrol-code' }, e.code)),
        el('dt', {}, t('expires')), el('dd', {}, fmtTime(e.expires_at)),
      ), el('p', {}, t('scanHint')), el('p', {}, el('code', {}, e.qr.payload)));
      status.clear();
    } catch (e) {
      status.fail(e);
    }
  } }, field('enrolFor', user), el('button', { type: 'submit', 'data-testid': 'enrol-create' }, t('createCode')));

  panel.replaceChildren(
    section('devices', el('button', { type: 'button', onclick: load }, t('refresh')), status.node, list),
    section('enrolment', form, out),
  );
  load();
}

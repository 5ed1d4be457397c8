// The console's one way to the server: JSON with the tab's bearer token (sessionStorage, the
// same keys as /map, never a URL or cookie). Errors carry the problem+json answer.

export const TOKEN_KEY = 'shikong.token';
export const USER_KEY = 'shikong.user';

export function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function forget() {
  sessionStorage.removeItem(TOKEN_KEY);
  sessionStorage.removeItem(USER_KEY);
}

export class ApiError extends Error {
  constructor(status, body) {
    const b = body && typeof body === 'object' ? body : {};
    const text = b.detail || b.title || (typeof body === 'string' && body) || '';
    super(`HTTP ${status}${text ? ` · ${text}` : ''}`);
    this.status = status;
    this.body = b;
    this.field = b.field || b.parameter || null;
  }
}

async function call(method, path, body, accept = 'application/json') {
  const headers = { Accept: accept };
  const tk = token();
  if (tk) headers.Authorization = `Bearer ${tk}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const r = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  let data = text;
  if (text && (r.headers.get('content-type') || '').includes('json')) {
    try {
      data = JSON.parse(text);
    } catch {
      data = text;
    }
  }
  if (!r.ok) throw new ApiError(r.status, data);
  return data;
}

export const get = (p) => call('GET', p);
export const post = (p, b) => call('POST', p, b === undefined ? {} : b);
export const put = (p, b) => call('PUT', p, b);
export const del = (p) => call('DELETE', p);
export const getText = (p) => call('GET', p, undefined, 'text/plain');

/**
 * A GET whose answer counts only while it is the newest one asked through this reader: a list
 * read at a tab's opening must not overwrite a filtered or post-change read that came back
 * first. A superseded call resolves to `undefined` (its error too), so callers just return.
 */
export function latestReader() {
  let newest = 0;
  return async (p) => {
    const mine = ++newest;
    try {
      const v = await get(p);
      return mine === newest ? v : undefined;
    } catch (e) {
      if (mine !== newest) return undefined;
      throw e;
    }
  };
}

/** POST /auth/login: keeps the token for this tab; the user (name, role). */
export async function signIn(username, password) {
  const r = await fetch('/auth/login', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
    body: JSON.stringify({ username, password }),
  });
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new ApiError(r.status, body);
  sessionStorage.setItem(TOKEN_KEY, body.token);
  sessionStorage.setItem(USER_KEY, JSON.stringify(body.user || { username }));
  return body.user;
}

export async function signOut() {
  if (token()) await post('/auth/logout').catch(() => {});
  forget();
}

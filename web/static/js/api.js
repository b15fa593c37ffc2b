// The client of the Aghali HTTP API (docs/api.md): same-origin JSON with the session cookie, the
// session's CSRF token on every request that changes something, and RFC 9457 problem+json errors
// turned into ApiError.

const BASE = '/api/v1';
// Weak mobile links: give up after this long and let the caller retry, rather than hang.
const TIMEOUT_MS = 20000;

export class ApiError extends Error {
  // status is the HTTP status, or 0 when the server could not be reached (offline, timeout).
  constructor(status, message, { title = '', detail = '', retryAfter = 0 } = {}) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.title = title;
    this.detail = detail;
    this.retryAfter = retryAfter;
  }
  get offline() { return this.status === 0; }
}

export class Api {
  // onUnauthorized is called when a request other than the session check gets 401 (the session
  // ended on the server).
  constructor({ onUnauthorized = () => {} } = {}) {
    this.csrfToken = '';
    this.onUnauthorized = onUnauthorized;
  }

  get(path) { return this.request('GET', path); }
  post(path, body) { return this.request('POST', path, body); }

  async request(method, path, body, { quiet401 = false } = {}) {
    const headers = { Accept: 'application/json' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (method !== 'GET' && method !== 'HEAD' && this.csrfToken) headers['X-CSRF-Token'] = this.csrfToken;
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), TIMEOUT_MS);
    let res;
    try {
      res = await fetch(BASE + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        credentials: 'same-origin',
        cache: 'no-store',
        signal: abort.signal,
      });
    } catch (err) {
      throw new ApiError(0, err && err.name === 'AbortError' ? 'timeout' : 'network');
    } finally {
      clearTimeout(timer);
    }
    if (res.status === 401 && !quiet401) this.onUnauthorized();
    if (res.ok) {
      if (res.status === 204) return null;
      const type = res.headers.get('Content-Type') || '';
      return type.includes('json') ? res.json() : null;
    }
    throw await problem(res);
  }

  // Session calls: 401 here is an answer ("not signed in"), not an expiry.
  session() { return this.request('GET', '/auth/session', undefined, { quiet401: true }); }
  login(email, password) { return this.request('POST', '/auth/login', { email, password }, { quiet401: true }); }
  logout() { return this.request('POST', '/auth/logout', undefined, { quiet401: true }); }
}

async function problem(res) {
  let p = {};
  try {
    const type = res.headers.get('Content-Type') || '';
    if (type.includes('json')) p = await res.json();
  } catch { /* a body that is not JSON: keep the status alone */ }
  const retryAfter = Number.parseInt(res.headers.get('Retry-After') || '', 10) || 0;
  const detail = typeof p.detail === 'string' ? p.detail : '';
  const title = typeof p.title === 'string' ? p.title : '';
  return new ApiError(res.status, detail || title || `HTTP ${res.status}`, { title, detail, retryAfter });
}

// errorMessage is what to show a person for err: the server's problem detail when it gave one.
// t is the translation function (passed in so this module stays free of UI state).
export function errorMessage(err, t) {
  if (!(err instanceof ApiError)) return String((err && err.message) || err);
  if (err.offline) return t('error.network');
  if (err.detail) return err.detail;
  if (err.status === 403) return t('error.forbidden');
  return err.title || t('error.generic', { status: err.status });
}

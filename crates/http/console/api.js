// The console's only way to the server: the public REST API, with the session cookie
// (HttpOnly, set by /auth/login) and same-origin requests, which carry the Origin header the
// server's CSRF rule checks (SPEC §6).

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || `The server answered ${status}.`);
    this.status = status;
    this.code = body && body.error;
    this.fields = (body && body.fields) || null;
  }
}

async function send(method, path, body) {
  const headers = { Accept: 'application/json' };
  const init = { method, credentials: 'same-origin', headers };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  return fetch(path, init);
}

async function parse(res) {
  if (res.status === 204) return null;
  const text = await res.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = { message: text };
  }
  if (!res.ok) throw new ApiError(res.status, data);
  return data;
}

/** Calls the API; on a 401 tries one refresh of the session, then the call again. */
export async function api(method, path, body) {
  let res = await send(method, path, body);
  const mayRefresh = !path.startsWith('/auth/login') && !path.startsWith('/auth/refresh');
  if (res.status === 401 && mayRefresh) {
    const refreshed = await send('POST', '/auth/refresh');
    if (refreshed.ok) res = await send(method, path, body);
  }
  return parse(res);
}

export const get = (path) => api('GET', path);
export const post = (path, body = {}) => api('POST', path, body);
export const put = (path, body = {}) => api('PUT', path, body);
export const patch = (path, body = {}) => api('PATCH', path, body);
export const del = (path) => api('DELETE', path);

/** Every item of a paged list (following next_cursor, at most `pages` pages). */
export async function all(path, pages = 10) {
  const items = [];
  let cursor = null;
  for (let i = 0; i < pages; i += 1) {
    const sep = path.includes('?') ? '&' : '?';
    const url = `${path}${sep}limit=200${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
    const page = await get(url);
    items.push(...page.items);
    if (!page.next_cursor) break;
    cursor = page.next_cursor;
  }
  return items;
}

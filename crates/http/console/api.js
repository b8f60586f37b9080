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

// The workspace this tab shows (an org id or 'personal'), sent with every request as the
// workspace precondition (SPEC §4 v2): if another tab switched the session, or the membership
// is gone, the server refuses with 409 workspace_changed instead of acting elsewhere.
let shownWorkspace = null;
// Called when the server says the workspace changed (409) or the session ended (401).
const listeners = { workspaceChanged: null, signedOut: null };

/** Sets the workspace this tab shows (from /auth/me: an org id, or null for Personal). */
export function showWorkspace(orgId) {
  shownWorkspace = orgId || 'personal';
}

/** Sends no precondition until the next showWorkspace (while re-reading /auth/me). */
export function forgetWorkspace() {
  shownWorkspace = null;
}

/** What to do when the session's workspace changed under this tab, or the session ended. */
export function onSessionEvents({ workspaceChanged, signedOut }) {
  listeners.workspaceChanged = workspaceChanged;
  listeners.signedOut = signedOut;
}

async function send(method, path, body) {
  const headers = { Accept: 'application/json' };
  if (shownWorkspace) headers['X-Inventiv-Workspace'] = shownWorkspace;
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
    else if (listeners.signedOut) listeners.signedOut();
  }
  try {
    return await parse(res);
  } catch (err) {
    if (err instanceof ApiError && err.code === 'workspace_changed' && listeners.workspaceChanged) {
      listeners.workspaceChanged(err);
    }
    throw err;
  }
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

/**
 * POSTs `body` to a route answering server-sent events (OpenAI chat chunks) and calls
 * `onChunk` with each parsed event as it arrives, until `[DONE]`. An error answer (JSON, not
 * a stream) is thrown as an ApiError, like every other call.
 */
export async function stream(path, body, onChunk) {
  const res = await send('POST', path, body);
  if (!res.ok || !(res.headers.get('Content-Type') || '').startsWith('text/event-stream')) {
    return parse(res);
  }
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return null;
    buffer += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const event = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      for (const line of event.split('\n')) {
        if (!line.startsWith('data: ')) continue;
        const data = line.slice(6).trim();
        if (data === '[DONE]') return null;
        try {
          onChunk(JSON.parse(data));
        } catch {
          // Not JSON: not a chunk this page can show.
        }
      }
    }
  }
}


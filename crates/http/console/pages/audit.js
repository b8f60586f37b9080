// The organization's audit log (and, for platform admins, the platform's), newest first, page by page: who (members by name, others by a
// short id), what, on what, and the change as collapsed JSON. The filter matches the start of
// the action name (`member.` shows every member event); the API filters by exact name only,
// so the pages are filtered here.

import { all, get } from '../api.js';
import { field, h, mount, section } from '../dom.js';

const short = (id) => (id && id.length > 12 ? `#${id.slice(0, 8)}` : id || '');
// How many pages one "Filter" or "Load more" may read looking for matches.
const PAGES_PER_LOAD = 10;

function json(label, value) {
  if (value === null || value === undefined) return null;
  return h('details', { class: 'json' }, h('summary', {}, label), h('pre', {}, JSON.stringify(value, null, 2)));
}

export async function renderAudit(main, ctx) {
  const members = await all('/organizations/current/members').catch(() => []);
  const people = new Map(members.map((m) => [m.user_id, [m.first_name, m.last_name].filter(Boolean).join(' ') || m.email]));
  await auditPage(main, '/organizations/current/audit', `Audit log of ${ctx.me.current_organization_name || 'this organization'}`, people);
}

/** The platform chain (accounts, sessions, sign-ins, the public catalogue): platform admins,
 * in Personal (/auth/me: platform_audit.view). Accounts are named by email where known. */
export async function renderPlatformAudit(main) {
  const users = await all('/users').catch(() => []);
  const people = new Map(users.map((u) => [u.id, [u.first_name, u.last_name].filter(Boolean).join(' ') || u.email]));
  await auditPage(main, '/platform/audit', 'Platform audit log', people);
}

async function auditPage(main, path, title, people) {
  const who = (id) => (id ? people.get(id) || short(id) : 'system');
  const body = h('tbody');
  const none = h('p', { class: 'empty', id: 'audit-none', hidden: true }, 'Nothing found.');
  const more = h('button', { type: 'button', id: 'audit-more', class: 'secondary' }, 'Load more');
  const action = h('input', { id: 'audit-action', placeholder: 'e.g. member. or member.role_changed' });
  let cursor = null;
  const load = async (reset) => {
    if (reset) { body.replaceChildren(); cursor = null; }
    const prefix = action.value.trim().toLowerCase();
    let found = 0;
    for (let i = 0; i < PAGES_PER_LOAD; i += 1) {
      const page = await get(`${path}?limit=50${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      for (const e of page.items.filter((x) => x.action.startsWith(prefix))) {
        found += 1;
        const target = e.target_type ? `${e.target_type} ${e.target_type === 'user' ? who(e.target_id) : short(e.target_id)}` : '—';
        body.append(h('tr', { 'data-action': e.action },
          h('td', {}, new Date(e.occurred_at).toLocaleString()),
          h('td', {}, h('code', {}, e.action)),
          h('td', { title: e.target_id || '' }, target),
          h('td', { class: 'actor', title: e.actor_user_id || '' }, who(e.actor_user_id)),
          h('td', { class: 'diff' }, json('before', e.before), json('after', e.after))));
      }
      cursor = page.next_cursor;
      if (found || !cursor) break;
    }
    more.hidden = !cursor;
    none.hidden = body.children.length > 0;
  };
  more.addEventListener('click', () => load(false));
  const form = h('form', { class: 'inline', onsubmit: (e) => { e.preventDefault(); load(true); } },
    field('Action starts with', action), h('button', { type: 'submit', id: 'audit-filter' }, 'Filter'));
  mount(main, h('h1', {}, title),
    section('Events', form,
      h('div', { class: 'table-wrap' }, h('table', {},
        h('caption', {}, 'Audit events, newest first'),
        h('thead', {}, h('tr', {}, ['When', 'Action', 'Target', 'Actor', 'Change'].map((t) => h('th', { scope: 'col' }, t)))),
        body)),
      none, more));
  await load(true);
}

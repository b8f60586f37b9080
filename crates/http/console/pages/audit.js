// The organization's audit log, newest first, page by page.

import { get } from '../api.js';
import { field, h, mount, section, when } from '../dom.js';

export async function renderAudit(main, ctx) {
  const body = h('tbody');
  const more = h('button', { type: 'button', id: 'audit-more', class: 'secondary' }, 'Load more');
  const action = h('input', { id: 'audit-action', placeholder: 'e.g. member.role_changed' });
  let cursor = null;
  const load = async (reset) => {
    if (reset) { body.replaceChildren(); cursor = null; }
    const filter = action.value.trim() ? `&action=${encodeURIComponent(action.value.trim())}` : '';
    const page = await get(`/organizations/current/audit?limit=50${filter}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    for (const e of page.items) {
      body.append(h('tr', {},
        h('td', {}, when(e.occurred_at)),
        h('td', {}, h('code', {}, e.action)),
        h('td', {}, e.target_type ? `${e.target_type} ${e.target_id || ''}` : '—'),
        h('td', {}, e.actor_user_id || 'system'),
        h('td', { class: 'diff' }, e.after ? JSON.stringify(e.after) : '')));
    }
    cursor = page.next_cursor;
    more.hidden = !cursor;
  };
  more.addEventListener('click', () => load(false));
  const form = h('form', { class: 'inline', onsubmit: (e) => { e.preventDefault(); load(true); } },
    field('Action', action), h('button', { type: 'submit' }, 'Filter'));
  mount(main, h('h1', {}, `Audit log of ${ctx.me.current_organization_name || 'this organization'}`),
    section('Events', form,
      h('div', { class: 'table-wrap' }, h('table', {},
        h('caption', {}, 'Audit events, newest first'),
        h('thead', {}, h('tr', {}, ['When', 'Action', 'Target', 'Actor', 'After'].map((t) => h('th', { scope: 'col' }, t)))),
        body)),
      more));
  await load(true);
}

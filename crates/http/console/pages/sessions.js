// My sessions: every signed-in browser or client, each with its own workspace.

import { all, del, post } from '../api.js';
import { attempt, badge, h, mount, notify, section, table, when } from '../dom.js';

export async function renderSessions(main, ctx) {
  const sessions = await all('/auth/sessions');
  const rows = sessions.map((s) => h('tr', { 'data-session': s.id },
    h('td', {}, when(s.created_at), s.is_current ? badge('this session', 'ok') : null),
    h('td', {}, when(s.last_used_at)),
    h('td', {}, s.current_organization_name ? `Org: ${s.current_organization_name} (${s.organization_role})` : 'Personal'),
    h('td', {}, s.ip || '—'),
    h('td', { class: 'ua' }, s.user_agent || '—'),
    h('td', { class: 'actions' }, s.is_current ? null
      : h('button', { type: 'button', class: 'danger', onclick: () => attempt(async () => {
        if (!window.confirm('Sign this session out?')) return;
        await del(`/auth/sessions/${s.id}`);
        notify('Session revoked.');
        await renderSessions(main, ctx);
      }) }, 'Revoke'))));
  mount(main,
    h('h1', {}, 'My sessions'),
    section('Signed-in sessions',
      table('Your sessions', ['Started', 'Last used', 'Workspace', 'Address', 'Client', ''], rows),
      h('button', { type: 'button', id: 'revoke-others', class: 'danger', onclick: () => attempt(async () => {
        if (!window.confirm('Sign out every other session of yours (other browsers and devices)?')) return;
        const r = await post('/auth/sessions/revoke-others');
        notify(`${r.revoked} other session(s) signed out.`);
        await renderSessions(main, ctx);
      }) }, 'Sign out all my other sessions')));
}

// Users: the organization's members (org workspace) or every account (a platform admin in
// Personal), as GET /users answers for this workspace. Creating one emails a set-password
// link; editing, disabling and deleting are shown only when /auth/me allows them.

import { all, del, post, put } from '../api.js';
import { attempt, badge, errorSlot, field, h, inlineForm, mount, notify, section, table, when } from '../dom.js';

const fullName = (u) => [u.first_name, u.last_name].filter(Boolean).join(' ') || '—';

export async function renderUsers(main, ctx, editing = null) {
  const redraw = (next = null) => renderUsers(main, ctx, next);
  const users = await all('/users');
  const inOrg = Boolean(ctx.me.current_organization_id);
  const rows = users.map((u) => {
    const self = u.id === ctx.me.user_id;
    const actions = [];
    if (ctx.can('users.update')) {
      actions.push(h('button', { type: 'button', class: 'secondary', 'data-action': 'edit', onclick: () => redraw(u.id) }, 'Edit'));
      if (!self) {
        actions.push(h('button', { type: 'button', class: u.disabled ? 'secondary' : 'danger', 'data-action': u.disabled ? 'enable' : 'disable', onclick: () => attempt(async () => {
          if (!u.disabled && !window.confirm(`Disable ${u.email}? Their sessions and API keys stop at once.`)) return;
          await put(`/users/${u.id}`, { disabled: !u.disabled });
          await redraw();
          notify(`${u.email} ${u.disabled ? 'enabled' : 'disabled'}.`);
        }) }, u.disabled ? 'Enable' : 'Disable'));
      }
    }
    if (ctx.can('users.delete') && !self) {
      actions.push(h('button', { type: 'button', class: 'danger', 'data-action': 'delete', onclick: () => attempt(async () => {
        if (!window.confirm(`Delete the account ${u.email}, with its memberships, sessions and keys?`)) return;
        await del(`/users/${u.id}`);
        await redraw();
        notify(`${u.email} deleted.`);
      }) }, 'Delete'));
    }
    return h('tr', { 'data-user': u.email },
      h('td', {}, u.email, self ? badge('you', 'ok') : null, u.is_platform_admin ? badge('platform admin', 'public') : null),
      h('td', { class: 'name' }, fullName(u)),
      inOrg ? h('td', { class: 'role' }, u.role || '—') : null,
      h('td', { class: 'state' }, u.disabled ? badge('disabled', 'warn') : badge('active', 'ok')),
      h('td', {}, when(u.created_at)),
      h('td', { class: 'actions' }, actions));
  });
  const headers = ['Email', 'Name', inOrg ? 'Role' : null, 'State', 'Created', ''].filter((x) => x !== null);
  const edited = editing && users.find((u) => u.id === editing);
  mount(main,
    h('h1', {}, inOrg ? `Users of ${ctx.me.current_organization_name}` : 'Every account'),
    section('Users', table(inOrg ? 'Members of this organization' : 'Every account of the platform', headers, rows)),
    edited ? editForm(edited, redraw) : null,
    ctx.can('users.create') ? createForm(ctx, inOrg, redraw) : null);
  if (edited) main.querySelector('#user-first-name').focus();
}

function editForm(u, redraw) {
  const first = h('input', { id: 'user-first-name', maxlength: 100, value: u.first_name || '' });
  const last = h('input', { id: 'user-last-name', maxlength: 100, value: u.last_name || '' });
  const username = h('input', { id: 'user-username', maxlength: 64, value: u.username || '' });
  return section(`Edit ${u.email}`, inlineForm(async () => {
    await put(`/users/${u.id}`, { first_name: first.value.trim(), last_name: last.value.trim(), username: username.value.trim() });
    await redraw();
    notify(`${u.email} saved.`);
  }, field('First name', first, null, 'first_name'), field('Last name', last, null, 'last_name'),
  field('Username', username, null, 'username'),
  h('button', { type: 'submit', id: 'user-save' }, 'Save'),
  h('button', { type: 'button', class: 'secondary', onclick: () => redraw() }, 'Cancel')));
}

function createForm(ctx, inOrg, redraw) {
  const email = h('input', { id: 'user-email', type: 'email', required: true, maxlength: 254 });
  const first = h('input', { id: 'new-user-first-name', maxlength: 100 });
  const last = h('input', { id: 'new-user-last-name', maxlength: 100 });
  // The roles this caller may give: the server's delegation rule, as /auth/me lists it.
  const roles = ctx.me.assignable_roles || [];
  const role = inOrg ? h('select', { id: 'user-role' },
    roles.map((r) => h('option', { value: r, selected: r === 'user' }, r))) : null;
  return section('Create a user', inlineForm(async () => {
    const body = { email: email.value.trim(), first_name: first.value.trim() || null, last_name: last.value.trim() || null };
    if (role) body.role = role.value;
    await post('/users', body);
    await redraw();
    notify(`${body.email} created; a link to set the password was emailed.`);
  }, field('Email', email, null, 'email'), field('First name', first, null, 'first_name'),
  field('Last name', last, null, 'last_name'), role ? field('Role', role, null, 'role') : null,
  h('button', { type: 'submit', id: 'user-create' }, 'Create')));
}

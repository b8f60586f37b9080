// Members and invitations of the current organization. Controls appear only when /auth/me's
// permissions allow them; the server checks again (and its refusal is shown as is).

import { all, del, post, put } from '../api.js';
import { attempt, badge, errorSlot, field, h, mount, notify, section, table, when } from '../dom.js';

function roleSelect(id, roles, selected) {
  return h('select', { id }, roles.map((r) => h('option', { value: r, selected: r === selected }, r)));
}

export async function renderMembers(main, ctx) {
  if (!ctx.me.current_organization_id) {
    mount(main, h('h1', {}, 'Members'), h('p', {}, 'Switch to an organization to see its members.'));
    return;
  }
  // Which roles this caller may hand out: the server's delegation rule, from /auth/me.
  const assignable = ctx.me.assignable_roles || [];
  const members = await all('/organizations/current/members');
  const rows = members.map((m) => {
    const self = m.user_id === ctx.me.user_id;
    const actions = [];
    if (ctx.can('members.change_role') && !self && assignable.length) {
      const select = roleSelect(`role-${m.user_id}`, [...new Set([m.role, ...assignable])], m.role);
      select.setAttribute('aria-label', `Role of ${m.email}`);
      actions.push(select, h('button', { type: 'button', onclick: () => attempt(async () => {
        await put(`/organizations/current/members/${m.user_id}`, { role: select.value });
        notify(`${m.email} is now ${select.value}.`);
        await renderMembers(main, ctx);
      }) }, 'Change role'));
    }
    if (ctx.can('members.remove') && !self) {
      actions.push(h('button', { type: 'button', class: 'danger', onclick: () => attempt(async () => {
        const keys = m.org_api_keys ? ` Their ${m.org_api_keys} API key(s) will be revoked.` : '';
        if (!window.confirm(`Remove ${m.email} from the organization?${keys}`)) return;
        await del(`/organizations/current/members/${m.user_id}`);
        notify(`${m.email} removed.`);
        await renderMembers(main, ctx);
      }) }, 'Remove'));
    }
    return h('tr', { 'data-member': m.email },
      h('td', {}, m.email, self ? badge('you', 'ok') : null),
      h('td', {}, [m.first_name, m.last_name].filter(Boolean).join(' ') || '—'),
      h('td', { class: 'role' }, m.role),
      h('td', {}, when(m.joined_at)),
      h('td', { class: 'actions' }, actions));
  });
  const parts = [h('h1', {}, `Members of ${ctx.me.current_organization_name}`),
    section('Members', table('Members', ['Email', 'Name', 'Role', 'Joined', ''], rows))];
  if (ctx.can('invitations.create')) parts.push(inviteForm(main, ctx, assignable));
  if (ctx.can('invitations.list')) parts.push(await invitationList(main, ctx));
  mount(main, ...parts);
}

function inviteForm(main, ctx, assignable) {
  const email = h('input', { id: 'invite-email', type: 'email', required: true });
  const role = roleSelect('invite-role', assignable, 'user');
  const error = errorSlot();
  return section('Invite someone', h('form', {
    class: 'inline',
    onsubmit: async (e) => {
      e.preventDefault();
      await attempt(async () => {
        await post('/organizations/current/invitations', { email: email.value.trim(), role: role.value });
        notify(`Invitation sent to ${email.value.trim()}.`);
        await renderMembers(main, ctx);
      }, error);
    },
  }, field('Email', email), field('Role', role), h('button', { type: 'submit', id: 'invite-button' }, 'Invite'), error));
}

async function invitationList(main, ctx) {
  const invitations = await all('/organizations/current/invitations');
  const rows = invitations.map((i) => {
    const pending = i.status === 'pending' || i.status === 'expired';
    return h('tr', { 'data-invitation': i.email },
      h('td', {}, i.email),
      h('td', {}, i.role),
      h('td', { class: 'status' }, badge(i.status, i.status === 'pending' ? 'warn' : i.status === 'accepted' ? 'ok' : 'neutral')),
      h('td', {}, i.invited_by || '—'),
      h('td', {}, when(i.expires_at)),
      h('td', { class: 'actions' },
        pending && ctx.can('invitations.resend') ? h('button', { type: 'button', onclick: () => attempt(async () => {
          await post(`/organizations/current/invitations/${i.id}/resend`, {});
          notify(`Invitation to ${i.email} sent again.`);
          await renderMembers(main, ctx);
        }) }, 'Resend') : null,
        i.status === 'pending' && ctx.can('invitations.revoke') ? h('button', { type: 'button', class: 'danger', 'data-action': 'revoke', onclick: () => attempt(async () => {
          if (!window.confirm(`Revoke the invitation of ${i.email}? Its link stops working.`)) return;
          await del(`/organizations/current/invitations/${i.id}`);
          notify(`Invitation to ${i.email} revoked.`);
          await renderMembers(main, ctx);
        }) }, 'Revoke') : null));
  });
  return section('Invitations', table('Invitations', ['Email', 'Role', 'Status', 'Invited by', 'Expires', ''], rows, 'No invitation yet.'));
}

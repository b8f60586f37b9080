// Organizations: mine (with my role), the invitations waiting for me (accept one here, without
// its email), create one, switch, leave the current one.

import { all, post } from '../api.js';
import { attempt, errorSlot, field, h, mount, notify, section, table, when } from '../dom.js';

export async function renderOrganizations(main, ctx) {
  const invitations = await all('/auth/invitations').catch(() => []);
  const invitationRows = invitations.map((i) => h('tr', { 'data-invitation': i.organization_slug },
    h('td', {}, i.organization_name, ' ', h('code', {}, i.organization_slug)),
    h('td', {}, i.role),
    h('td', {}, i.invited_by || '—'),
    h('td', {}, when(i.expires_at)),
    h('td', { class: 'actions' }, h('button', { type: 'button', 'data-action': 'accept-invitation', onclick: () => attempt(async () => {
      await post(`/auth/invitations/${i.id}/accept`);
      notify(`You joined ${i.organization_name} as ${i.role}; switch to it below.`);
      await ctx.reload();
    }) }, 'Accept'))));
  const rows = ctx.orgs.map((o) => {
    const current = o.id === ctx.me.current_organization_id;
    return h('tr', { 'data-org': o.slug },
      h('td', {}, o.name, current ? h('span', { class: 'badge badge-ok' }, 'current') : null),
      h('td', {}, h('code', {}, o.slug)),
      h('td', {}, o.role),
      h('td', {}, String(o.member_count ?? '')),
      h('td', { class: 'actions' },
        current
          ? h('button', { type: 'button', class: 'danger', onclick: () => leave(ctx, o) }, 'Leave')
          : h('button', { type: 'button', onclick: () => attempt(() => ctx.switchTo(o.id)) }, `Switch to ${o.name}`)));
  });
  const name = h('input', { id: 'org-name', required: true, maxlength: 100 });
  const error = errorSlot();
  const create = h('form', {
    class: 'inline',
    onsubmit: async (e) => {
      e.preventDefault();
      await attempt(async () => {
        await post('/organizations', { name: name.value.trim(), set_as_current: true });
        notify(`Organization ${name.value.trim()} created; you are its owner.`);
        await ctx.landInNewOrg();
      }, error);
    },
  }, field('Name', name, null, 'name'), h('button', { type: 'submit', id: 'org-create' }, 'Create'), error);
  mount(main,
    h('h1', {}, 'Organizations'),
    invitations.length ? section('Invitations waiting for you',
      table('Pending invitations sent to your email', ['Organization', 'Role', 'Invited by', 'Expires', ''], invitationRows)) : null,
    section('Mine', table('Organizations you belong to', ['Name', 'Slug', 'Your role', 'Members', ''], rows,
      'You belong to no organization yet.')),
    ctx.can('organizations.create') ? section('Create an organization', create) : null);
}

async function leave(ctx, org) {
  if (!window.confirm(`Leave ${org.name}?`)) return;
  await attempt(async () => {
    await post('/organizations/current/leave');
    notify(`You left ${org.name}.`);
    await ctx.reload();
  });
}

// Organizations: mine (with my role), create one, switch, leave the current one.

import { post } from '../api.js';
import { attempt, errorSlot, field, h, mount, notify, section, table } from '../dom.js';

export function renderOrganizations(main, ctx) {
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

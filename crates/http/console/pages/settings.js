// Settings of the current organization: its name and the slug other organizations type to
// share a model with it; rename and delete for the roles /auth/me allows (the owner).

import { del, patch } from '../api.js';
import { attempt, field, h, inlineForm, mount, notify, section } from '../dom.js';

export function renderSettings(main, ctx) {
  const me = ctx.me;
  const org = ctx.orgs.find((o) => o.id === me.current_organization_id) || {};
  const facts = h('dl', { class: 'facts' },
    h('dt', {}, 'Name'), h('dd', { id: 'org-current-name' }, me.current_organization_name),
    h('dt', {}, 'Slug'), h('dd', {}, h('code', { id: 'org-slug' }, me.current_organization_slug)),
    h('dt', {}, 'Your role'), h('dd', {}, me.current_organization_role),
    org.member_count != null ? [h('dt', {}, 'Members'), h('dd', {}, String(org.member_count))] : null);
  const parts = [
    h('h1', {}, `Settings of ${me.current_organization_name}`),
    section('Organization', facts,
      h('p', { class: 'hint' }, 'To share a model with this organization, another organization needs its slug: ',
        h('code', {}, me.current_organization_slug), '.')),
  ];
  if (ctx.can('org.update')) {
    const name = h('input', { id: 'org-rename', required: true, maxlength: 100, value: me.current_organization_name });
    parts.push(section('Rename', inlineForm(async () => {
      await patch('/organizations/current', { name: name.value.trim() });
      await ctx.reload();
      notify(`Renamed to ${name.value.trim()}.`);
    }, field('New name', name, null, 'name'), h('button', { type: 'submit', id: 'org-rename-submit' }, 'Rename'))));
  }
  if (ctx.can('org.delete')) {
    const error = h('p', { class: 'error', role: 'alert', id: 'org-delete-error' });
    parts.push(section('Delete this organization',
      h('p', {}, 'Its members go back to their personal workspace; its API keys stop working. An organization with running instances cannot be deleted.'),
      error,
      h('button', { type: 'button', class: 'danger', id: 'org-delete', onclick: () => attempt(async () => {
        if (!window.confirm(`Delete ${me.current_organization_name} for good?`)) return;
        await del('/organizations/current');
        notify(`${me.current_organization_name} deleted.`);
        location.hash = '#/';
        await ctx.reload();
      }, error) }, `Delete ${me.current_organization_name}`)));
  }
  mount(main, ...parts);
}

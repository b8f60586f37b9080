// API keys: list, create (the secret is shown once), approve (org keys need the technical and
// economic approvals before they work), revoke.

import { all, del, post } from '../api.js';
import { approvalButtons } from '../approvals.js';
import { activationState, attempt, badge, errorSlot, field, h, mount, notify, scopeBadge, section, table, when } from '../dom.js';

export async function renderKeys(main, ctx, created = null) {
  const keys = await all('/api_keys');
  const inOrg = Boolean(ctx.me.current_organization_id);
  const rows = keys.map((k) => {
    const actions = [];
    if (inOrg && k.scope === 'org' && !k.revoked_at) {
      actions.push(...approvalButtons(ctx, k, `/api_keys/${k.id}`, () => renderKeys(main, ctx)));
    }
    if (!k.revoked_at && ctx.can('api_keys.revoke')) {
      actions.push(h('button', { type: 'button', class: 'danger', onclick: () => attempt(async () => {
        if (!window.confirm(`Revoke the key ${k.name}?`)) return;
        await del(`/api_keys/${k.id}`);
        notify(`Key ${k.name} revoked.`);
        await renderKeys(main, ctx);
      }) }, 'Revoke'));
    }
    return h('tr', { 'data-key': k.name },
      h('td', {}, k.name),
      h('td', {}, h('code', {}, `${k.prefix}…`)),
      h('td', {}, scopeBadge(k)),
      h('td', {}, when(k.created_at)),
      h('td', {}, when(k.last_used_at)),
      h('td', {}, k.revoked_at ? badge('revoked', 'neutral') : activationState(k)),
      h('td', { class: 'actions' }, actions));
  });
  const name = h('input', { id: 'key-name', required: true, maxlength: 100 });
  const error = errorSlot();
  const form = h('form', {
    class: 'inline',
    onsubmit: async (e) => {
      e.preventDefault();
      await attempt(async () => {
        const made = await post('/api_keys', { name: name.value.trim() });
        await renderKeys(main, ctx, made);
      }, error);
    },
  }, field('Name', name), h('button', { type: 'submit', id: 'key-create' }, 'Create key'), error);
  const secret = created ? section('Your new key',
    h('p', {}, 'Copy it now: it is shown only this once.'),
    h('output', { id: 'key-secret', class: 'secret' }, created.secret)) : null;
  mount(main, h('h1', {}, 'API keys'), secret,
    section('Keys', table('API keys of this workspace', ['Name', 'Prefix', 'Scope', 'Created', 'Last used', 'State', ''], rows, 'No key yet.')),
    ctx.can('api_keys.create') ? section('Create a key', form) : null);
}

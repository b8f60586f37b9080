// API keys: list (with the models a key is limited to, its expiry, and what it spent this
// month against its cap), create (the secret is shown once), approve (an org key needs the
// technical and economic approvals before it works), change the cap, revoke.

import { all, del, get, post, put } from '../api.js';
import { approvalButtons } from '../approvals.js';
import { activationState, attempt, badge, capBar, field, h, inlineForm, mount, notify, scopeBadge, section, table, when } from '../dom.js';

const STATES = {
  active: (k) => !k.revoked_at,
  revoked: (k) => Boolean(k.revoked_at),
  all: () => true,
};

/** Who may set a cap: an org key's economic side (/auth/me: prices.set); a personal key's owner. */
const mayCap = (ctx) => !ctx.me.current_organization_id || ctx.can('prices.set');

export async function renderKeys(main, ctx, created = null, shown = 'active') {
  const redraw = (made = null, next = shown) => renderKeys(main, ctx, made, next);
  const keys = await all('/api_keys');
  const rows = keys.filter(STATES[shown] || STATES.all).map((k) => h('tr', { 'data-key': k.name },
    h('td', {}, k.name),
    h('td', {}, h('code', {}, `${k.prefix}…`)),
    h('td', {}, scopeBadge(k)),
    h('td', { class: 'allowed' }, k.allowed_models ? k.allowed_models.map((m) => h('code', { class: 'chip' }, m)) : 'any model'),
    h('td', { class: 'expires' }, k.expires_at ? when(k.expires_at) : 'never'),
    h('td', {}, when(k.last_used_at)),
    h('td', { class: 'spend' }, capBar(k.spent_this_month_micros, k.reserved_micros, k.monthly_cap_micros),
      !k.revoked_at && mayCap(ctx) ? capForm(k, () => redraw()) : null),
    h('td', { class: 'state' }, k.revoked_at ? badge('revoked', 'neutral') : activationState(k)),
    h('td', { class: 'actions' },
      ctx.me.current_organization_id && k.scope === 'org' && !k.revoked_at
        ? approvalButtons(ctx, k, `/api_keys/${k.id}`, () => redraw()) : null,
      !k.revoked_at && ctx.can('api_keys.revoke')
        ? h('button', { type: 'button', class: 'danger', 'data-action': 'revoke', onclick: () => attempt(async () => {
          if (!window.confirm(`Revoke the key ${k.name}?`)) return;
          await del(`/api_keys/${k.id}`);
          await redraw();
          notify(`Key ${k.name} revoked.`);
        }) }, 'Revoke') : null)));
  const filter = h('select', { id: 'key-filter', onchange: (e) => redraw(null, e.target.value) },
    Object.keys(STATES).map((s) => h('option', { value: s, selected: s === shown }, s)));
  const secret = created ? section('Your new key',
    h('p', {}, 'Copy it now: it is shown only this once.'),
    h('output', { id: 'key-secret', class: 'secret' }, created.secret)) : null;
  mount(main, h('h1', {}, 'API keys'), secret,
    section('Keys', h('div', { class: 'toolbar' }, field('Show', filter)),
      table('API keys of this workspace', ['Name', 'Prefix', 'Scope', 'Models', 'Expires', 'Last used', 'This month', 'State', ''], rows, 'No key here.')),
    ctx.can('api_keys.create') ? section('Create a key', await createForm(ctx, redraw)) : null);
}

function capForm(k, redraw) {
  const cap = h('input', { class: 'cap', type: 'number', min: 0, step: 0.000001, 'aria-label': `Monthly cap of ${k.name} in euros`,
    value: k.monthly_cap_micros == null ? '' : k.monthly_cap_micros / 1e6, placeholder: 'no cap' });
  return inlineForm(async () => {
    const value = cap.value.trim() === '' ? null : Math.round(Number(cap.value) * 1e6);
    await put(`/api_keys/${k.id}`, { monthly_cap_micros: value });
    await redraw();
    notify(value == null ? `Cap of ${k.name} removed.` : `Cap of ${k.name} set.`);
  }, h('span', { class: 'mini' }, 'Cap €'), cap, h('button', { type: 'submit', class: 'secondary', 'data-action': 'set-cap' }, 'Set cap'));
}

async function createForm(ctx, redraw) {
  // What a key may be limited to: the models this workspace can call (the proxy's own list).
  let models = [];
  try {
    models = (await get('/v1/models')).data.map((m) => m.id);
  } catch {
    models = [];
  }
  const name = h('input', { id: 'key-name', required: true, maxlength: 100 });
  const allowed = h('select', { id: 'key-models', multiple: true, size: Math.min(5, Math.max(2, models.length)) },
    models.map((m) => h('option', { value: m }, m)));
  const expires = h('input', { id: 'key-expires', type: 'date' });
  const cap = h('input', { id: 'key-cap', type: 'number', min: 0, step: 0.000001, placeholder: 'no cap' });
  return inlineForm(async () => {
    const body = { name: name.value.trim() };
    const chosen = [...allowed.selectedOptions].map((o) => o.value);
    if (chosen.length) body.allowed_models = chosen;
    // The end of the chosen day, UTC.
    if (expires.value) body.expires_at = `${expires.value}T23:59:59Z`;
    if (cap.value.trim() !== '') body.monthly_cap_micros = Math.round(Number(cap.value) * 1e6);
    const made = await post('/api_keys', body);
    await redraw(made);
  }, field('Name', name, null, 'name'),
  models.length ? field('Only these models', allowed, 'None chosen: any model.', 'allowed_models') : null,
  field('Expires', expires, 'Empty: never.', 'expires_at'),
  mayCap(ctx) ? field('Monthly cap, €', cap, 'Empty: no cap.', 'monthly_cap_micros') : null,
  h('button', { type: 'submit', id: 'key-create' }, 'Create key'));
}

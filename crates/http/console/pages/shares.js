// The rows of the two share tables of the Sharing page: the shares we grant (provider side:
// prices, approvals, pause/resume/revoke) and the ones we receive (consumer side: the terms to
// accept or decline, pause/resume/revoke, the monthly cap with what is spent and reserved).

import { patch, post } from '../api.js';
import { approvalButtons } from '../approvals.js';
import { activationState, attempt, badge, capBar, h, inlineForm, money, notify } from '../dom.js';

export const price = (s) => `${money(s.price_input_micros_per_1k)} in / ${money(s.price_output_micros_per_1k)} out per 1k tokens`;

/** A price field in euros per 1k tokens; its value in micro-euros with `micros`. */
export function priceInput(id, micros = 0, cls = '') {
  return h('input', { id, class: cls, type: 'number', min: 0, step: 0.000001, value: micros / 1e6, required: true, 'aria-label': id });
}
export const micros = (input) => Math.round(Number(input.value) * 1e6);

/** The status, as each side should read it; a proposal is waiting for the consumer. */
function statusCell(s, side) {
  const waiting = s.status === 'proposed';
  const text = waiting ? (side === 'provider' ? 'waiting for the consumer' : 'waiting for your acceptance') : s.status;
  const kind = s.status === 'active' ? 'ok' : waiting ? 'warn' : 'neutral';
  const paused = [s.provider_paused ? 'paused by the provider' : null, s.consumer_paused ? 'paused by the consumer' : null].filter(Boolean);
  return h('td', { class: 'status', 'data-status': s.status }, badge(text, kind),
    paused.map((p) => badge(p, 'warn')));
}

/** Pause or resume (our own flag) and revoke, for `side`, when `allowed`. */
function controls(s, side, allowed, redraw) {
  if (!allowed || ['revoked', 'expired', 'declined'].includes(s.status)) return [];
  const path = `/organizations/current/shares/${s.id}`;
  const ours = side === 'provider' ? s.provider_paused : s.consumer_paused;
  const act = (verb, label, question) => h('button', {
    type: 'button',
    class: verb === 'revoke' ? 'danger' : 'secondary',
    'data-action': verb,
    onclick: () => attempt(async () => {
      if (question && !window.confirm(question)) return;
      await post(`${path}/${verb}`);
      await redraw();
      notify(`Share ${label}.`);
    }),
  }, verb[0].toUpperCase() + verb.slice(1));
  return [ours ? act('resume', 'resumed') : act('pause', 'paused'),
    act('revoke', 'revoked', `Revoke the share of ${s.name_for_clients}? This cannot be undone.`)];
}

/** Provider: new prices, a new contract version the consumer must accept again. */
function priceForm(s, redraw) {
  const pin = priceInput(`price-in-${s.id}`, s.price_input_micros_per_1k, 'price-in');
  const pout = priceInput(`price-out-${s.id}`, s.price_output_micros_per_1k, 'price-out');
  return inlineForm(async () => {
    await patch(`/organizations/current/shares/${s.id}`, { price_input_micros_per_1k: micros(pin), price_output_micros_per_1k: micros(pout) });
    await redraw();
    notify('New prices proposed: the share waits for the consumer to accept them.');
  }, h('span', { class: 'mini' }, '€ in'), pin, h('span', { class: 'mini' }, '€ out'), pout,
  h('button', { type: 'submit', class: 'secondary', 'data-action': 'set-prices' }, 'Change prices'));
}

export function givenRow(s, ctx, redraw) {
  const live = ['proposed', 'active'].includes(s.status);
  return h('tr', { 'data-share': s.consumer_organization_slug },
    h('td', {}, s.consumer_organization.name || s.consumer_organization_slug, ' ', h('code', {}, s.consumer_organization_slug)),
    h('td', {}, h('code', {}, s.name_for_clients)),
    h('td', { class: 'price' }, price(s), live && ctx.can('prices.set') ? priceForm(s, redraw) : null),
    statusCell(s, 'provider'),
    h('td', { class: 'activation' }, activationState(s)),
    h('td', { class: 'actions' }, approvalButtons(ctx, s, `/organizations/current/shares/${s.id}`, redraw),
      controls(s, 'provider', ctx.can('shares.manage'), redraw)));
}

/** Consumer: the monthly cap in euros (empty: none). */
function capForm(s, redraw) {
  const cap = h('input', { class: 'cap', type: 'number', min: 0, step: 0.000001, 'aria-label': 'Monthly cap in euros',
    value: s.monthly_cap_micros == null ? '' : s.monthly_cap_micros / 1e6, placeholder: 'no cap' });
  return inlineForm(async () => {
    const value = cap.value.trim() === '' ? null : Math.round(Number(cap.value) * 1e6);
    await patch(`/organizations/current/shares/${s.id}`, { monthly_cap_micros: value });
    await redraw();
    notify(value == null ? 'Cap removed.' : `Monthly cap set to ${money(value)}.`);
  }, h('span', { class: 'mini' }, 'Cap €'), cap, h('button', { type: 'submit', class: 'secondary', 'data-action': 'set-cap' }, 'Set cap'));
}

export function receivedRow(s, ctx, redraw) {
  const path = `/organizations/current/shares/${s.id}`;
  const decide = ctx.can('shares.accept') && s.status === 'proposed';
  const accept = decide ? [
    h('button', { type: 'button', 'data-action': 'accept', onclick: () => attempt(async () => {
      // The version read here: if the provider changed the terms meanwhile, the server refuses.
      await post(`${path}/accept`, { contract_version: s.contract_version });
      await redraw();
      notify(`Accepted ${s.name_for_clients} at ${price(s)}.`);
    }) }, 'Accept these prices'),
    h('button', { type: 'button', class: 'danger', 'data-action': 'decline', onclick: () => attempt(async () => {
      if (!window.confirm(`Decline ${s.name_for_clients} at ${price(s)}?`)) return;
      await post(`${path}/decline`);
      await redraw();
      notify('Share declined.');
    }) }, 'Decline')] : [];
  return h('tr', { 'data-received': s.name_for_clients },
    h('td', {}, s.provider_organization.name || s.provider_organization_slug),
    h('td', {}, h('code', {}, s.name_for_clients)),
    h('td', { class: 'price' }, price(s)),
    statusCell(s, 'consumer'),
    h('td', { class: 'activation' }, activationState(s)),
    h('td', { class: 'spend' }, capBar(s.spent_this_month_micros, s.reserved_micros, s.monthly_cap_micros),
      ctx.can('shares.accept') && s.status === 'active' ? capForm(s, redraw) : null),
    h('td', { class: 'actions' }, accept, controls(s, 'consumer', ctx.can('shares.control_received'), redraw)));
}

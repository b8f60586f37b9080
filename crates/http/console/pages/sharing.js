// Model sharing: this organization's offerings (published models, with their double
// activation and default prices), the shares it grants to other organizations, and the ones
// it receives (rows in shares.js). Owners and admins offer a model, publish it and propose it
// to another organization at a price; owners and managers set prices.

import { all, patch, post } from '../api.js';
import { approvalButtons } from '../approvals.js';
import { activationState, attempt, badge, field, h, inlineForm, money, mount, notify, section, table } from '../dom.js';
import { givenRow, micros, priceInput, receivedRow } from './shares.js';

const defaults = (o) => `${money(o.default_price_input_micros_per_1k)} in / ${money(o.default_price_output_micros_per_1k)} out`;

/** "Offer a model": a model of this workspace under a code of this organization. */
function offerForm(models, redraw) {
  const model = h('select', { id: 'offer-model', required: true },
    models.filter((m) => m.is_active).map((m) => h('option', { value: m.id }, `${m.name} (${m.model_id})`)));
  const code = h('input', { id: 'offer-code', required: true, maxlength: 64 });
  const name = h('input', { id: 'offer-name', required: true, maxlength: 100 });
  const visibility = h('select', { id: 'offer-visibility' },
    h('option', { value: 'private' }, 'private (shared on proposal only)'),
    h('option', { value: 'public' }, 'public (listed in the marketplace)'));
  return inlineForm(async () => {
    await post('/organizations/current/offerings', { model_id: model.value, code: code.value.trim(), name: name.value.trim(), visibility: visibility.value });
    await redraw();
    notify(`Offering ${code.value.trim()} created: publish it, then have it approved.`);
  }, field('Model', model, null, 'model_id'),
  field('Code', code, 'Lowercase letters, digits and dashes; clients call it <org>/<code>.', 'code'),
  field('Name', name, null, 'name'), field('Visibility', visibility, null, 'visibility'),
  h('button', { type: 'submit', id: 'offer-create' }, 'Offer'));
}

/** "Propose a share": one of our offerings to another organization, at a price. */
function grantForm(offerings, redraw) {
  const offering = h('select', { id: 'share-offering', required: true },
    offerings.map((o) => h('option', { value: o.id }, o.name_for_clients)));
  const consumer = h('input', { id: 'share-consumer', required: true, placeholder: 'their organization slug' });
  const priceIn = priceInput('share-price-in');
  const priceOut = priceInput('share-price-out');
  return inlineForm(async () => {
    await post('/organizations/current/shares', {
      offering_id: offering.value,
      consumer_organization_slug: consumer.value.trim(),
      price_input_micros_per_1k: micros(priceIn),
      price_output_micros_per_1k: micros(priceOut),
    });
    await redraw();
    notify(`Proposed to ${consumer.value.trim()}: they accept the prices, and it needs both approvals to be used.`);
  }, field('Offering', offering, null, 'offering_id'),
  field('Consumer', consumer, 'The slug they see in their organization settings.', 'consumer_organization_slug'),
  field('Input, € per 1k tokens', priceIn, null, 'price_input_micros_per_1k'),
  field('Output, € per 1k tokens', priceOut, null, 'price_output_micros_per_1k'),
  h('button', { type: 'submit', id: 'share-grant' }, 'Propose'));
}

/** Publish or unpublish an offering. */
function publishButton(o, redraw) {
  const verb = o.is_active ? 'unpublish' : 'publish';
  return h('button', { type: 'button', class: 'secondary', 'data-action': verb, onclick: () => attempt(async () => {
    await patch(`/organizations/current/offerings/${o.id}`, { is_active: !o.is_active });
    await redraw();
    notify(`Offering ${o.code} ${verb}ed.`);
  }) }, verb[0].toUpperCase() + verb.slice(1));
}

/** Default prices (what an approved marketplace request proposes); a change clears eco. */
function defaultPriceForm(o, redraw) {
  const pin = priceInput(`default-in-${o.id}`, o.default_price_input_micros_per_1k, 'price-in');
  const pout = priceInput(`default-out-${o.id}`, o.default_price_output_micros_per_1k, 'price-out');
  return inlineForm(async () => {
    await patch(`/organizations/current/offerings/${o.id}`, { default_price_input_micros_per_1k: micros(pin), default_price_output_micros_per_1k: micros(pout) });
    await redraw();
    notify(`Default prices of ${o.code} changed; its economic approval must be given again.`);
  }, h('span', { class: 'mini' }, '€ in'), pin, h('span', { class: 'mini' }, '€ out'), pout,
  h('button', { type: 'submit', class: 'secondary', 'data-action': 'set-default-prices' }, 'Set prices'));
}

export async function renderSharing(main, ctx) {
  const redraw = () => renderSharing(main, ctx);
  const manage = ctx.can('offerings.manage');
  const [offerings, given, received, models] = await Promise.all([
    all('/organizations/current/offerings'),
    all('/organizations/current/shares?side=provider'),
    all('/organizations/current/shares?side=consumer'),
    manage ? all('/models') : [],
  ]);
  const offeringRows = offerings.map((o) => h('tr', { 'data-offering': o.code },
    h('td', {}, o.name, o.visibility === 'public' ? badge('public', 'public') : null),
    h('td', {}, h('code', {}, o.name_for_clients)),
    h('td', { class: 'price' }, defaults(o), ctx.can('prices.set') ? defaultPriceForm(o, redraw) : null),
    h('td', { class: 'state' }, o.is_active ? badge('published', 'ok') : badge('unpublished', 'neutral')),
    h('td', { class: 'activation' }, activationState(o)),
    h('td', { class: 'actions' }, manage ? publishButton(o, redraw) : null,
      approvalButtons(ctx, o, `/organizations/current/offerings/${o.id}`, redraw))));
  mount(main, h('h1', {}, 'Sharing'),
    section('Our offerings', table('Models this organization offers', ['Name', 'Called as', 'Default prices per 1k tokens', 'State', 'Activation', ''], offeringRows, 'No offering yet.')),
    manage ? section('Offer a model', offerForm(models, redraw)) : null,
    section('Shares we grant', table('Shares granted to other organizations', ['Consumer', 'Model', 'Price', 'Status', 'Activation', ''],
      given.map((s) => givenRow(s, ctx, redraw)), 'No share granted.')),
    ctx.can('shares.manage') && offerings.length ? section('Propose a share', grantForm(offerings, redraw)) : null,
    section('Shares we receive', table('Models shared with this organization', ['Provider', 'Model', 'Price', 'Status', 'Activation', 'This month', ''],
      received.map((s) => receivedRow(s, ctx, redraw)), 'Nothing shared with us.')));
}

// Model sharing: this organization's offerings (published models, with their double
// activation), the shares it grants to other organizations, and the ones it receives. Owners
// and admins offer a model, publish it and grant it to another organization at a price.

import { all, patch, post } from '../api.js';
import { approvalButtons } from '../approvals.js';
import { activationState, attempt, badge, field, h, inlineForm, money, mount, notify, section, table } from '../dom.js';

const price = (s) => `${money(s.price_input_micros_per_1k)} in / ${money(s.price_output_micros_per_1k)} out per 1k tokens`;

/** A price field in euros per 1k tokens; its value in micro-euros. */
function priceInput(id) {
  return h('input', { id, type: 'number', min: 0, step: 0.000001, value: 0, required: true });
}
const micros = (input) => Math.round(Number(input.value) * 1e6);

/** "Offer a model": a model of this workspace under a code of this organization. */
function offerForm(models, redraw) {
  const model = h('select', { id: 'offer-model', required: true },
    models.filter((m) => m.is_active).map((m) => h('option', { value: m.id }, `${m.name} (${m.model_id})`)));
  const code = h('input', { id: 'offer-code', required: true, pattern: '[a-z0-9]+(-[a-z0-9]+)*', maxlength: 64 });
  const name = h('input', { id: 'offer-name', required: true, maxlength: 100 });
  return inlineForm(async () => {
    await post('/organizations/current/offerings', { model_id: model.value, code: code.value.trim(), name: name.value.trim() });
    notify(`Offering ${code.value.trim()} created: publish it, then have it approved.`);
    await redraw();
  }, field('Model', model), field('Code', code, 'Clients call it <org>/<code>'), field('Name', name),
  h('button', { type: 'submit', id: 'offer-create' }, 'Offer'));
}

/** "Grant a share": one of our offerings to another organization, at a price. */
function grantForm(offerings, redraw) {
  const offering = h('select', { id: 'share-offering', required: true },
    offerings.map((o) => h('option', { value: o.id }, o.name_for_clients)));
  const consumer = h('input', { id: 'share-consumer', required: true, placeholder: 'organization slug' });
  const priceIn = priceInput('share-price-in');
  const priceOut = priceInput('share-price-out');
  return inlineForm(async () => {
    await post('/organizations/current/shares', {
      offering_id: offering.value,
      consumer_organization_slug: consumer.value.trim(),
      price_input_micros_per_1k: micros(priceIn),
      price_output_micros_per_1k: micros(priceOut),
    });
    notify(`Shared with ${consumer.value.trim()}: it needs both approvals to be used.`);
    await redraw();
  }, field('Offering', offering), field('Consumer', consumer), field('Input, € per 1k tokens', priceIn),
  field('Output, € per 1k tokens', priceOut), h('button', { type: 'submit', id: 'share-grant' }, 'Grant'));
}

/** Publish or unpublish an offering. */
function publishButton(o, redraw) {
  const verb = o.is_active ? 'unpublish' : 'publish';
  return h('button', { type: 'button', class: 'secondary', 'data-action': verb, onclick: () => attempt(async () => {
    await patch(`/organizations/current/offerings/${o.id}`, { is_active: !o.is_active });
    notify(`Offering ${o.code} ${verb}ed.`);
    await redraw();
  }) }, verb[0].toUpperCase() + verb.slice(1));
}

export async function renderSharing(main, ctx) {
  if (!ctx.me.current_organization_id) {
    mount(main, h('h1', {}, 'Sharing'), h('p', {}, 'Switch to an organization to share models.'));
    return;
  }
  const redraw = () => renderSharing(main, ctx);
  const manage = ctx.can('offerings.manage');
  const [offerings, given, received, models] = await Promise.all([
    all('/organizations/current/offerings'),
    all('/organizations/current/shares?side=provider'),
    all('/organizations/current/shares?side=consumer'),
    manage ? all('/models') : [],
  ]);
  const offeringRows = offerings.map((o) => h('tr', { 'data-offering': o.code },
    h('td', {}, o.name), h('td', {}, h('code', {}, o.name_for_clients)),
    h('td', { class: 'state' }, o.is_active ? badge('published', 'ok') : badge('unpublished', 'neutral')),
    h('td', { class: 'activation' }, activationState(o)),
    h('td', { class: 'actions' }, manage ? publishButton(o, redraw) : null,
      approvalButtons(ctx, o, `/organizations/current/offerings/${o.id}`, redraw))));
  const shareActions = (s) => {
    if (!ctx.can('shares.manage') || s.status === 'revoked' || s.status === 'expired') return [];
    const path = `/organizations/current/shares/${s.id}`;
    const act = (verb, label) => h('button', { type: 'button', class: verb === 'revoke' ? 'danger' : 'secondary', onclick: () => attempt(async () => {
      await post(`${path}/${verb}`);
      notify(`Share ${label}.`);
      await redraw();
    }) }, verb[0].toUpperCase() + verb.slice(1));
    return [s.status === 'paused' ? act('resume', 'resumed') : act('pause', 'paused'), act('revoke', 'revoked')];
  };
  const givenRows = given.map((s) => h('tr', { 'data-share': s.consumer_organization_slug },
    h('td', {}, s.consumer_organization_slug), h('td', {}, h('code', {}, s.name_for_clients)),
    h('td', {}, price(s)), h('td', { class: 'status' }, s.status),
    h('td', { class: 'activation' }, activationState(s)),
    h('td', { class: 'actions' }, approvalButtons(ctx, s, `/organizations/current/shares/${s.id}`, redraw), shareActions(s))));
  const receivedRows = received.map((s) => h('tr', {},
    h('td', {}, s.provider_organization_slug), h('td', {}, h('code', {}, s.name_for_clients)),
    h('td', {}, price(s)), h('td', {}, s.status), h('td', {}, activationState(s))));
  mount(main, h('h1', {}, 'Sharing'),
    section('Our offerings', table('Models this organization offers', ['Name', 'Called as', 'State', 'Activation', ''], offeringRows, 'No offering yet.')),
    manage ? section('Offer a model', offerForm(models, redraw)) : null,
    section('Shares we grant', table('Shares granted to other organizations', ['Consumer', 'Model', 'Price', 'Status', 'Activation', ''], givenRows, 'No share granted.')),
    ctx.can('shares.manage') && offerings.length ? section('Grant a share', grantForm(offerings, redraw)) : null,
    section('Shares we receive', table('Models shared with this organization', ['Provider', 'Model', 'Price', 'Status', 'Activation'], receivedRows, 'Nothing shared with us.')));
}

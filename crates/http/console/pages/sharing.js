// Model sharing: this organization's offerings (published models, with their double
// activation), the shares it grants to other organizations, and the ones it receives.

import { all, post } from '../api.js';
import { approvalButtons } from '../approvals.js';
import { activationState, attempt, badge, h, money, mount, notify, section, table } from '../dom.js';

const price = (s) => `${money(s.price_input_micros_per_1k)} in / ${money(s.price_output_micros_per_1k)} out per 1k tokens`;

export async function renderSharing(main, ctx) {
  if (!ctx.me.current_organization_id) {
    mount(main, h('h1', {}, 'Sharing'), h('p', {}, 'Switch to an organization to share models.'));
    return;
  }
  const redraw = () => renderSharing(main, ctx);
  const [offerings, given, received] = await Promise.all([
    all('/organizations/current/offerings'),
    all('/organizations/current/shares?side=provider'),
    all('/organizations/current/shares?side=consumer'),
  ]);
  const offeringRows = offerings.map((o) => h('tr', { 'data-offering': o.code },
    h('td', {}, o.name), h('td', {}, h('code', {}, o.name_for_clients)),
    h('td', {}, o.is_active ? badge('published', 'ok') : badge('unpublished', 'neutral')),
    h('td', { class: 'activation' }, activationState(o)),
    h('td', { class: 'actions' }, approvalButtons(ctx, o, `/organizations/current/offerings/${o.id}`, redraw))));
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
    section('Shares we grant', table('Shares granted to other organizations', ['Consumer', 'Model', 'Price', 'Status', 'Activation', ''], givenRows, 'No share granted.')),
    section('Shares we receive', table('Models shared with this organization', ['Provider', 'Model', 'Price', 'Status', 'Activation'], receivedRows, 'Nothing shared with us.')));
}

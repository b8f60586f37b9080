// The marketplace: other organizations' public offerings, with their default prices; an
// owner or manager asks for access, and the provider's owner or admin approves (which
// proposes a share at those prices, to accept on the Sharing page) or rejects. Both lists of
// requests, sent and received, for the roles that may see them.

import { all, post } from '../api.js';
import { attempt, badge, field, h, money, mount, notify, section, table, when } from '../dom.js';

const perK = (i, o) => `${money(i)} in / ${money(o)} out per 1k tokens`;
const STATUS_KIND = { pending: 'warn', approved: 'ok', rejected: 'neutral' };

export async function renderMarketplace(main, ctx) {
  const redraw = () => renderMarketplace(main, ctx);
  const views = ctx.can('access_requests.view');
  const [offerings, sent, received] = await Promise.all([
    all('/marketplace/offerings'),
    views ? all('/organizations/current/access-requests?side=consumer') : [],
    views ? all('/organizations/current/access-requests?side=provider') : [],
  ]);
  const message = h('input', { id: 'request-message', maxlength: 1000, placeholder: 'Who you are, what for' });
  const ask = ctx.can('access_requests.create');
  const offeringRows = offerings.map((o) => h('tr', { 'data-listing': o.address },
    h('td', {}, h('strong', {}, o.name), o.description ? h('div', { class: 'hint' }, o.description) : null),
    h('td', {}, h('code', {}, o.address)),
    h('td', {}, o.provider.name),
    h('td', {}, perK(o.default_price_input_micros_per_1k, o.default_price_output_micros_per_1k)),
    h('td', {}, o.operational ? badge('operational', 'ok') : badge('not operational yet', 'warn')),
    h('td', { class: 'actions' }, ask ? h('button', { type: 'button', 'data-action': 'request', onclick: () => attempt(async () => {
      const text = message.value.trim();
      await post(`/marketplace/offerings/${o.id}/access-requests`, text ? { message: text } : {});
      await redraw();
      notify(`Access to ${o.address} requested; ${o.provider.name} decides.`);
    }) }, 'Request access') : null)));
  const status = (r) => h('td', { class: 'status' }, badge(r.status, STATUS_KIND[r.status] || 'neutral'));
  const sentRows = sent.map((r) => h('tr', { 'data-request': r.offering.address },
    h('td', {}, h('code', {}, r.offering.address)), h('td', {}, r.provider_organization.name),
    status(r), h('td', {}, when(r.created_at)),
    h('td', {}, r.status === 'approved' ? 'A share is proposed: accept it on the Sharing page.'
      : r.renewable_at ? `You may ask again from ${when(r.renewable_at)}.` : '')));
  const decide = ctx.can('access_requests.decide');
  const receivedRows = received.map((r) => h('tr', { 'data-request': `${r.consumer_organization.slug}:${r.offering.address}` },
    h('td', {}, r.consumer_organization.name, ' ', h('code', {}, r.consumer_organization.slug)),
    h('td', {}, h('code', {}, r.offering.address)),
    h('td', {}, r.message || '—'),
    status(r), h('td', {}, when(r.created_at)),
    h('td', { class: 'actions' }, decide && r.status === 'pending' ? [
      h('button', { type: 'button', 'data-action': 'approve', onclick: () => attempt(async () => {
        await post(`/organizations/current/access-requests/${r.id}/approve`);
        await redraw();
        notify(`Approved: a share is proposed to ${r.consumer_organization.name} at the offering's default prices.`);
      }) }, 'Approve'),
      h('button', { type: 'button', class: 'danger', 'data-action': 'reject', onclick: () => attempt(async () => {
        if (!window.confirm(`Reject ${r.consumer_organization.name}'s request? They may ask again in 7 days.`)) return;
        await post(`/organizations/current/access-requests/${r.id}/reject`);
        await redraw();
        notify('Request rejected.');
      }) }, 'Reject')] : null)));
  mount(main, h('h1', {}, 'Marketplace'),
    section('Public offerings of other organizations',
      ask ? h('div', { class: 'toolbar' }, field('Message with a request (optional)', message, null, 'message')) : null,
      table('Offerings you may ask for', ['Offering', 'Address', 'Provider', 'Default price', 'State', ''], offeringRows, 'No public offering yet.')),
    views ? section('Requests we sent', table('Our access requests', ['Offering', 'Provider', 'Status', 'Sent', ''], sentRows, 'No request sent.')) : null,
    views ? section('Requests we received', table('Access requests for our offerings', ['From', 'Offering', 'Message', 'Status', 'Received', ''], receivedRows, 'No request received.')) : null);
}

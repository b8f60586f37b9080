// Models visible in this workspace: the public catalogue and the organization's own, whose
// technical and economic approvals decide whether its offerings serve traffic.

import { all } from '../api.js';
import { approvalButtons } from '../approvals.js';
import { activationState, badge, h, mount, scopeBadge, section, table } from '../dom.js';

export async function renderModels(main, ctx) {
  const models = await all('/models');
  const inOrg = Boolean(ctx && ctx.me.current_organization_id);
  const rows = models.map((m) => h('tr', { 'data-model': m.model_id },
    h('td', {}, m.name),
    h('td', {}, h('code', {}, m.model_id)),
    h('td', {}, scopeBadge(m)),
    h('td', {}, `${m.required_vram_gb} GB`),
    h('td', {}, String(m.context_length)),
    h('td', {}, m.is_active ? badge('active', 'ok') : badge('inactive', 'neutral')),
    h('td', { class: 'activation' }, activationState(m)),
    h('td', { class: 'actions' }, inOrg && m.visibility === 'org'
      ? approvalButtons(ctx, m, `/models/${m.id}`, () => renderModels(main, ctx)) : [])));
  mount(main, h('h1', {}, 'Models'),
    section('Models', table('Models you can use here', ['Name', 'Model', 'Owner', 'VRAM', 'Context', 'State', 'Activation', ''], rows)));
}

// Instances of the current workspace, with their ownership badge, their activation state and
// the technical / economic approval buttons for the roles that may press them.

import { all, post } from '../api.js';
import { approvalButtons } from '../approvals.js';
import { activationState, attempt, errorSlot, field, h, money, mount, notify, scopeBadge, section, table } from '../dom.js';

export async function renderInstances(main, ctx) {
  const instances = await all('/instances');
  const inOrg = Boolean(ctx.me.current_organization_id);
  const rows = instances.map((i) => {
    const actions = [];
    if (inOrg && i.scope === 'org') {
      actions.push(...approvalButtons(ctx, i, `/instances/${i.id}`, () => renderInstances(main, ctx)));
    }
    if (ctx.can('instances.terminate') && !['terminated', 'terminating'].includes(i.status)) {
      actions.push(h('button', { type: 'button', class: 'danger', onclick: () => attempt(async () => {
        if (!window.confirm(`Terminate this ${i.model_name} instance?`)) return;
        await post(`/instances/${i.id}/terminate`);
        notify('Termination requested.');
        await renderInstances(main, ctx);
      }) }, 'Terminate'));
    }
    return h('tr', { 'data-instance': i.id },
      h('td', {}, i.model_name),
      h('td', {}, scopeBadge(i)),
      h('td', { class: 'status' }, i.status),
      h('td', { class: 'activation' }, activationState(i)),
      h('td', {}, `${money(i.hourly_cost_micros)}/h`),
      h('td', { class: 'actions' }, actions));
  });
  mount(main,
    h('h1', {}, 'Instances'),
    section('Instances', table('Instances of this workspace', ['Model', 'Owner', 'Status', 'Activation', 'Cost', ''], rows,
      'No instance in this workspace.')),
    ctx.can('instances.deploy') ? await deployForm(main, ctx) : null);
}

async function deployForm(main, ctx) {
  const models = (await all('/models')).filter((m) => m.is_active);
  const model = h('select', { id: 'deploy-model', required: true },
    models.map((m) => h('option', { value: m.id }, `${m.name} (${m.model_id})`)));
  const error = errorSlot();
  return section('Deploy', h('form', {
    class: 'inline',
    onsubmit: async (e) => {
      e.preventDefault();
      await attempt(async () => {
        await post('/deployments', { model_id: model.value });
        notify('Deployment started.');
        await renderInstances(main, ctx);
      }, error);
    },
  }, field('Model', model), h('button', { type: 'submit', id: 'deploy-button', disabled: !models.length }, 'Deploy'), error));
}

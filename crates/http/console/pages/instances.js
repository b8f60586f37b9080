// Instances of the current workspace: ownership badge, provider and endpoint, status (which
// refreshes itself every 2 s while an instance is on its way up or down), activation state,
// the approval buttons, reinstall and terminate for the roles that may press them, and the
// deploy form (mock or external provider with its endpoint).

import { all, post } from '../api.js';
import { approvalButtons } from '../approvals.js';
import { activationState, attempt, field, h, inlineForm, money, mount, notify, scopeBadge, section, table } from '../dom.js';

// The statuses an instance leaves by itself: while one is shown, the list is read again.
const TRANSITIONAL = ['provisioning', 'booting', 'terminating'];
const POLL_MS = 2000;
let pollTimer = null;

export async function renderInstances(main, ctx) {
  clearTimeout(pollTimer);
  const list = h('div', { id: 'instance-list' });
  mount(main,
    h('h1', {}, 'Instances'),
    section('Instances', list),
    ctx.can('instances.deploy') ? await deployForm(ctx, () => refresh(list, ctx)) : null);
  await refresh(list, ctx);
}

/** Reads the list again and redraws it (only it: a half-filled deploy form stays). */
async function refresh(list, ctx) {
  clearTimeout(pollTimer);
  if (!list.isConnected) return;
  const instances = await all('/instances');
  const redraw = () => refresh(list, ctx);
  mount(list, table('Instances of this workspace', ['Model', 'Owner', 'Provider', 'Status', 'Activation', 'Cost', ''],
    instances.map((i) => row(i, ctx, redraw)), 'No instance in this workspace.'));
  // Poll only while something is moving and this page is still the one shown.
  if (instances.some((i) => TRANSITIONAL.includes(i.status))) {
    pollTimer = setTimeout(() => {
      if (list.isConnected) refresh(list, ctx).catch(() => {});
    }, POLL_MS);
  }
}

function row(i, ctx, redraw) {
  const inOrg = Boolean(ctx.me.current_organization_id);
  const actions = [];
  if (inOrg && i.scope === 'org') actions.push(...approvalButtons(ctx, i, `/instances/${i.id}`, redraw));
  const lifecycle = (verb, label, question) => h('button', {
    type: 'button',
    class: verb === 'terminate' ? 'danger' : 'secondary',
    'data-action': verb,
    onclick: () => attempt(async () => {
      if (!window.confirm(question)) return;
      await post(`/instances/${i.id}/${verb}`);
      await redraw();
      notify(`${label} requested.`);
    }),
  }, verb[0].toUpperCase() + verb.slice(1));
  // Which states allow these is the server's rule; the buttons show where they can apply.
  if (ctx.can('instances.reinstall') && ['ready', 'failed'].includes(i.status)) {
    actions.push(lifecycle('reinstall', 'Reinstallation', `Reinstall this ${i.model_name} instance? It stops serving until it is ready again.`));
  }
  if (ctx.can('instances.terminate') && !['terminated', 'terminating'].includes(i.status)) {
    actions.push(lifecycle('terminate', 'Termination', `Terminate this ${i.model_name} instance?`));
  }
  return h('tr', { 'data-instance': i.id },
    h('td', {}, i.model_name),
    h('td', {}, scopeBadge(i)),
    h('td', { class: 'provider' }, i.provider, i.endpoint_url && i.provider !== 'mock' ? h('small', { class: 'endpoint' }, ` ${i.endpoint_url}`) : null),
    h('td', { class: 'status' }, i.status, i.failure_reason ? h('small', { class: 'reason' }, ` (${i.failure_reason})`) : null),
    h('td', { class: 'activation' }, activationState(i)),
    h('td', {}, `${money(i.hourly_cost_micros)}/h`),
    h('td', { class: 'actions' }, actions));
}

async function deployForm(ctx, redraw) {
  const models = (await all('/models')).filter((m) => m.is_active);
  const model = h('select', { id: 'deploy-model', required: true },
    models.map((m) => h('option', { value: m.id }, `${m.name} (${m.model_id})`)));
  const endpoint = h('input', { id: 'deploy-endpoint', placeholder: 'http://10.0.0.5:8000', maxlength: 2000 });
  const endpointField = field('Endpoint URL', endpoint, 'Your OpenAI-compatible server (http://…).', 'endpoint_url');
  endpointField.hidden = true;
  const provider = h('select', { id: 'deploy-provider', onchange: () => {
    endpointField.hidden = provider.value !== 'external';
    endpoint.required = provider.value === 'external';
  } },
  h('option', { value: 'mock' }, 'mock (simulated)'),
  h('option', { value: 'external' }, 'external (my endpoint)'));
  return section('Deploy', inlineForm(async () => {
    const body = { model_id: model.value, provider: provider.value };
    if (provider.value === 'external') body.endpoint_url = endpoint.value.trim();
    await post('/deployments', body);
    await redraw();
    notify('Deployment started.');
  }, field('Model', model, null, 'model_id'), field('Provider', provider, null, 'provider'), endpointField,
  h('button', { type: 'submit', id: 'deploy-button', disabled: !models.length }, 'Deploy')));
}

// Models visible in this workspace: the public catalogue and the organization's own, with a
// filter by owner. Writers (/auth/me: models.create/update/delete) manage the models of the
// workspace they are in: their organization's, or the public catalogue for a platform admin
// in Personal; the server decides, this page only hides what cannot apply.

import { all, del, post, put } from '../api.js';
import { approvalButtons } from '../approvals.js';
import { activationState, attempt, badge, field, h, inlineForm, mount, notify, scopeBadge, section, table } from '../dom.js';

/** Models of the catalogue this workspace writes to. */
const ownedHere = (ctx, m) => (ctx.me.current_organization_id
  ? m.organization_id === ctx.me.current_organization_id
  : m.visibility === 'public');

const FILTERS = { all: () => true, public: (m) => m.visibility === 'public', org: (m) => m.visibility !== 'public' };

export async function renderModels(main, ctx, state = { filter: 'all', editing: null }) {
  const redraw = (next = {}) => renderModels(main, ctx, { ...state, editing: null, ...next });
  const models = await all('/models');
  const inOrg = Boolean(ctx.me.current_organization_id);
  const shown = models.filter(FILTERS[state.filter] || FILTERS.all);
  const rows = shown.map((m) => {
    const mine = ownedHere(ctx, m);
    return h('tr', { 'data-model': m.model_id },
      h('td', { class: 'name' }, m.name),
      h('td', {}, h('code', {}, m.model_id)),
      h('td', {}, scopeBadge(m)),
      h('td', { class: 'vram' }, `${m.required_vram_gb} GB`),
      h('td', {}, String(m.context_length)),
      h('td', {}, m.is_active ? badge('active', 'ok') : badge('inactive', 'neutral')),
      // An org model serves no traffic until its two approvals (the public catalogue needs none).
      h('td', { class: 'activation' }, activationState(m)),
      h('td', { class: 'actions' },
        inOrg && m.visibility === 'org' ? approvalButtons(ctx, m, `/models/${m.id}`, () => redraw()) : null,
        mine && ctx.can('models.update') ? h('button', { type: 'button', class: 'secondary', 'data-action': 'edit', onclick: () => redraw({ editing: m.id }) }, 'Edit') : null,
        mine && ctx.can('models.delete') ? h('button', { type: 'button', class: 'danger', 'data-action': 'delete', onclick: () => attempt(async () => {
          if (!window.confirm(`Delete the model ${m.name}?`)) return;
          await del(`/models/${m.id}`);
          await redraw();
          notify(`Model ${m.name} deleted.`);
        }) }, 'Delete') : null));
  });
  const filter = h('select', { id: 'model-filter', onchange: (e) => redraw({ filter: e.target.value }) },
    h('option', { value: 'all', selected: state.filter === 'all' }, 'All'),
    h('option', { value: 'public', selected: state.filter === 'public' }, 'Public catalogue'),
    inOrg ? h('option', { value: 'org', selected: state.filter === 'org' }, `${ctx.me.current_organization_name} only`) : null);
  const edited = state.editing && models.find((m) => m.id === state.editing);
  mount(main, h('h1', {}, 'Models'),
    section('Models', h('div', { class: 'toolbar' }, field('Show', filter)),
      table('Models you can use here', ['Name', 'Model', 'Owner', 'VRAM', 'Context', 'State', 'Activation', ''], rows, 'No model matches.')),
    edited ? section(`Edit ${edited.name}`, modelForm('edit', edited, async (body) => {
      await put(`/models/${edited.id}`, body);
      await redraw();
      notify(`Model ${body.name} saved.`);
    }, () => redraw())) : null,
    ctx.can('models.create') ? section(inOrg ? `Add a model to ${ctx.me.current_organization_name}` : 'Add a model to the public catalogue',
      modelForm('new', null, async (body) => {
        await post('/models', body);
        await redraw();
        notify(`Model ${body.name} added.`);
      })) : null);
}

/** The fields of a model; `prefix` keeps the ids of the edit and create forms apart. */
function modelForm(prefix, m, save, cancel) {
  const name = h('input', { id: `${prefix}-model-name`, required: true, maxlength: 100, value: m ? m.name : '' });
  const modelId = h('input', { id: `${prefix}-model-id`, required: true, maxlength: 200, value: m ? m.model_id : '', placeholder: 'e.g. meta/llama-3-8b' });
  const vram = h('input', { id: `${prefix}-model-vram`, type: 'number', min: 1, required: true, value: m ? m.required_vram_gb : 16 });
  const context = h('input', { id: `${prefix}-model-context`, type: 'number', min: 1, required: true, value: m ? m.context_length : 8192 });
  const active = h('input', { id: `${prefix}-model-active`, type: 'checkbox', checked: m ? m.is_active : true });
  return inlineForm(() => save({
    name: name.value.trim(),
    model_id: modelId.value.trim(),
    required_vram_gb: Number(vram.value),
    context_length: Number(context.value),
    is_active: active.checked,
  }), field('Name', name, null, 'name'), field('Model id', modelId, null, 'model_id'),
  field('VRAM (GB)', vram, null, 'required_vram_gb'), field('Context length', context, null, 'context_length'),
  field('Active', active, null, 'is_active'),
  h('button', { type: 'submit', id: `${prefix}-model-save` }, m ? 'Save' : 'Add'),
  cancel ? h('button', { type: 'button', class: 'secondary', onclick: cancel }, 'Cancel') : null);
}

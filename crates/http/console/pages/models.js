// Models visible in this workspace: the public catalogue and the organization's own.

import { all } from '../api.js';
import { badge, h, mount, scopeBadge, section, table } from '../dom.js';

export async function renderModels(main) {
  const models = await all('/models');
  const rows = models.map((m) => h('tr', { 'data-model': m.model_id },
    h('td', {}, m.name),
    h('td', {}, h('code', {}, m.model_id)),
    h('td', {}, scopeBadge(m)),
    h('td', {}, `${m.required_vram_gb} GB`),
    h('td', {}, String(m.context_length)),
    h('td', {}, m.is_active ? badge('active', 'ok') : badge('inactive', 'neutral'))));
  mount(main, h('h1', {}, 'Models'),
    section('Models', table('Models you can use here', ['Name', 'Model', 'Owner', 'VRAM', 'Context', 'State'], rows)));
}

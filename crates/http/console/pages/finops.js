// FinOps: the current burn rate, instance costs by day (a bar chart, with its table), and
// model-sharing usage — what this workspace spends and, for an organization that shares,
// what it earns — grouped by day, offering, API key or counterparty organization. The API
// groups by ids; the names come from the lists this workspace can read (else a short id).

import { all, get } from '../api.js';
import { field, h, money, mount, section, table } from '../dom.js';

function range(days) {
  const to = new Date();
  const from = new Date(to.getTime() - days * 86400000);
  return `from=${encodeURIComponent(from.toISOString())}&to=${encodeURIComponent(to.toISOString())}`;
}

const GROUPS = { day: 'day', offering: 'offering', api_key: 'API key', organization: 'organization' };

/** A horizontal bar chart: one labelled bar per group, widths relative to the largest. */
function bars(caption, groups) {
  const max = Math.max(1, ...groups.map((g) => g.value));
  return h('figure', { class: 'chart' },
    h('figcaption', {}, caption),
    h('ul', { class: 'bars' }, groups.map((g) => {
      const bar = h('span', { class: 'bar', 'aria-hidden': 'true' });
      // Through the CSSOM: the page's CSP forbids inline style attributes.
      bar.style.setProperty('--w', `${Math.max(1, Math.round((g.value / max) * 100))}%`);
      return h('li', {}, h('span', { class: 'bar-label' }, g.label), bar, h('span', { class: 'bar-value' }, g.text));
    })));
}

/** id → readable name, from what this workspace may list; failures leave short ids. */
async function names(ctx) {
  const map = new Map();
  const add = (id, name) => { if (id && name) map.set(String(id), name); };
  const quiet = (p) => p.catch(() => []);
  const inOrg = Boolean(ctx.me.current_organization_id);
  const [keys, offerings, given, received] = await Promise.all([
    quiet(all('/api_keys')),
    inOrg ? quiet(all('/organizations/current/offerings')) : [],
    inOrg ? quiet(all('/organizations/current/shares?side=provider')) : [],
    inOrg ? quiet(all('/organizations/current/shares?side=consumer')) : [],
  ]);
  keys.forEach((k) => add(k.id, `key ${k.name}`));
  offerings.forEach((o) => add(o.id, o.name_for_clients));
  for (const s of [...given, ...received]) {
    add(s.offering_id, s.name_for_clients);
    add(s.provider_organization.id, s.provider_organization.name);
    add(s.consumer_organization.id, s.consumer_organization.name);
  }
  return (key) => map.get(key) || (key === 'none' ? '— (none)' : /^[0-9a-f-]{36}$/.test(key) ? `#${key.slice(0, 8)}` : key);
}

async function usageSection(side, title, groupBy, label) {
  try {
    const report = await get(`/finops/usage?${range(30)}&side=${side}&group_by=${groupBy}`);
    const rows = report.groups.map((g) => h('tr', { 'data-group': label(g.key) },
      h('td', {}, label(g.key)), h('td', {}, String(g.requests)),
      h('td', {}, `${g.input_tokens} / ${g.output_tokens}`), h('td', { class: 'charged' }, money(g.charged_micros))));
    return section(title,
      h('p', { class: 'total', 'data-side': side }, `Total: ${money(report.total.charged_micros)} for ${report.total.requests} requests (${report.total.input_tokens} input, ${report.total.output_tokens} output tokens).`),
      rows.length ? [
        bars(`${title} by ${GROUPS[groupBy]}`, report.groups.map((g) => ({ label: label(g.key), value: g.charged_micros, text: money(g.charged_micros) }))),
        table(`${title} by ${GROUPS[groupBy]}`, [GROUPS[groupBy][0].toUpperCase() + GROUPS[groupBy].slice(1), 'Requests', 'Tokens in / out', 'Charged'], rows),
      ] : h('p', { class: 'empty' }, 'No usage in the last 30 days.'));
  } catch (err) {
    return section(title, h('p', { class: 'empty' }, err.message));
  }
}

export async function renderFinops(main, ctx, groupBy = 'offering') {
  const [current, costs, label] = await Promise.all([
    get('/finops/cost/current'),
    get(`/finops/dashboard/costs?${range(30)}&group_by=day`),
    names(ctx),
  ]);
  const days = costs.groups.map((g) => ({ label: g.label || g.key, value: g.cost_micros, text: money(g.cost_micros) }));
  const group = h('select', { id: 'usage-group', onchange: (e) => renderFinops(main, ctx, e.target.value) },
    Object.entries(GROUPS).map(([value, text]) => h('option', { value, selected: value === groupBy }, `by ${text}`)));
  const parts = [
    h('h1', {}, 'FinOps'),
    section('Now', h('p', { id: 'burn-rate' }, `${money(current.hourly_micros)} per hour across ${current.instances} running instance(s).`)),
    section('Instance costs, last 30 days',
      h('p', {}, `Total: ${money(costs.total_micros)}`),
      days.length ? bars('Cost by day', days) : h('p', { class: 'empty' }, 'No cost in the last 30 days.'),
      table('Cost by day', ['Day', 'Cost'], costs.groups.map((g) => h('tr', {}, h('td', {}, g.label || g.key), h('td', {}, money(g.cost_micros)))), '')),
    h('div', { class: 'toolbar' }, field('Group usage', group)),
    h('div', { id: 'usage-spend' }, await usageSection('consumer', 'Models used (spend)', groupBy, label)),
  ];
  if (ctx.me.current_organization_id && ctx.hasModule('sharing')) {
    parts.push(h('div', { id: 'usage-revenue' }, await usageSection('provider', 'Shared models provided (revenue)', groupBy, label)));
  }
  mount(main, ...parts);
}

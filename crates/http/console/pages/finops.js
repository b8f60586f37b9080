// FinOps: the current burn rate, instance costs by day (a bar chart, with its table), and
// model-sharing usage by offering (what this organization spends, and earns as a provider).

import { get } from '../api.js';
import { h, money, mount, section, table } from '../dom.js';

function range(days) {
  const to = new Date();
  const from = new Date(to.getTime() - days * 86400000);
  return `from=${encodeURIComponent(from.toISOString())}&to=${encodeURIComponent(to.toISOString())}`;
}

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

async function usageSection(side, title) {
  try {
    const report = await get(`/finops/usage?${range(30)}&side=${side}&group_by=offering`);
    const groups = report.groups.map((g) => ({ label: g.key, value: g.charged_micros, text: money(g.charged_micros) }));
    return section(title,
      h('p', {}, `Total: ${money(report.total.charged_micros)} for ${report.total.requests} requests (${report.total.input_tokens} input, ${report.total.output_tokens} output tokens).`),
      groups.length ? bars(`${title} by offering`, groups) : h('p', { class: 'empty' }, 'No usage in the last 30 days.'));
  } catch (err) {
    return section(title, h('p', { class: 'empty' }, err.message));
  }
}

export async function renderFinops(main, ctx) {
  const current = await get('/finops/cost/current');
  const costs = await get(`/finops/dashboard/costs?${range(30)}&group_by=day`);
  const days = costs.groups.map((g) => ({ label: g.label || g.key, value: g.cost_micros, text: money(g.cost_micros) }));
  const parts = [
    h('h1', {}, 'FinOps'),
    section('Now', h('p', { id: 'burn-rate' }, `${money(current.hourly_micros)} per hour across ${current.instances} running instance(s).`)),
    section('Instance costs, last 30 days',
      h('p', {}, `Total: ${money(costs.total_micros)}`),
      days.length ? bars('Cost by day', days) : h('p', { class: 'empty' }, 'No cost in the last 30 days.'),
      table('Cost by day', ['Day', 'Cost'], costs.groups.map((g) => h('tr', {}, h('td', {}, g.label || g.key), h('td', {}, money(g.cost_micros)))), '')),
  ];
  if (ctx.me.current_organization_id) {
    parts.push(await usageSection('consumer', 'Shared models used (spend)'));
    if (ctx.hasModule('sharing')) parts.push(await usageSection('provider', 'Shared models provided (revenue)'));
  }
  mount(main, ...parts);
}

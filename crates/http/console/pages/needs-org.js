// An org-only page opened from Personal (seed §10): say why it is empty, and lead to creating
// an organization, or to switching to one of mine. Whichever is done, the console comes back
// to the page that needed it.

import { attempt, h, mount, section } from '../dom.js';

export function renderNeedsOrg(main, ctx, page) {
  const mine = ctx.orgs.map((o) => h('li', {},
    h('button', { type: 'button', class: 'secondary', 'data-switch': o.slug, onclick: () => attempt(() => {
      ctx.want(page.hash);
      return ctx.switchTo(o.id);
    }) }, `Switch to ${o.name}`)));
  mount(main,
    h('h1', {}, page.label),
    section('An organization is required',
      h('p', { id: 'needs-org' }, `${page.label} belongs to an organization; you are in your personal workspace.`),
      h('p', {}, h('a', {
        id: 'create-org-link',
        href: '#/organizations',
        onclick: () => ctx.want(page.hash),
      }, 'Create an organization'), mine.length ? ' or switch to one of yours:' : '.'),
      mine.length ? h('ul', { class: 'plain' }, mine) : null));
}

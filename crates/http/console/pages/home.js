// Home: where you are and what you can do here.

import { h, mount, section } from '../dom.js';

export function renderHome(main, ctx) {
  const me = ctx.me;
  const where = me.current_organization_id
    ? `You are working in ${me.current_organization_name} as ${me.current_organization_role}.`
    : 'You are working in your personal workspace.';
  mount(main,
    h('h1', {}, `Hello ${me.first_name || me.username || me.email}`),
    section('This workspace', h('p', {}, where),
      h('p', {}, 'Switch workspace with the selector at the top; each browser session keeps its own.')),
    section('What you can do here',
      h('ul', { class: 'permissions' }, me.permissions.map((p) => h('li', {}, h('code', {}, p))))));
}

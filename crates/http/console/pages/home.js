// Home: who you are, where you are and, in words, what you can do here.

import { h, mount, section } from '../dom.js';

// Readable names of /auth/me's permission codes (the codes stay the API's; unknown ones show as is).
const LABELS = {
  'org.view': 'See this organization',
  'org.update': 'Rename the organization',
  'org.delete': 'Delete the organization',
  'org.leave': 'Leave the organization',
  'organizations.create': 'Create organizations',
  'members.view': 'See the members',
  'members.change_role': 'Change members’ roles',
  'members.remove': 'Remove members',
  'invitations.create': 'Invite people',
  'invitations.list': 'See invitations',
  'invitations.revoke': 'Revoke invitations',
  'invitations.resend': 'Resend invitations',
  'instances.view': 'See instances',
  'instances.deploy': 'Deploy instances',
  'instances.terminate': 'Terminate instances',
  'instances.reinstall': 'Reinstall instances',
  'models.view': 'See models',
  'models.create': 'Add models',
  'models.update': 'Edit models',
  'models.delete': 'Delete models',
  'activation.tech': 'Give the technical approval',
  'activation.eco': 'Give the economic approval',
  'offerings.view': 'See offerings',
  'offerings.manage': 'Offer and publish models',
  'shares.view': 'See shares',
  'shares.manage': 'Propose, pause and revoke shares',
  'prices.set': 'Set prices and spend caps',
  'shares.accept': 'Accept or decline shares',
  'shares.control_received': 'Pause or revoke received shares',
  'marketplace.view': 'Browse the marketplace',
  'access_requests.create': 'Request access to offerings',
  'access_requests.view': 'See access requests',
  'access_requests.decide': 'Approve or reject access requests',
  'api_keys.view': 'See API keys',
  'api_keys.create': 'Create API keys',
  'api_keys.revoke': 'Revoke API keys',
  'users.list': 'See users',
  'users.create': 'Create users',
  'users.update': 'Edit and disable accounts',
  'users.delete': 'Delete accounts',
  'finops.view': 'See costs and usage',
  'audit.view': 'Read the audit log',
  'inference.use': 'Call models through the API',
  'settings.manage': 'Manage settings',
};

export function renderHome(main, ctx) {
  const me = ctx.me;
  const name = [me.first_name, me.last_name].filter(Boolean).join(' ') || me.username || me.email;
  const where = me.current_organization_id
    ? `You are working in ${me.current_organization_name} as ${me.current_organization_role}.`
    : 'You are working in your personal workspace.';
  mount(main,
    h('h1', { id: 'greeting' }, `Hello ${name}`),
    section('This workspace', h('p', {}, where),
      h('p', {}, 'Switch workspace with the selector at the top; each browser session keeps its own.')),
    section('What you can do here',
      h('ul', { class: 'permissions' }, me.permissions.map((p) => h('li', { title: p, 'data-permission': p }, LABELS[p] || p)))));
}

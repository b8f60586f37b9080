// /invitations/<token> — the public page the invitation email links to: who invites you to
// which organization with which role; accepting creates the account when there is none.

import { get, post, put } from '../api.js';
import { attempt, errorSlot, field, h, mount, when } from '../dom.js';

export async function renderInvitation(root, token) {
  const main = h('main', { id: 'main', class: 'public' });
  mount(root, main);
  let invite;
  try {
    invite = await get(`/organizations/invitations/${encodeURIComponent(token)}`);
  } catch (err) {
    mount(main, h('div', { class: 'card narrow' }, h('h1', {}, 'Invitation'),
      h('p', { class: 'error', role: 'alert' }, err.message),
      h('p', {}, h('a', { href: '/' }, 'Go to the console'))));
    return;
  }
  let signedIn = null;
  try {
    signedIn = await get('/auth/me');
  } catch {
    signedIn = null;
  }
  const error = errorSlot();
  const accept = async (body, askToSwitch = false) => {
    await attempt(async () => {
      const joined = await post(`/organizations/invitations/${encodeURIComponent(token)}/accept`, body);
      // A new account's session is already in the organization. An existing account's session
      // stays where it was: switch it (asking first when it was already signed in, as it may
      // be working elsewhere), and say where the console now works once it has loaded.
      let notice = `You joined ${joined.organization_name} as ${joined.role}; this session now works in it.`;
      if (!joined.access_token) {
        if (!askToSwitch || window.confirm(`You joined ${joined.organization_name}. Work in it now?`)) {
          await put('/organizations/current', { organization_id: joined.organization_id });
        } else {
          notice = `You joined ${joined.organization_name} as ${joined.role}; switch to it with the workspace selector.`;
        }
      }
      sessionStorage.setItem('inventiv.notice', notice);
      location.assign('/#/');
    }, error);
  };
  const summary = h('dl', { class: 'facts' },
    h('dt', {}, 'Organization'), h('dd', { id: 'invite-org' }, invite.organization_name),
    h('dt', {}, 'Role'), h('dd', { id: 'invite-role' }, invite.role),
    h('dt', {}, 'Invited by'), h('dd', { id: 'invite-inviter' }, invite.invited_by || '—'),
    h('dt', {}, 'For'), h('dd', {}, invite.email),
    h('dt', {}, 'Expires'), h('dd', {}, when(invite.expires_at)));
  let action;
  if (!invite.account_exists) {
    const first = h('input', { id: 'accept-first-name', autocomplete: 'given-name' });
    const last = h('input', { id: 'accept-last-name', autocomplete: 'family-name' });
    const password = h('input', { id: 'accept-password', type: 'password', autocomplete: 'new-password', minlength: 8, required: true });
    action = h('form', {
      onsubmit: (e) => {
        e.preventDefault();
        accept({ password: password.value, first_name: first.value || null, last_name: last.value || null });
      },
    },
    h('p', {}, `Accepting creates your account for ${invite.email}.`),
    field('First name', first), field('Last name', last),
    field('Password', password, 'At least 8 characters.'),
    error,
    h('button', { type: 'submit', id: 'accept-submit' }, 'Create my account and join'));
  } else if (signedIn && signedIn.email.toLowerCase() === invite.email.toLowerCase()) {
    action = h('div', {}, error, h('button', { type: 'button', id: 'accept-submit', onclick: () => accept({}, true) }, `Join ${invite.organization_name}`));
  } else {
    const password = h('input', { id: 'accept-login-password', type: 'password', autocomplete: 'current-password', required: true });
    action = h('form', {
      onsubmit: async (e) => {
        e.preventDefault();
        await attempt(async () => {
          await post('/auth/login', { email: invite.email, password: password.value });
          await accept({});
        }, error);
      },
    },
    h('p', {}, `An account exists for ${invite.email}: sign in to accept.`),
    field('Password', password), error,
    h('button', { type: 'submit', id: 'accept-submit' }, 'Sign in and join'));
  }
  mount(main, h('div', { class: 'card narrow' },
    h('h1', {}, `Join ${invite.organization_name}`), summary, action));
  (action.querySelector('input') || action.querySelector('button'))?.focus();
}

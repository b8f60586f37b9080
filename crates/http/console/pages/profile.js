// My profile: names and username, and a password change while signed in (the server keeps
// this session and signs out the others).

import { put } from '../api.js';
import { field, h, inlineForm, mount, notify, section } from '../dom.js';

export function renderProfile(main, ctx) {
  const me = ctx.me;
  const first = h('input', { id: 'profile-first-name', autocomplete: 'given-name', maxlength: 100, value: me.first_name || '' });
  const last = h('input', { id: 'profile-last-name', autocomplete: 'family-name', maxlength: 100, value: me.last_name || '' });
  const username = h('input', { id: 'profile-username', autocomplete: 'nickname', maxlength: 64, value: me.username || '' });
  const names = inlineForm(async () => {
    await put('/auth/me', { first_name: first.value.trim(), last_name: last.value.trim(), username: username.value.trim() });
    await ctx.reload();
    notify('Profile saved.');
  }, field('First name', first, null, 'first_name'), field('Last name', last, null, 'last_name'),
  field('Username', username, null, 'username'), h('button', { type: 'submit', id: 'profile-save' }, 'Save'));

  const current = h('input', { id: 'password-current', type: 'password', autocomplete: 'current-password', required: true });
  const fresh = h('input', { id: 'password-new', type: 'password', autocomplete: 'new-password', minlength: 8, required: true });
  const again = h('input', { id: 'password-confirm', type: 'password', autocomplete: 'new-password', minlength: 8, required: true });
  const password = inlineForm(async () => {
    if (fresh.value !== again.value) throw new Error('The two new passwords differ.');
    await put('/auth/me/password', { current_password: current.value, new_password: fresh.value });
    for (const input of [current, fresh, again]) input.value = '';
    notify('Password changed; your other sessions were signed out.');
  }, field('Current password', current, null, 'current_password'),
  field('New password', fresh, 'At least 8 characters.', 'new_password'), field('New password again', again),
  h('button', { type: 'submit', id: 'password-submit' }, 'Change password'));

  mount(main, h('h1', {}, 'My profile'),
    section('Account', h('p', {}, 'Signed in as ', h('strong', {}, me.email), '.')),
    section('Names', names),
    section('Password', password));
}

// /reset-password?token=… — the page the reset email links to.

import { post } from '../api.js';
import { attempt, errorSlot, field, h, mount } from '../dom.js';

export function renderReset(root, token) {
  const password = h('input', { id: 'new-password', type: 'password', autocomplete: 'new-password', minlength: 8, required: true });
  const confirm = h('input', { id: 'confirm-password', type: 'password', autocomplete: 'new-password', minlength: 8, required: true });
  const error = errorSlot();
  const done = h('div', { id: 'reset-done', role: 'status' });
  const form = h('form', {
    class: 'card narrow',
    onsubmit: async (e) => {
      e.preventDefault();
      if (password.value !== confirm.value) {
        error.textContent = 'The two passwords differ.';
        return;
      }
      await attempt(async () => {
        await post('/auth/password-reset/confirm', { token, new_password: password.value });
        mount(done, h('p', {}, 'Your password is changed and your other sessions are signed out. ',
          h('a', { href: '/', id: 'go-sign-in' }, 'Sign in')));
        form.hidden = true;
      }, error);
    },
  },
  h('h1', {}, 'Choose a new password'),
  token ? null : h('p', { class: 'error', role: 'alert' }, 'This link has no token: request a new one from the sign-in page.'),
  field('New password', password, 'At least 8 characters.'),
  field('Repeat it', confirm),
  error,
  h('button', { type: 'submit', id: 'reset-submit', disabled: !token }, 'Change password'));
  mount(root, h('main', { id: 'main', class: 'public' }, form, done));
  password.focus();
}

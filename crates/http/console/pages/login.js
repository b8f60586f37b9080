// Sign-in, and the "forgot password" request (the emailed link opens /reset-password).

import { post } from '../api.js';
import { attempt, errorSlot, field, h, mount, notify } from '../dom.js';

export function renderLogin(root, onSignedIn) {
  const email = h('input', { id: 'login-email', type: 'email', name: 'email', autocomplete: 'username', required: true });
  const password = h('input', { id: 'login-password', type: 'password', name: 'password', autocomplete: 'current-password', required: true });
  const error = errorSlot();
  const form = h('form', {
    class: 'card narrow',
    'aria-labelledby': 'login-title',
    onsubmit: async (e) => {
      e.preventDefault();
      await attempt(async () => {
        await post('/auth/login', { email: email.value.trim(), password: password.value });
        await onSignedIn();
      }, error);
    },
  },
  h('h1', { id: 'login-title' }, 'Sign in to Inventiv'),
  field('Email', email),
  field('Password', password),
  error,
  h('button', { type: 'submit', id: 'login-submit' }, 'Sign in'));

  const resetEmail = h('input', { id: 'reset-email', type: 'email', autocomplete: 'email', required: true });
  const resetError = errorSlot();
  const reset = h('details', { class: 'card narrow' },
    h('summary', {}, 'Forgot your password?'),
    h('form', {
      onsubmit: async (e) => {
        e.preventDefault();
        await attempt(async () => {
          await post('/auth/password-reset/request', { email: resetEmail.value.trim() });
          notify('If an account exists for this address, a reset link is on its way.');
        }, resetError);
      },
    },
    field('Email', resetEmail),
    resetError,
    h('button', { type: 'submit', id: 'reset-request' }, 'Email me a reset link')));
  mount(root, h('main', { id: 'main', class: 'public' }, form, reset));
  email.focus();
}

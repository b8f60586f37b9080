// Small DOM helpers: element building, formatting, badges and the status line.

/** h('button', {class: 'x', onclick: f}, 'text', child…) */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2), value);
    } else if (key === 'class') {
      el.className = value;
    } else if (key in el && typeof value !== 'string') {
      el[key] = value;
    } else {
      el.setAttribute(key, value === true ? '' : value);
    }
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function mount(root, ...nodes) {
  root.replaceChildren(...nodes.flat().filter(Boolean));
}

/** micro-EUR as euros, with enough decimals for small amounts. */
export function money(micros) {
  const euros = Number(micros || 0) / 1e6;
  const digits = euros !== 0 && Math.abs(euros) < 1 ? 4 : 2;
  return `€${euros.toFixed(digits)}`;
}

export function when(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
}

export function badge(text, kind = 'neutral') {
  return h('span', { class: `badge badge-${kind}` }, text);
}

/** Personal / Org: <name> / Public, as the seed's frontend shows ownership. */
export function scopeBadge(item) {
  if (item.scope === 'personal' || item.visibility === 'personal') return badge('Personal', 'personal');
  if (item.visibility === 'public' || (item.organization_id === null && item.scope !== 'org')) {
    return badge('Public', 'public');
  }
  return badge(`Org: ${item.organization_name || 'organization'}`, 'org');
}

const FLAG_NAMES = { tech: 'technical', eco: 'economic', model: "model's" };

/** "operational" or "non-operational: waiting for the economic approval". */
export function activationState(item) {
  if (item.operational) return badge('operational', 'ok');
  const missing = (item.missing_activation || []).map((f) => FLAG_NAMES[f] || f);
  const text = missing.length
    ? `non-operational: waiting for the ${missing.join(' and ')} approval`
    : 'non-operational';
  return badge(text, 'warn');
}

let toastTimer = null;
/** Announces a message in the status line (aria-live). */
export function notify(message, kind = 'info') {
  const toast = document.getElementById('toast');
  if (!toast) return;
  toast.className = `toast toast-${kind}`;
  toast.textContent = message;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { toast.textContent = ''; toast.className = ''; }, kind === 'error' ? 8000 : 4000);
}

/** An error from the API, shown as its `message` (SPEC §4 error body). */
export function errorText(err) {
  return err && err.message ? err.message : String(err);
}

/** Hides an error still shown in the status line (a later success makes it stale). */
export function clearError() {
  const toast = document.getElementById('toast');
  if (toast && toast.classList.contains('toast-error')) {
    clearTimeout(toastTimer);
    toast.textContent = '';
    toast.className = '';
  }
}

/**
 * The API's validation failures (`fields`: name → reason) put under the controls they concern,
 * named by their labels rather than the API's field names. Returns the text for the status line.
 */
function showFieldErrors(err, form) {
  const named = [];
  for (const [name, reason] of Object.entries(err.fields || {})) {
    const label = form && form.querySelector(`[data-field="${name}"]`);
    if (label) {
      label.classList.add('invalid');
      label.append(h('small', { class: 'field-error' }, reason));
      named.push(`${label.querySelector('span').textContent}: ${reason}`);
    } else {
      named.push(reason);
    }
  }
  return named.length ? named.join(' ') : errorText(err);
}

/** Runs `action`, reporting its failure in `where` (an element) and the status line. */
export async function attempt(action, where) {
  const form = where && where.closest('form');
  if (where) where.textContent = '';
  if (form) {
    form.querySelectorAll('.field-error').forEach((e) => e.remove());
    form.querySelectorAll('.invalid').forEach((e) => e.classList.remove('invalid'));
  }
  try {
    const result = await action();
    clearError();
    return result;
  } catch (err) {
    const text = err && err.fields ? showFieldErrors(err, form) : errorText(err);
    if (where) where.textContent = text;
    notify(text, 'error');
    return undefined;
  }
}

export function errorSlot() {
  return h('p', { class: 'error', role: 'alert' });
}

/** An inline form: submitting it runs `action`, whose error is shown under the controls. */
export function inlineForm(action, ...controls) {
  const error = errorSlot();
  return h('form', {
    class: 'inline',
    onsubmit: async (e) => {
      e.preventDefault();
      await attempt(action, error);
    },
  }, ...controls, error);
}

/** A labelled form control; `name` is the API's field name, for its validation errors. */
export function field(label, control, hint, name) {
  return h('label', { class: 'field', 'data-field': name }, h('span', {}, label), control, hint ? h('small', {}, hint) : null);
}

export function table(caption, headers, rows, empty = 'Nothing yet.') {
  if (!rows.length) return h('p', { class: 'empty' }, empty);
  // Each cell names its column, which phone width shows when rows become cards.
  for (const row of rows) {
    [...row.children].forEach((cell, i) => cell.setAttribute('data-label', headers[i] || ''));
  }
  return h('div', { class: 'table-wrap' },
    h('table', {},
      h('caption', {}, caption),
      h('thead', {}, h('tr', {}, headers.map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, rows)));
}

export function section(title, ...children) {
  return h('section', { class: 'card' }, h('h2', {}, title), ...children);
}

/**
 * What is spent this month and held for calls in flight, against a monthly cap: a bar (spent,
 * then reserved, on the cap's scale) and the figures; without a cap, the figures only.
 */
export function capBar(spent = 0, reserved = 0, cap = null) {
  const figures = `${money(spent)} spent + ${money(reserved)} reserved`;
  if (cap == null) return h('div', { class: 'cap-figures' }, `${figures} · no cap`);
  const reached = spent + reserved >= cap;
  const scale = Math.max(cap, spent + reserved, 1);
  const part = (cls, value) => {
    const el = h('span', { class: cls });
    el.style.setProperty('--w', `${(value / scale) * 100}%`);
    return el;
  };
  return h('div', { class: reached ? 'capbar reached' : 'capbar' },
    h('div', { class: 'capbar-track', role: 'img', 'aria-label': `${figures} of a ${money(cap)} cap` },
      part('capbar-spent', spent), part('capbar-reserved', reserved)),
    h('div', { class: 'cap-figures' }, `${figures} of ${money(cap)}`, reached ? badge('cap reached', 'warn') : null));
}

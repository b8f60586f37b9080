// The Inventiv console: a single page over the public REST API. Public pages (invitation
// links, password reset) are addressed by path, as the emails link to them; the signed-in
// pages by hash (#/members…). Navigation shows only the modules /auth/me returns.

import { ApiError, all, forgetWorkspace, get, onSessionEvents, post, put, showWorkspace } from './api.js';
import { attempt, badge, h, mount, notify } from './dom.js';
import { renderLogin } from './pages/login.js';
import { renderReset } from './pages/reset.js';
import { renderInvitation } from './pages/invitation.js';
import { renderHome } from './pages/home.js';
import { renderOrganizations } from './pages/organizations.js';
import { renderMembers } from './pages/members.js';
import { renderSessions } from './pages/sessions.js';
import { renderInstances } from './pages/instances.js';
import { renderModels } from './pages/models.js';
import { renderKeys } from './pages/keys.js';
import { renderFinops } from './pages/finops.js';
import { renderAudit, renderPlatformAudit } from './pages/audit.js';
import { renderWorkbench } from './pages/workbench.js';
import { renderSharing } from './pages/sharing.js';
import { renderSettings } from './pages/settings.js';
import { renderProfile } from './pages/profile.js';
import { renderNeedsOrg } from './pages/needs-org.js';
import { renderUsers } from './pages/users.js';
import { renderMarketplace } from './pages/marketplace.js';

// Nav entries: the module /auth/me must list for the entry to show (null: always). `orgOnly`
// pages exist only in an organization workspace (they read /organizations/current/…): in
// Personal they stay in the nav with an "Org required" badge and lead to creating or choosing
// an organization (seed §10) instead of disappearing.
const PAGES = [
  { hash: '', label: 'Home', module: 'dashboard', render: renderHome },
  { hash: 'organizations', label: 'Organizations', module: 'organizations', render: renderOrganizations },
  { hash: 'settings', label: 'Organization settings', module: 'organizations', orgOnly: true, render: renderSettings },
  { hash: 'members', label: 'Members', module: 'members', orgOnly: true, render: renderMembers },
  { hash: 'users', label: 'Users', module: 'users', render: renderUsers },
  { hash: 'instances', label: 'Instances', module: 'instances', render: renderInstances },
  { hash: 'models', label: 'Models', module: 'models', render: renderModels },
  { hash: 'api-keys', label: 'API keys', module: 'api_keys', render: renderKeys },
  { hash: 'sharing', label: 'Sharing', module: 'sharing', orgOnly: true, render: renderSharing },
  // No module of its own: shown to whoever may read it (every member of an org).
  { hash: 'marketplace', label: 'Marketplace', permission: 'marketplace.view', orgOnly: true, render: renderMarketplace },
  { hash: 'workbench', label: 'Workbench', module: 'workbench', render: renderWorkbench },
  { hash: 'finops', label: 'FinOps', module: 'finops', render: renderFinops },
  { hash: 'audit', label: 'Audit log', module: 'audit', orgOnly: true, render: renderAudit },
  { hash: 'platform-audit', label: 'Platform audit', permission: 'platform_audit.view', render: renderPlatformAudit },
  { hash: 'profile', label: 'My profile', module: null, render: renderProfile },
  { hash: 'sessions', label: 'My sessions', module: null, render: renderSessions },
];

const app = document.getElementById('app');

/** What every signed-in page gets. */
const ctx = {
  me: null,
  orgs: [],
  can(permission) {
    return Boolean(ctx.me && ctx.me.permissions.includes(permission));
  },
  hasModule(id) {
    return Boolean(ctx.me && ctx.me.modules.some((m) => m.id === id));
  },
  /** Re-reads /auth/me and the organizations, then redraws the shell and the page. */
  async reload() {
    // Read without the precondition: this is how the tab learns where the session is now.
    forgetWorkspace();
    ctx.me = await get('/auth/me');
    showWorkspace(ctx.me.current_organization_id);
    ctx.orgs = await all('/organizations');
    await showApp();
  },
  async switchTo(orgId) {
    await put('/organizations/current', { organization_id: orgId || null });
    location.hash = `#/${orgId ? takeWanted() : ''}`;
    await ctx.reload();
  },
  /** Remembers the org-only page that sent the user to create or choose an organization. */
  want(hash) {
    sessionStorage.setItem('inventiv.wanted', hash);
  },
  /** After creating an organization: the page that needed one, else Home. */
  async landInNewOrg() {
    location.hash = `#/${takeWanted()}`;
    await ctx.reload();
  },
};

function takeWanted() {
  const wanted = sessionStorage.getItem('inventiv.wanted') || '';
  sessionStorage.removeItem('inventiv.wanted');
  return wanted;
}

const inOrg = () => Boolean(ctx.me.current_organization_id);

/** An org-only page seen from Personal, by someone who could create an organization. */
const needsOrg = (p) => p.orgOnly && !inOrg() && ctx.can('organizations.create');

function visiblePages() {
  const allowed = (p) => (p.permission ? ctx.can(p.permission) : p.module === null || ctx.hasModule(p.module));
  return PAGES.filter((p) => allowed(p) || needsOrg(p))
    // In Personal an org-only page with a module listed anyway is still an org page.
    .filter((p) => !p.orgOnly || inOrg() || needsOrg(p));
}

function currentPage() {
  const hash = location.hash.replace(/^#\/?/, '').split('?')[0];
  const visible = visiblePages();
  return visible.find((p) => p.hash === hash) || visible[0];
}

function banner() {
  const me = ctx.me;
  const text = me.current_organization_id
    ? [h('strong', {}, `Org: ${me.current_organization_name}`), ' — your role: ', h('strong', { 'data-role': me.current_organization_role }, me.current_organization_role)]
    : [h('strong', {}, 'Personal'), ' — your own resources'];
  return h('div', { id: 'workspace-banner', class: me.current_organization_id ? 'banner banner-org' : 'banner banner-personal', role: 'note', 'aria-label': 'Current workspace' },
    'Workspace: ', ...text);
}

function switcher() {
  const select = h('select', { id: 'workspace-switcher', onchange: (e) => attempt(() => ctx.switchTo(e.target.value)) },
    h('option', { value: '', selected: !ctx.me.current_organization_id }, 'Personal'),
    ctx.orgs.map((o) => h('option', { value: o.id, selected: o.id === ctx.me.current_organization_id }, `${o.name} (${o.role})`)));
  return h('label', { class: 'switcher' }, h('span', {}, 'Workspace'), select);
}

async function signOut() {
  await attempt(async () => {
    await post('/auth/logout');
    ctx.me = null;
    location.hash = '#/';
    showLogin();
  });
}

async function showApp(focusMain = false) {
  const page = currentPage();
  const nav = h('nav', { 'aria-label': 'Modules' }, h('ul', {},
    visiblePages().map((p) =>
      h('li', {}, h('a', { href: `#/${p.hash}`, 'aria-current': p === page ? 'page' : null, 'data-module': p.module || p.hash },
        p.label, needsOrg(p) ? badge('Org required', 'org') : null)))));
  const main = h('main', { id: 'main', tabindex: '-1' });
  mount(app,
    h('header', { class: 'topbar' },
      h('a', { class: 'brand', href: '#/' }, 'Inventiv'),
      switcher(),
      h('span', { class: 'who' }, ctx.me.email),
      h('button', { type: 'button', class: 'secondary', id: 'sign-out', onclick: signOut }, 'Sign out')),
    banner(),
    h('div', { class: 'layout' }, nav, main));
  app.removeAttribute('aria-busy');
  document.title = `${page.label} · Inventiv`;
  try {
    await (needsOrg(page) ? renderNeedsOrg(main, ctx, page) : page.render(main, ctx));
  } catch (err) {
    mount(main, h('p', { class: 'error', role: 'alert' }, err.message));
  }
  // After a navigation, keyboard and screen-reader users continue in the new page.
  if (focusMain) main.focus();
}

function showLogin() {
  app.removeAttribute('aria-busy');
  renderLogin(app, async () => {
    await ctx.reload();
    notify('Signed in.');
  });
}

async function boot() {
  const path = location.pathname;
  if (path.startsWith('/invitations/')) {
    renderInvitation(app, decodeURIComponent(path.slice('/invitations/'.length)));
    app.removeAttribute('aria-busy');
    return;
  }
  if (path === '/reset-password') {
    renderReset(app, new URLSearchParams(location.search).get('token') || '');
    app.removeAttribute('aria-busy');
    return;
  }
  try {
    await ctx.reload();
    // A notice left by the page before a reload (an accepted invitation switched workspace).
    const notice = sessionStorage.getItem('inventiv.notice');
    if (notice) {
      sessionStorage.removeItem('inventiv.notice');
      notify(notice);
    }
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      showLogin();
    } else {
      mount(app, h('p', { class: 'error', role: 'alert' }, err.message));
    }
  }
}

// Another tab may have switched the session's workspace, or an admin removed this member:
// re-read /auth/me when the tab comes back, and when the server refuses a request for it.
async function recheckWorkspace(reason) {
  if (!ctx.me || location.pathname !== '/') return;
  const before = ctx.me.current_organization_id;
  const name = ctx.me.current_organization_name;
  await ctx.reload();
  if (ctx.me.current_organization_id !== before) {
    const now = ctx.me.current_organization_id ? `Org: ${ctx.me.current_organization_name}` : 'Personal';
    notify(`${reason} The workspace changed from ${before ? `Org: ${name}` : 'Personal'} to ${now}; nothing was done there. Check before trying again.`, 'error');
  }
}

onSessionEvents({
  workspaceChanged: () => { recheckWorkspace('This tab was out of date.').catch(() => {}); },
  // The session was revoked or expired: back to sign-in, not a page full of errors.
  signedOut: () => {
    if (!ctx.me) return;
    ctx.me = null;
    forgetWorkspace();
    showLogin();
    notify('Your session ended; sign in again.', 'error');
  },
});

document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'visible' && ctx.me) {
    get('/auth/me').then((me) => {
      if (me.current_organization_id !== ctx.me.current_organization_id
          || me.current_organization_role !== ctx.me.current_organization_role) {
        recheckWorkspace('This tab was out of date.').catch(() => {});
      }
    }).catch(() => {});
  }
});

window.addEventListener('hashchange', () => {
  if (ctx.me && location.pathname === '/') showApp(true);
});
boot();

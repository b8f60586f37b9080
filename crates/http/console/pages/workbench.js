// The workbench: projects and runs of this workspace (mine, plus what colleagues share with
// the org), and a run's conversation with its model through the proxy — the answer streams
// in token by token. Only a run's owner writes it; a colleague's shared run is read-only
// (the server refuses anything else with 403 workbench_owner_only).

import { all, del, get, patch, post, stream } from '../api.js';
import { attempt, badge, field, h, inlineForm, mount, notify, section, table, when } from '../dom.js';

export async function renderWorkbench(main, ctx, open = null) {
  if (open) return renderRun(main, ctx, open);
  const redraw = () => renderWorkbench(main, ctx);
  const inOrg = Boolean(ctx.me.current_organization_id);
  const [projects, runs] = await Promise.all([all('/workbench/projects'), all('/workbench/runs')]);
  let models = [];
  try {
    models = (await get('/v1/models')).data.map((m) => m.id);
  } catch {
    models = [];
  }
  const projectName = new Map(projects.map((p) => [p.id, p.name]));
  const shared = (item) => (item.shared_with_org ? badge(item.is_mine ? 'shared with the org' : 'shared by a colleague', 'ok') : badge('private', 'neutral'));
  const runRows = runs.map((r) => h('tr', { 'data-run': r.title },
    h('td', {}, h('a', { href: '#/workbench', onclick: (e) => { e.preventDefault(); renderWorkbench(main, ctx, r.id); } }, r.title)),
    h('td', {}, h('code', {}, r.model)),
    h('td', {}, r.project_id ? projectName.get(r.project_id) || '—' : '—'),
    h('td', {}, shared(r)),
    h('td', {}, String(r.message_count)),
    h('td', {}, when(r.updated_at))));
  const projectRows = projects.map((p) => h('tr', { 'data-project': p.name },
    h('td', {}, p.name), h('td', {}, p.description || '—'), h('td', {}, shared(p))));

  const write = ctx.can('workbench.use');
  const title = h('input', { id: 'run-title', required: true, maxlength: 100 });
  const model = h('input', { id: 'run-model', required: true, maxlength: 200, list: 'run-models', placeholder: 'a model this workspace can call' });
  const choices = h('datalist', { id: 'run-models' }, models.map((m) => h('option', { value: m })));
  const project = h('select', { id: 'run-project' }, h('option', { value: '' }, 'none'),
    projects.filter((p) => p.is_mine).map((p) => h('option', { value: p.id }, p.name)));
  const share = h('input', { id: 'run-share', type: 'checkbox' });
  const runForm = inlineForm(async () => {
    const body = { title: title.value.trim(), model: model.value.trim() };
    if (project.value) body.project_id = project.value;
    if (inOrg) body.shared_with_org = share.checked;
    const run = await post('/workbench/runs', body);
    await renderWorkbench(main, ctx, run.id);
  }, field('Title', title, null, 'title'), field('Model', model, null, 'model'), choices,
  field('Project', project, null, 'project_id'),
  inOrg ? field('Share with the org (read-only)', share, null, 'shared_with_org') : null,
  h('button', { type: 'submit', id: 'run-create' }, 'Start a run'));

  const projectNameInput = h('input', { id: 'project-name', required: true, maxlength: 100 });
  const projectForm = inlineForm(async () => {
    await post('/workbench/projects', { name: projectNameInput.value.trim() });
    await redraw();
    notify('Project created.');
  }, field('Name', projectNameInput, null, 'name'), h('button', { type: 'submit', id: 'project-create' }, 'Create project'));

  mount(main, h('h1', {}, 'Workbench'),
    section('Runs', table('Conversations with a model, through the proxy', ['Title', 'Model', 'Project', 'Sharing', 'Messages', 'Updated'], runRows, 'No run yet.')),
    write ? section('Start a run', runForm) : null,
    section('Projects', table('Projects', ['Name', 'Description', 'Sharing'], projectRows, 'No project yet.')),
    write ? section('Create a project', projectForm) : null);
  return undefined;
}

async function renderRun(main, ctx, id) {
  const back = () => renderWorkbench(main, ctx);
  const [run, messages] = await Promise.all([get(`/workbench/runs/${id}`), all(`/workbench/runs/${id}/messages`)]);
  const log = h('div', { id: 'run-messages', class: 'conversation', 'aria-live': 'polite' },
    messages.map((m) => bubble(m.role, m.content)));
  const controls = [];
  if (run.is_mine) {
    const content = h('textarea', { id: 'run-input', required: true, rows: 3, maxlength: 100000, placeholder: 'Your message' });
    const send = h('button', { type: 'submit', id: 'run-send' }, 'Send');
    controls.push(inlineForm(async () => {
      const text = content.value.trim();
      if (!text) return;
      send.disabled = true;
      log.append(bubble('user', text));
      const answer = bubble('assistant', '');
      answer.classList.add('streaming');
      log.append(answer);
      try {
        await stream(`/workbench/runs/${id}/messages`, { content: text, stream: true }, (chunk) => {
          const piece = chunk.choices && chunk.choices[0] && chunk.choices[0].delta && chunk.choices[0].delta.content;
          if (piece) answer.querySelector('.text').textContent += piece;
        });
        content.value = '';
      } catch (err) {
        answer.remove();
        log.lastChild.remove();
        throw err;
      } finally {
        answer.classList.remove('streaming');
        send.disabled = false;
      }
    }, field('Message', content, null, 'content'), send));
    if (ctx.me.current_organization_id) {
      controls.push(h('button', { type: 'button', class: 'secondary', id: 'run-share-toggle', onclick: () => attempt(async () => {
        await patch(`/workbench/runs/${id}`, { shared_with_org: !run.shared_with_org });
        notify(run.shared_with_org ? 'No longer shared.' : 'Shared with the org, read-only.');
        await renderRun(main, ctx, id);
      }) }, run.shared_with_org ? 'Stop sharing' : 'Share with the org'));
    }
    controls.push(h('button', { type: 'button', class: 'danger', id: 'run-delete', onclick: () => attempt(async () => {
      if (!window.confirm(`Delete the run ${run.title} and its messages?`)) return;
      await del(`/workbench/runs/${id}`);
      notify('Run deleted.');
      await back();
    }) }, 'Delete run'));
  } else {
    controls.push(h('p', { class: 'hint', id: 'run-readonly' }, 'Read-only: a colleague shared this run with the org; only its owner continues it.'));
  }
  mount(main, h('p', {}, h('a', { href: '#/workbench', onclick: (e) => { e.preventDefault(); back(); } }, '← All runs')),
    h('h1', {}, run.title),
    h('p', {}, 'Model ', h('code', {}, run.model), ' — ', run.shared_with_org ? badge('shared with the org', 'ok') : badge('private', 'neutral')),
    section('Conversation', log, ...controls));
}

function bubble(role, text) {
  return h('div', { class: `message message-${role}`, 'data-role': role },
    h('span', { class: 'who' }, role === 'user' ? 'You' : 'Model'), h('div', { class: 'text' }, text));
}

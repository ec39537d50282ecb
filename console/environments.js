// environments.js - the environments list (with create) and one environment's page.

import { call, enc } from './api.js';
import { h, ts, metadata, field, parseMetadata } from './dom.js';
import * as ui from './ui.js';
import { renderQueue } from './queue.js';
import { renderKeys } from './keys.js';

const PAGE = 20;

function createForm(onCreated) {
  const name = h('input', { type: 'text', maxlength: 256, required: true, autocomplete: 'off' });
  const type = h('select', {}, h('option', { value: 'self_hosted', text: 'self_hosted (your own workers)' }),
    h('option', { value: 'cloud', text: 'cloud' }));
  const description = h('textarea', { rows: 2, maxlength: 2048 });
  const meta = h('textarea', { rows: 2, placeholder: 'team=infra' });
  const status = h('p.status', { role: 'status' });
  const form = h('form.card', { 'aria-labelledby': 'create-title' },
    h('h3', { id: 'create-title', text: 'New environment' }),
    field('Name', name),
    field('Type', type),
    field('Description (optional)', description),
    field('Metadata (optional)', meta, 'One key=value per line; at most 16 keys.'),
    h('button', { type: 'submit', text: 'Create environment' }),
    status);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    ui.clearError('Creating the environment');
    try {
      const body = { name: name.value, config: { type: type.value }, metadata: parseMetadata(meta.value) };
      if (description.value.trim()) body.description = description.value;
      const env = await call('POST', '/v1/environments', { body });
      status.replaceChildren('Created ', h('a', { href: `#/environments/${enc(env.id)}`, text: env.name }), ` (${env.id}).`);
      form.reset();
      onCreated();
    } catch (e) {
      ui.showError('Creating the environment', e);
    }
  });
  return form;
}

export async function renderEnvironments(main, view) {
  let includeArchived = false;
  const cursors = [null]; // the page cursor of each page shown so far; the last is current
  const tbody = h('tbody');
  const caption = h('p.muted', { role: 'status' });
  const prev = h('button', { type: 'button', text: 'Previous page', disabled: true });
  const next = h('button', { type: 'button', text: 'Next page', disabled: true });
  const archived = h('input', { type: 'checkbox' });
  let nextPage = null;

  async function load() {
    try {
      const page = await call('GET', '/v1/environments', {
        query: { limit: PAGE, page: cursors[cursors.length - 1], include_archived: includeArchived ? 'true' : undefined },
        signal: view.signal,
      });
      ui.clearError('Listing environments');
      nextPage = page.next_page;
      tbody.replaceChildren(...page.data.map((e) => h('tr', { 'data-id': e.id },
        h('td', {}, h('a', { href: `#/environments/${enc(e.id)}`, text: e.name })),
        h('td.mono', { text: e.id }),
        h('td', { text: e.config.type }),
        h('td', {}, metadata(e.metadata)),
        h('td', {}, ts(e.created_at)),
        h('td', {}, e.archived_at ? ts(e.archived_at) : h('span.muted', { text: 'no' })))));
      if (!page.data.length) tbody.append(h('tr', {}, h('td', { colspan: 6, text: 'No environments yet.' })));
      caption.textContent = `Page ${cursors.length}: ${page.data.length} environment(s)${nextPage ? ', more on the next page' : ''}.`;
      prev.disabled = cursors.length === 1;
      next.disabled = !nextPage;
    } catch (e) {
      ui.showError('Listing environments', e);
    }
  }
  prev.addEventListener('click', () => { cursors.pop(); load(); });
  next.addEventListener('click', () => { if (nextPage) { cursors.push(nextPage); load(); } });
  archived.addEventListener('change', () => { includeArchived = archived.checked; cursors.length = 1; load(); });

  main.append(
    h('h2', { text: 'Environments' }),
    createForm(() => { cursors.length = 1; load(); }),
    h('section', { 'aria-labelledby': 'list-title' },
      h('div.row', {}, h('h3', { id: 'list-title', text: 'All environments' }),
        h('label.inline', {}, archived, ' Include archived'),
        h('button', { type: 'button', text: 'Refresh', onclick: load })),
      h('table', { id: 'environments' },
        h('thead', {}, h('tr', {}, ['Name', 'ID', 'Type', 'Metadata', 'Created', 'Archived'].map((t) => h('th', { scope: 'col', text: t })))),
        tbody),
      caption,
      h('div.row', {}, prev, next)));
  await load();
}

function describe(env) {
  return h('dl.facts', {},
    h('dt', { text: 'ID' }), h('dd.mono', { text: env.id }),
    h('dt', { text: 'Type' }), h('dd', { text: env.config.type }),
    h('dt', { text: 'Scope' }), h('dd', { text: env.scope }),
    h('dt', { text: 'Description' }), h('dd', { text: env.description === null ? '—' : env.description }),
    h('dt', { text: 'Metadata' }), h('dd', {}, metadata(env.metadata)),
    h('dt', { text: 'Created' }), h('dd', {}, ts(env.created_at)),
    h('dt', { text: 'Updated' }), h('dd', {}, ts(env.updated_at)),
    h('dt', { text: 'Archived' }), h('dd', { id: 'archived-at' }, env.archived_at ? ts(env.archived_at) : 'no'));
}

export async function renderEnvironment(main, view, id) {
  const env = await call('GET', `/v1/environments/${enc(id)}`, { signal: view.signal });
  const status = h('p.status', { role: 'status' });
  const archive = h('button', { type: 'button', id: 'archive', text: 'Archive', disabled: Boolean(env.archived_at) });
  const del = h('button.danger', { type: 'button', id: 'delete', text: 'Delete' });
  const facts = h('div', {}, describe(env));
  archive.addEventListener('click', async () => {
    if (!window.confirm(`Archive ${env.name}? No new work can be enqueued; running work goes on.`)) return;
    try {
      const updated = await call('POST', `/v1/environments/${enc(id)}/archive`);
      facts.replaceChildren(describe(updated));
      archive.disabled = true;
      status.textContent = `Archived at ${updated.archived_at}.`;
      ui.clearError('Archiving');
    } catch (e) {
      ui.showError('Archiving', e);
    }
  });
  del.addEventListener('click', async () => {
    if (!window.confirm(`Delete ${env.name}? Its queued and stopped work and its keys go with it. This cannot be undone.`)) return;
    try {
      await call('DELETE', `/v1/environments/${enc(id)}`);
      location.hash = '#/environments';
    } catch (e) {
      ui.showError('Deleting', e);
    }
  });
  main.append(
    h('p', {}, h('a', { href: '#/environments', text: '← Environments' })),
    h('h2', { text: env.name }),
    facts,
    h('div.row', {}, archive, del),
    status,
    h('details', {}, h('summary', { text: 'Configuration' }), h('pre', { id: 'config', text: JSON.stringify(env.config, null, 2) })));
  if (env.config.type !== 'self_hosted') {
    main.append(h('p.muted', { text: 'Cloud environments have no work queue and no environment keys here.' }));
    return;
  }
  const keys = renderKeys(view, env);
  main.append(renderQueue(view, env, keys), keys.section);
}

// keys.js - a self_hosted environment's keys: create (the key is shown once), list, revoke.

import { call, enc } from './api.js';
import { h, ts, field } from './dom.js';
import * as ui from './ui.js';

const PAGE = 20;

async function copy(text, input, status) {
  try {
    await navigator.clipboard.writeText(text);
    status.textContent = 'Copied to the clipboard.';
  } catch {
    // The clipboard API needs a secure context or a permission: leave the key selected instead.
    input.focus();
    input.select();
    status.textContent = 'Could not copy automatically: the key is selected, press Ctrl+C.';
  }
}

// Returns {section, create(name), refresh()}: create resolves to the create reply (with
// the key) or null after showing the error.
export function renderKeys(view, env) {
  const reveal = h('div', { id: 'new-key' });
  const tbody = h('tbody');
  const more = h('button', { type: 'button', text: 'More keys', hidden: true });
  const name = h('input', { type: 'text', maxlength: 256, autocomplete: 'off', placeholder: 'worker-host-1' });
  const form = h('form.inline-form', {}, field('Key name', name), h('button', { type: 'submit', text: 'Create key' }));
  let nextPage = null;

  function row(k) {
    const revoke = h('button.danger', { type: 'button', text: 'Revoke', 'aria-label': `Revoke ${k.name} (${k.id})` });
    revoke.addEventListener('click', async () => {
      if (!window.confirm(`Revoke ${k.name} (${k.id})? Workers using it are refused at once.`)) return;
      try {
        await call('DELETE', `/v1/environments/${enc(env.id)}/keys/${enc(k.id)}`);
        ui.clearError('Revoking a key');
        refresh();
      } catch (e) {
        ui.showError('Revoking a key', e);
      }
    });
    return h('tr', { 'data-id': k.id },
      h('td', { text: k.name }), h('td.mono', { text: k.id }), h('td', {}, ts(k.created_at)), h('td', {}, ts(k.last_used_at)), h('td', {}, revoke));
  }

  async function load(page) {
    try {
      const res = await call('GET', `/v1/environments/${enc(env.id)}/keys`, { query: { limit: PAGE, page }, signal: view.signal });
      ui.clearError('Listing keys');
      if (!page) tbody.replaceChildren();
      tbody.append(...res.data.map(row));
      if (!tbody.children.length) tbody.append(h('tr', {}, h('td', { colspan: 5, text: 'No keys.' })));
      nextPage = res.next_page;
      more.hidden = !nextPage;
    } catch (e) {
      ui.showError('Listing keys', e);
    }
  }
  const refresh = () => load(null);
  more.addEventListener('click', () => load(nextPage));

  async function create(keyName) {
    try {
      const created = await call('POST', `/v1/environments/${enc(env.id)}/keys`, { body: keyName ? { name: keyName } : {} });
      ui.clearError('Creating a key');
      const input = h('input.mono', { type: 'text', readonly: true, value: created.key, id: 'new-key-value', 'aria-label': 'The new key' });
      const status = h('p.status', { role: 'status' });
      reveal.replaceChildren(h('div.card.warn', { role: 'region', 'aria-labelledby': 'new-key-title' },
        h('h4', { id: 'new-key-title', text: `New key "${created.name}" (${created.id})` }),
        h('p', { text: 'Copy it now: this is the only time it is shown. environd keeps only its hash and cannot show it again.' }),
        h('div.row', {}, input,
          h('button', { type: 'button', text: 'Copy', onclick: () => copy(created.key, input, status) }),
          h('button', { type: 'button', text: 'Done', onclick: () => reveal.replaceChildren() })),
        status));
      input.focus();
      input.select();
      refresh();
      return created;
    } catch (e) {
      ui.showError('Creating a key', e);
      return null;
    }
  }
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    if (await create(name.value.trim())) name.value = '';
  });

  const section = h('section', { 'aria-labelledby': 'keys-title' },
    h('h3', { id: 'keys-title', text: 'Environment keys' }),
    h('p.muted', { text: 'Workers of this environment authenticate with these keys (environd worker --key-file, or the SDK\'s WorkPoller).' }),
    form, reveal,
    h('table', { id: 'keys' },
      h('thead', {}, h('tr', {}, ['Name', 'ID', 'Created', 'Last used', ''].map((t) => h('th', { scope: 'col', text: t })))),
      tbody),
    more);
  refresh();
  return { section, create, refresh };
}

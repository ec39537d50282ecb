// queue.js - a self_hosted environment's work queue: live stats, the items by state, stop.
//
// Stats, get and stop take the API key. Listing items (GET …/work) is a worker route and
// takes an environment key, so the items list asks for one: pasted, or created here.

import { call, enc, envKey, setEnvKey, dropEnvKey } from './api.js';
import { h, ts, metadata, field } from './dom.js';
import * as ui from './ui.js';

const STATES = ['queued', 'starting', 'active', 'stopping', 'stopped'];
const LIVE = new Set(['starting', 'active', 'stopping']);

function statsBlock(view, env) {
  const cells = {};
  const dd = (k) => (cells[k] = h('dd', { id: `stat-${k}`, text: '…' }));
  const updated = h('p.muted', { 'aria-live': 'off' });
  const block = h('section', { 'aria-labelledby': 'stats-title' },
    h('h3', { id: 'stats-title', text: 'Queue' }),
    h('dl.stats', {},
      h('div', {}, h('dt', { text: 'Depth (queued, not delivered)' }), dd('depth')),
      h('div', {}, h('dt', { text: 'Pending (delivered, not acked)' }), dd('pending')),
      h('div', {}, h('dt', { text: 'Oldest queued at' }), dd('oldest_queued_at')),
      h('div', {}, h('dt', { text: 'Workers polling (last 30 s)' }), dd('workers_polling'))),
    updated);
  const refresh = view.every(async () => {
    try {
      const s = await call('GET', `/v1/environments/${enc(env.id)}/work/stats`, { signal: view.signal });
      cells.depth.textContent = String(s.depth);
      cells.pending.textContent = String(s.pending);
      cells.oldest_queued_at.replaceChildren(ts(s.oldest_queued_at));
      cells.workers_polling.textContent = String(s.workers_polling);
      updated.textContent = `Updated ${new Date().toISOString().slice(11, 19)}Z; refreshes every 2 s while this tab is visible.`;
      ui.clearError('Reading queue stats');
    } catch (e) {
      ui.showError('Reading queue stats', e);
    }
  });
  return { block, refresh };
}

function itemRow(item, onStop) {
  const actions = h('td');
  if (item.state !== 'stopped') {
    actions.append(h('button', { type: 'button', text: 'Stop', 'aria-label': `Stop ${item.id}`, onclick: () => onStop(item, false) }));
    if (LIVE.has(item.state))
      actions.append(' ', h('button.danger', { type: 'button', text: 'Force stop', 'aria-label': `Force stop ${item.id}`, onclick: () => onStop(item, true) }));
  }
  const times = [['Created', item.created_at], ['Acknowledged', item.acknowledged_at], ['Started', item.started_at],
    ['Last heartbeat', item.latest_heartbeat_at], ['Stop requested', item.stop_requested_at], ['Stopped', item.stopped_at]];
  return h('tr', { 'data-id': item.id, 'data-state': item.state },
    h('td.mono', { text: item.id }),
    h('td', {}, h('span', { class: `state state-${item.state}`, text: item.state })),
    h('td.mono', { text: `${item.data.type} ${item.data.id}` }),
    h('td', {}, h('dl.times', {}, times.map(([label, value]) => [h('dt', { text: label }), h('dd', {}, ts(value))]))),
    h('td', {}, metadata(item.metadata)),
    actions);
}

export function renderQueue(view, env, keys) {
  const { block, refresh: refreshStats } = statsBlock(view, env);
  const items = h('div', { id: 'items' });
  const itemsSection = h('section', { 'aria-labelledby': 'items-title' }, h('h3', { id: 'items-title', text: 'Work items' }), items);
  block.append(itemsSection);
  let filter = '';
  let refreshItems = null;
  let shownList = null; // the items list now shown; a replaced list's refresh loop goes idle

  async function stop(item, force) {
    const what = force ? 'Force-stop' : 'Stop';
    if (!window.confirm(`${what} ${item.id} (${item.state})?`)) return;
    try {
      await call('POST', `/v1/environments/${enc(env.id)}/work/${enc(item.id)}/stop`, { body: { force } });
      ui.clearError('Stopping an item');
    } catch (e) {
      ui.showError('Stopping an item', e);
    }
    refreshStats();
    if (refreshItems) refreshItems();
  }

  function askForKey() {
    shownList = null;
    refreshItems = null;
    const input = h('input', { type: 'password', autocomplete: 'off', spellcheck: 'false' });
    const use = h('form.inline-form', {},
      field('Environment key for this page', input),
      h('button', { type: 'submit', text: 'Use key' }));
    use.addEventListener('submit', (ev) => {
      ev.preventDefault();
      if (!input.value.trim()) return;
      setEnvKey(env.id, input.value.trim());
      showItems();
    });
    const create = h('button', { type: 'button', id: 'create-page-key', text: 'Create a key named "console" for this page' });
    create.addEventListener('click', async () => {
      const created = await keys.create('console');
      if (created) {
        setEnvKey(env.id, created.key);
        showItems();
      }
    });
    items.replaceChildren(
      h('p', { id: 'items-need-key', text: 'Listing work items takes an environment key: the API key reads the stats above, and gets and stops items, but GET …/work is a worker route. Paste a key of this environment, or create one (it appears under Environment keys, where you can revoke it). It is kept in this tab only.' }),
      use, h('p', {}, create));
  }

  function showItems() {
    const select = h('select', { id: 'state-filter' });
    const tbody = h('tbody');
    const note = h('p.muted', { role: 'status' });
    const forget = h('button', { type: 'button', text: 'Forget environment key' });
    forget.addEventListener('click', () => { dropEnvKey(env.id); askForKey(); });
    select.addEventListener('change', () => { filter = select.value; refreshItems(); });
    items.replaceChildren(
      h('div.row', {}, field('Show', select), forget),
      h('div.scroll', {}, h('table', { id: 'work-items' },
        h('thead', {}, h('tr', {}, ['ID', 'State', 'Data', 'Timestamps', 'Metadata', ''].map((t) => h('th', { scope: 'col', text: t })))),
        tbody)),
      note);
    const token = {};
    shownList = token;
    refreshItems = view.every(async () => {
      if (shownList !== token) return;
      const key = envKey(env.id);
      if (!key) return;
      try {
        const page = await call('GET', `/v1/environments/${enc(env.id)}/work`, { query: { limit: 100 }, envKey: key, signal: view.signal });
        ui.clearError('Listing work items');
        const counts = Object.fromEntries(STATES.map((s) => [s, 0]));
        for (const it of page.data) counts[it.state] = (counts[it.state] || 0) + 1;
        select.replaceChildren(h('option', { value: '', text: `all states (${page.data.length})` }),
          ...STATES.map((s) => h('option', { value: s, text: `${s} (${counts[s]})` })));
        select.value = filter;
        const shown = page.data.filter((it) => !filter || it.state === filter);
        tbody.replaceChildren(...shown.map((it) => itemRow(it, stop)));
        if (!shown.length) tbody.append(h('tr', {}, h('td', { colspan: 6, text: filter ? `No ${filter} items.` : 'No work items.' })));
        note.textContent = page.next_page
          ? 'Showing the newest 100 items; older ones are not listed here.'
          : `${page.data.length} item(s), newest first; refreshes every 2 s while this tab is visible.`;
      } catch (e) {
        if (e.status === 401 || e.status === 403) {
          dropEnvKey(env.id);
          askForKey();
        }
        ui.showError('Listing work items', e);
      }
    });
  }

  if (envKey(env.id)) showItems();
  else askForKey();
  return block;
}

// sessions.js - the sessions list and one session's transcript, live.
//
// History comes from GET /v1/sessions/{id}/events (following next_page); live events from
// GET …/events/stream, read with fetch() because EventSource cannot send the API key. The
// two are merged by event id, as the SDK does. A server without /v1/sessions answers 404,
// and the pages say so instead of failing.

import { call, enc, headers, url } from './api.js';
import { h, ts, metadata } from './dom.js';
import { readEventStream } from './sse.js';
import * as ui from './ui.js';

const PAGE = 20;
const EVENTS_PAGE = 100;
const RETRY_MS = 2000;

function unavailable(main) {
  main.append(h('p.card.warn', { id: 'sessions-unavailable', text: 'Sessions are not available on this server: GET /v1/sessions answered 404 (not found). This environd serves environments and their work queues only.' }));
}

// True when the server has no sessions routes at all (as opposed to one missing session).
async function sessionsMissing(signal) {
  try {
    await call('GET', '/v1/sessions', { query: { limit: 1 }, signal });
    return false;
  } catch (e) {
    return e.status === 404;
  }
}

export async function renderSessions(main, view) {
  main.append(h('h2', { text: 'Sessions' }));
  const archived = h('input', { type: 'checkbox' });
  const tbody = h('tbody');
  const note = h('p.muted', { role: 'status' });
  const cursors = [null];
  const prev = h('button', { type: 'button', text: 'Previous page', disabled: true });
  const next = h('button', { type: 'button', text: 'Next page', disabled: true });
  let nextPage = null;
  let first = true;
  const load = async () => {
    let page;
    try {
      page = await call('GET', '/v1/sessions', {
        query: { limit: PAGE, page: cursors[cursors.length - 1], include_archived: archived.checked ? 'true' : undefined },
        signal: view.signal,
      });
    } catch (e) {
      if (e.status === 404 && first) {
        view.close();
        main.replaceChildren(h('h2', { text: 'Sessions' }));
        unavailable(main);
        return;
      }
      ui.showError('Listing sessions', e);
      return;
    }
    if (first) {
      first = false;
      main.append(h('div.row', {}, h('label.inline', {}, archived, ' Include archived')),
        h('table', { id: 'sessions' },
          h('thead', {}, h('tr', {}, ['ID', 'Title', 'Status', 'Environment', 'Agent', 'Created', 'Archived'].map((t) => h('th', { scope: 'col', text: t })))),
          tbody),
        note, h('div.row', {}, prev, next));
    }
    ui.clearError('Listing sessions');
    nextPage = page.next_page;
    tbody.replaceChildren(...page.data.map((s) => h('tr', { 'data-id': s.id },
      h('td', {}, h('a.mono', { href: `#/sessions/${enc(s.id)}`, text: s.id })),
      h('td', { text: s.title || '—' }),
      h('td', {}, h('span', { class: `state state-${s.status}`, text: s.status })),
      h('td.mono', { text: s.environment_id }),
      h('td', { text: s.agent ? `${s.agent.name || s.agent.id} v${s.agent.version ?? '?'}` : '—' }),
      h('td', {}, ts(s.created_at)),
      h('td', {}, ts(s.archived_at)))));
    if (!page.data.length) tbody.append(h('tr', {}, h('td', { colspan: 7, text: 'No sessions.' })));
    note.textContent = `Page ${cursors.length}; refreshes every 2 s while this tab is visible.`;
    prev.disabled = cursors.length === 1;
    next.disabled = !nextPage;
  };
  const refresh = view.every(load);
  prev.addEventListener('click', () => { cursors.pop(); refresh(); });
  next.addEventListener('click', () => { if (nextPage) { cursors.push(nextPage); refresh(); } });
  archived.addEventListener('change', () => { cursors.length = 1; refresh(); });
}

function blockText(b) {
  if (b.type === 'text') return b.text;
  return `[${b.type}]`;
}

function contentText(content) {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) return content.map(blockText).join('\n');
  return '';
}

// What an event says, as nodes; unknown types show their JSON, so nothing is hidden.
function eventBody(ev) {
  switch (ev.type) {
    case 'user.message':
    case 'agent.message':
      return h('p.text', { text: contentText(ev.content) });
    case 'agent.tool_use':
    case 'agent.custom_tool_use':
    case 'agent.mcp_tool_use':
      return h('div', {}, h('p', {}, 'Tool ', h('code', { text: ev.name || '?' })), h('pre', { text: JSON.stringify(ev.input ?? {}, null, 2) }));
    case 'user.tool_result':
    case 'user.custom_tool_result':
      return h('div', {}, h('p', {}, `Result for ${ev.tool_use_id || ev.custom_tool_use_id || '?'}`, ev.is_error ? h('strong', { text: ' (error)' }) : ''),
        h('pre', { text: contentText(ev.content) }));
    case 'session.status_idle':
      return h('p', { text: `Idle: ${ev.stop_reason ? ev.stop_reason.type : 'no reason given'}${ev.stop_reason && ev.stop_reason.event_ids ? ` (waiting on ${ev.stop_reason.event_ids.join(', ')})` : ''}` });
    case 'session.status_running':
    case 'session.status_terminated':
    case 'session.status_rescheduled':
    case 'session.deleted':
      return null;
    case 'session.error':
      return h('p', { text: ev.error ? `${ev.error.type || 'error'}: ${ev.error.message || ''}` : 'error' });
    default: {
      const { id, type, processed_at: _p, ...rest } = ev;
      return Object.keys(rest).length ? h('pre', { text: JSON.stringify(rest, null, 2) }) : null;
    }
  }
}

function eventItem(ev) {
  const kind = ev.type.split('.')[0];
  return h('li', { class: `event event-${kind}`, 'data-id': ev.id, 'data-type': ev.type },
    h('div.event-head', {}, h('span.event-type', { text: ev.type }), ' ', ts(ev.processed_at), ' ', h('span.muted.mono', { text: ev.id })),
    eventBody(ev));
}

function sessionFacts(s) {
  return h('dl.facts', {},
    h('dt', { text: 'Status' }), h('dd', {}, h('span', { id: 'session-status', class: `state state-${s.status}`, text: s.status })),
    h('dt', { text: 'Environment' }), h('dd', {}, h('a.mono', { href: `#/environments/${enc(s.environment_id)}`, text: s.environment_id })),
    h('dt', { text: 'Agent' }), h('dd', { text: s.agent ? `${s.agent.name || ''} ${s.agent.id || ''} v${s.agent.version ?? '?'}` : '—' }),
    h('dt', { text: 'Created' }), h('dd', {}, ts(s.created_at)),
    h('dt', { text: 'Updated' }), h('dd', {}, ts(s.updated_at)),
    h('dt', { text: 'Archived' }), h('dd', {}, ts(s.archived_at)),
    h('dt', { text: 'Metadata' }), h('dd', {}, metadata(s.metadata)));
}

export async function renderSession(main, view, id) {
  let session;
  try {
    session = await call('GET', `/v1/sessions/${enc(id)}`, { signal: view.signal });
  } catch (e) {
    if (e.status === 404 && (await sessionsMissing(view.signal))) {
      main.append(h('h2', { text: 'Session' }));
      unavailable(main);
      return;
    }
    throw e;
  }
  const facts = h('div', {}, sessionFacts(session));
  const live = h('p.muted', { id: 'stream-state', role: 'status', text: 'Connecting…' });
  const list = h('ol.transcript', { id: 'transcript', 'aria-live': 'polite' });
  const seen = new Set();
  main.append(
    h('p', {}, h('a', { href: '#/sessions', text: '← Sessions' })),
    h('h2', { text: session.title || session.id }),
    facts, h('h3', { text: 'Transcript' }), live, list);

  const add = (ev) => {
    if (!ev || !ev.id || !ev.type || seen.has(ev.id)) return;
    seen.add(ev.id);
    list.append(eventItem(ev));
  };

  view.every(async () => {
    try {
      session = await call('GET', `/v1/sessions/${enc(id)}`, { signal: view.signal });
      facts.replaceChildren(sessionFacts(session));
      ui.clearError('Reading the session');
    } catch (e) {
      ui.showError('Reading the session', e);
    }
  });

  async function history(signal) {
    let page = null;
    do {
      const res = await call('GET', `/v1/sessions/${enc(id)}/events`, { query: { limit: EVENTS_PAGE, page }, signal });
      for (const ev of res.data) add(ev);
      page = res.next_page;
    } while (page);
  }

  // The stream carries live events only: open it first, then list history, so no event
  // falls between the two; ids de-duplicate the overlap. Each attempt has its own abort,
  // so a failed one leaves no reader behind.
  async function follow() {
    while (!view.signal.aborted) {
      const attempt = new AbortController();
      const leave = () => attempt.abort();
      view.signal.addEventListener('abort', leave, { once: true });
      try {
        const res = await fetch(url(`/v1/sessions/${enc(id)}/events/stream`), {
          headers: { ...headers(), accept: 'text/event-stream' }, cache: 'no-store', credentials: 'omit', signal: attempt.signal,
        });
        if (!res.ok) {
          let message = `HTTP ${res.status}`;
          try { message = (await res.json()).error.message || message; } catch { /* not JSON */ }
          throw Object.assign(new Error(message), { status: res.status });
        }
        const streamed = readEventStream(res, (frame) => {
          if (!frame.event) return; // as the SDK does: a frame without event: is not an event
          try { add(JSON.parse(frame.data)); } catch { /* a frame that is not JSON is skipped */ }
        });
        streamed.catch(() => {}); // awaited below; this only keeps an early failure from being "unhandled"
        await history(attempt.signal);
        live.textContent = 'Live: new events appear as they happen.';
        ui.clearError('Following the session');
        await streamed;
        live.textContent = 'The stream ended; reconnecting…';
      } catch (e) {
        if (view.signal.aborted) return;
        ui.showError('Following the session', e);
        live.textContent = `Disconnected; retrying in ${RETRY_MS / 1000} s.`;
      } finally {
        attempt.abort();
        view.signal.removeEventListener('abort', leave);
      }
      await new Promise((r) => setTimeout(r, RETRY_MS));
    }
  }
  follow();
}

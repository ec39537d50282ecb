// A small agent runner over environd's agent extension (README: "The agent extension"):
// it polls for a turn with an agent key, reads the session's events, posts agent-side
// events and heartbeats its turn. Tests script what the "model" answers.
'use strict';
const { BETA, sleep } = require('./server');

class AgentRunner {
  constructor(url, key) {
    this.url = url;
    this.key = key;
  }

  async request(method, path, body) {
    const headers = { 'anthropic-beta': BETA, authorization: `Bearer ${this.key}` };
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(this.url + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    let json;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: res.status, json, text, headers: res.headers };
  }

  // One poll: the claimed turn, or null when none came within blockMs.
  async poll(blockMs = 0, models = []) {
    const q = new URLSearchParams({ block_ms: String(blockMs) });
    for (const m of models) q.append('model', m);
    const r = await this.request('GET', `/v1/environd/agent/turns/poll?${q}`);
    if (r.status !== 200) throw new Error(`turn poll: ${r.status} ${r.text}`);
    return r.json;
  }

  // Poll until a turn arrives (bounded).
  async nextTurn({ models = [], attempts = 60 } = {}) {
    for (let i = 0; i < attempts; i++) {
      const t = await this.poll(1000, models);
      if (t) return t;
    }
    throw new Error('no agent turn arrived');
  }

  heartbeat(turnId) {
    return this.request('POST', `/v1/environd/agent/turns/${turnId}/heartbeat`);
  }

  // Post agent-side events; returns the response ({status, json}).
  post(turnId, events) {
    return this.request('POST', `/v1/environd/agent/turns/${turnId}/events`, { events });
  }

  async postOk(turnId, events) {
    const r = await this.post(turnId, events);
    if (r.status !== 200) throw new Error(`turn events: ${r.status} ${r.text}`);
    return r.json.data;
  }

  async events(sessionId) {
    const out = [];
    let page = null;
    for (let i = 0; i < 100; i++) {
      const q = new URLSearchParams({ limit: '1000' });
      if (page) q.set('page', page);
      const r = await this.request('GET', `/v1/sessions/${sessionId}/events?${q}`);
      if (r.status !== 200) throw new Error(`events: ${r.status} ${r.text}`);
      out.push(...r.json.data);
      page = r.json.next_page;
      if (!page) return out;
    }
    throw new Error('too many event pages');
  }

  // Serve turns until stopped: `handle(turn, events, runner)` answers one turn (posting
  // through runner.postOk; its last post ends the turn).
  async serve({ handle, signal, models = [] }) {
    while (!signal.aborted) {
      let turn;
      try {
        turn = await this.poll(500, models);
      } catch (e) {
        if (signal.aborted) return;
        throw e;
      }
      if (!turn) continue;
      const events = await this.events(turn.session_id);
      await handle(turn, events, this);
    }
  }
}

// `environd key create --agent` against a test server's store; returns the key text.
function createAgentKey(server, { org, workspace, models, name } = {}) {
  const { execFileSync } = require('node:child_process');
  const { BIN } = require('./server');
  const args = ['key', 'create', '--agent', '--db', server.db];
  if (org) args.push('--org', org);
  if (workspace) args.push('--workspace', workspace);
  if (models) args.push('--models', models.join(','));
  if (name) args.push('--name', name);
  return execFileSync(BIN, args, { encoding: 'utf8' }).trim();
}

// Wait until `check()` returns a truthy value (bounded; no fixed sleeps).
async function waitFor(check, { what = 'condition', ms = 60000, every = 50 } = {}) {
  const until = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(every);
  }
}

module.exports = { AgentRunner, createAgentKey, waitFor, sleep };

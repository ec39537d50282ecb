// `environd agent echo` against a scripted server that speaks the agent extension
// (/v1/environd/agent/...): what the runner polls with, what it posts for a message and
// for a tool result, how it handles 412 turn_lost on a post and on a heartbeat, a 429
// with retry-after, and a SIGTERM drain while it holds a turn. The real server's side is
// covered by session_e2e.test.js; this one pins the runner's own behaviour.
'use strict';
const { test, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const http = require('node:http');
const { BIN } = require('./lib/server');
const { waitFor, sleep } = require('./lib/work');

const AGENT_KEY = 'envd_agt_TESTKEY0123456789';
const procs = new Set();
const servers = new Set();

after(async () => {
  for (const p of procs) p.kill('SIGKILL');
  for (const s of servers) s.close();
});

const text = (t) => [{ type: 'text', text: t }];
const userMessage = (id, t) => ({ id, type: 'user.message', content: text(t) });

// A scripted agent-extension server. `turns` is the queue polls take from; `events` maps a
// session id to its transcript. Hooks let a test change an answer; every request is kept.
function fakeServer({ turns = [], events = {}, leaseMs = 30000, hooks = {} } = {}) {
  const srv = {
    turns,
    events,
    requests: [],
    posted: [], // { turn, events, at }
    beats: [],
    seq: 100,
  };
  const lease = () => new Date(Date.now() + leaseMs).toISOString();
  const send = (res, status, body, headers = {}) => {
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(JSON.stringify(body));
  };
  const lost = (res) =>
    send(res, 412, { type: 'error', error: { type: 'invalid_request_error', message: 'turn lost', details: { error_code: 'turn_lost' } } });
  srv.http = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', async () => {
      const url = new URL(req.url, 'http://x');
      const r = { method: req.method, path: url.pathname, query: url.searchParams, headers: req.headers, body, at: Date.now() };
      srv.requests.push(r);
      for (const [re, hook] of Object.entries(hooks)) {
        if (new RegExp(re).test(`${req.method} ${url.pathname}`) && (await hook(req, res, r, srv))) return;
      }
      let m;
      if (url.pathname === '/v1/environd/agent/turns/poll') {
        const t = srv.turns.shift();
        if (t) return send(res, 200, { type: 'agent_turn', lease_expires_at: lease(), agent: { model: 'environd-echo' }, ...t });
        const wait = Math.min(Number(url.searchParams.get('block_ms') || 0), 300);
        await sleep(wait);
        return send(res, 200, null);
      }
      if ((m = url.pathname.match(/^\/v1\/environd\/agent\/turns\/([^/]+)\/heartbeat$/))) {
        srv.beats.push({ turn: m[1], at: Date.now() });
        return send(res, 200, { id: m[1], lease_expires_at: lease() });
      }
      if ((m = url.pathname.match(/^\/v1\/environd\/agent\/turns\/([^/]+)\/events$/))) {
        const turn = m[1];
        const posted = JSON.parse(body).events;
        const session = (srv.sessionOf && srv.sessionOf[turn]) || 'sesn_1';
        const stored = posted.map((e) => ({ id: `sevt_${++srv.seq}`, processed_at: new Date().toISOString(), ...e }));
        (srv.events[session] ||= []).push(...stored);
        srv.posted.push({ turn, events: posted, at: Date.now() });
        return send(res, 200, { data: stored });
      }
      if ((m = url.pathname.match(/^\/v1\/sessions\/([^/]+)\/events$/))) {
        return send(res, 200, { data: srv.events[m[1]] || [], next_page: null });
      }
      send(res, 404, { type: 'error', error: { type: 'not_found_error', message: 'no route' } });
    });
  });
  srv.lost = lost;
  srv.send = send;
  return new Promise((resolve) => {
    srv.http.listen(0, '127.0.0.1', () => {
      srv.url = `http://127.0.0.1:${srv.http.address().port}`;
      servers.add(srv.http);
      resolve(srv);
    });
  });
}

// A running `environd agent echo` with its JSON log parsed.
function runner(url, args = []) {
  const p = spawn(BIN, ['agent', 'echo', '--base-url', url, '--log-format', 'json', '--concurrency', '2', ...args], {
    env: { ...process.env, ENVIROND_AGENT_KEY: AGENT_KEY },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  procs.add(p);
  p.log = [];
  p.text = '';
  let partial = '';
  p.stderr.on('data', (d) => {
    p.text += d;
    const lines = (partial + d).split('\n');
    partial = lines.pop();
    for (const l of lines) {
      try {
        p.log.push(JSON.parse(l));
      } catch {}
    }
  });
  p.done = new Promise((resolve) => p.once('close', (code, signal) => resolve({ code, signal })));
  p.done.then(() => procs.delete(p));
  return p;
}

const types = (posts) => posts.flatMap((p) => p.events.map((e) => e.type));

test('a message becomes one bash tool use, its result one agent message', async () => {
  const srv = await fakeServer({
    turns: [{ id: 'turn_1', session_id: 'sesn_1' }],
    events: { sesn_1: [userMessage('sevt_1', 'echo hi > hello.txt')] },
  });
  const p = runner(srv.url);
  await waitFor(() => srv.posted.some((x) => x.events.some((e) => e.type === 'session.status_idle')), { timeoutMs: 15000, what: 'idle' });
  assert.deepEqual(types(srv.posted), ['session.status_running', 'agent.tool_use', 'session.status_idle']);
  const use = srv.posted[1].events[0];
  assert.deepEqual(use, { type: 'agent.tool_use', name: 'bash', input: { command: 'echo hi > hello.txt' } });
  const useId = srv.events.sesn_1.find((e) => e.type === 'agent.tool_use').id;
  assert.deepEqual(srv.posted[2].events[0].stop_reason, { type: 'requires_action', event_ids: [useId] });
  // The poll names the model; every request carries the agent key and the beta header.
  const poll = srv.requests.find((r) => r.path.endsWith('/poll'));
  assert.equal(poll.query.get('model'), 'environd-echo');
  for (const r of srv.requests) {
    assert.equal(r.headers.authorization, `Bearer ${AGENT_KEY}`);
    assert.equal(r.headers['anthropic-beta'], 'managed-agents-2026-04-01');
  }
  // The worker answers; the next turn reports.
  srv.events.sesn_1.push({ id: 'sevt_9', type: 'user.tool_result', tool_use_id: useId, is_error: false, content: text('done') });
  srv.turns.push({ id: 'turn_2', session_id: 'sesn_1' });
  await waitFor(() => srv.posted.filter((x) => x.turn === 'turn_2').length >= 2, { timeoutMs: 15000, what: 'report' });
  const second = srv.posted.filter((x) => x.turn === 'turn_2');
  assert.deepEqual(types(second), ['session.status_running', 'agent.message', 'session.status_idle']);
  assert.equal(second[1].events[0].content[0].text, 'Ran `echo hi > hello.txt` (exit status 0):\ndone');
  assert.deepEqual(second[1].events[1].stop_reason, { type: 'end_turn' });
  p.kill('SIGTERM');
  assert.equal((await p.done).code, 0);
  assert.ok(p.log.some((l) => l.event === 'turn_done' && l.turn_id === 'turn_2'), p.text);
});

test('a tool use answered before its requires_action: the refusal makes it read again and report', async () => {
  let refused = false;
  const srv = await fakeServer({
    turns: [{ id: 'turn_race', session_id: 'sesn_1' }],
    events: { sesn_1: [userMessage('sevt_1', 'ls')] },
    hooks: {
      // The worker answers as soon as the tool use is stored; the server then refuses the
      // idle that would list it as unanswered.
      'POST /v1/environd/agent/turns/turn_race/events': (req, res, r, s) => {
        const evs = JSON.parse(r.body).events;
        if (refused || evs[0].stop_reason?.type !== 'requires_action') return false;
        refused = true;
        const use = s.events.sesn_1.find((e) => e.type === 'agent.tool_use');
        s.events.sesn_1.push({ id: 'sevt_50', type: 'user.tool_result', tool_use_id: use.id, is_error: false, content: text('a.txt') });
        s.send(res, 400, { type: 'error', error: { type: 'invalid_request_error', message: 'events[0].stop_reason.type: requires_action with no unanswered tool use' } });
        return true;
      },
    },
  });
  const p = runner(srv.url);
  await waitFor(() => srv.posted.some((x) => x.events.some((e) => e.stop_reason?.type === 'end_turn')), { timeoutMs: 15000, what: `end_turn in ${p.text}` });
  assert.ok(refused);
  assert.deepEqual(types(srv.posted), ['session.status_running', 'agent.tool_use', 'agent.message', 'session.status_idle']);
  assert.equal(srv.posted[2].events[0].content[0].text, 'Ran `ls` (exit status 0):\na.txt');
  p.kill('SIGTERM');
  assert.equal((await p.done).code, 0);
});

test('412 turn_lost on a post drops the turn', async () => {
  const srv = await fakeServer({
    turns: [{ id: 'turn_lost1', session_id: 'sesn_1' }],
    events: { sesn_1: [userMessage('sevt_1', 'ls')] },
    hooks: { 'POST /v1/environd/agent/turns/turn_lost1/events': (req, res, r, s) => (s.lost(res), true) },
  });
  const p = runner(srv.url);
  await waitFor(() => p.log.find((l) => l.event === 'turn_dropped'), { timeoutMs: 15000, what: 'turn_dropped' });
  // One post tried, refused, and nothing after it for that turn.
  await sleep(300);
  assert.equal(srv.requests.filter((r) => r.path.includes('turn_lost1/events')).length, 1);
  assert.equal(srv.requests.filter((r) => r.path.startsWith('/v1/sessions/')).length, 0);
  p.kill('SIGTERM');
  assert.equal((await p.done).code, 0);
});

test('412 on a heartbeat aborts the request in flight and drops the turn', async () => {
  let release;
  const held = new Promise((r) => (release = r));
  const srv = await fakeServer({
    turns: [{ id: 'turn_hb', session_id: 'sesn_1' }],
    events: { sesn_1: [userMessage('sevt_1', 'ls')] },
    leaseMs: 900, // beats every ~300 ms
    hooks: {
      // The transcript read hangs until the test ends: only the lost lease can end it.
      'GET /v1/sessions/sesn_1/events': async () => (await held, false),
      'POST /v1/environd/agent/turns/turn_hb/heartbeat': (req, res, r, s) => (s.lost(res), true),
    },
  });
  const p = runner(srv.url);
  await waitFor(() => p.log.find((l) => l.event === 'turn_dropped'), { timeoutMs: 8000, what: `turn_dropped in ${p.text}` });
  assert.ok(p.log.find((l) => l.event === 'turn_lost' && l.turn_id === 'turn_hb'));
  // Nothing but the first status_running was posted.
  assert.deepEqual(types(srv.posted.filter((x) => x.turn === 'turn_hb')), ['session.status_running']);
  p.kill('SIGTERM');
  assert.equal((await p.done).code, 0);
  release();
});

test('429 is retried after its retry-after', async () => {
  let refused = 0;
  const srv = await fakeServer({
    turns: [{ id: 'turn_429', session_id: 'sesn_1' }],
    events: { sesn_1: [userMessage('sevt_1', 'ls')] },
    hooks: {
      'GET /v1/sessions/sesn_1/events': (req, res, r, s) => {
        if (refused++ > 0) return false;
        s.send(res, 429, { type: 'error', error: { type: 'rate_limit_error', message: 'slow down' } }, { 'retry-after': '1' });
        return true;
      },
    },
  });
  const p = runner(srv.url);
  await waitFor(() => srv.posted.some((x) => x.turn === 'turn_429' && x.events.some((e) => e.type === 'session.status_idle')), {
    timeoutMs: 15000,
    what: 'idle after 429',
  });
  const reads = srv.requests.filter((r) => r.path === '/v1/sessions/sesn_1/events');
  assert.equal(reads.length, 2);
  assert.ok(reads[1].at - reads[0].at >= 950, `retried after ${reads[1].at - reads[0].at} ms`);
  p.kill('SIGTERM');
  assert.equal((await p.done).code, 0);
});

test('SIGTERM drains: the held turn finishes, then the runner exits 0', async () => {
  let reading = false;
  const srv = await fakeServer({
    turns: [{ id: 'turn_drain', session_id: 'sesn_1' }],
    events: { sesn_1: [userMessage('sevt_1', 'ls')] },
    hooks: {
      'GET /v1/sessions/sesn_1/events': async () => {
        reading = true;
        await sleep(1000);
        return false;
      },
    },
  });
  const p = runner(srv.url);
  await waitFor(() => reading, { timeoutMs: 15000, what: 'the transcript read' });
  p.kill('SIGTERM');
  const { code } = await p.done;
  assert.equal(code, 0, p.text);
  assert.deepEqual(types(srv.posted), ['session.status_running', 'agent.tool_use', 'session.status_idle']);
  assert.ok(p.log.find((l) => l.event === 'draining'));
});

test('a refused key ends the runner with status 1', async () => {
  const srv = await fakeServer({
    hooks: {
      'GET /v1/environd/agent/turns/poll': (req, res, r, s) =>
        (s.send(res, 401, { type: 'error', error: { type: 'authentication_error', message: 'invalid agent key' } }), true),
    },
  });
  const p = runner(srv.url);
  const { code } = await p.done;
  assert.equal(code, 1);
  assert.match(p.text, /invalid agent key/);
  assert.doesNotMatch(p.text, new RegExp(AGENT_KEY));
});

// The agent extension (README "The agent extension") driven by the small JS runner in
// lib/agent_runner.js: turns are claimed once, held with a lease, lost when it runs out
// (another runner then completes the turn), and every agent event is checked against the
// session's invariants. Also: the live event stream (the SDK's own
// client.beta.sessions.events.stream), credentials per kind, held-stream limits, and
// sessions surviving kill -9.
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const { Server } = require('./lib/server');
const { SDK, expectBadRequest, expectError, expectRawError } = require('./lib/helpers');
const { AgentRunner, createAgentKey, waitFor } = require('./lib/agent_runner');

const TOOLSET = { type: 'agent_toolset_20260401' };
const CUSTOM = { type: 'custom', name: 'lookup', description: 'd', input_schema: { type: 'object' } };
const say = (text) => ({ type: 'user.message', content: [{ type: 'text', text }] });

async function start(args = []) {
  const server = await new Server({ args }).start();
  const key = server.createKey();
  const client = server.client(key);
  const env = await client.beta.environments.create({ name: 'hosts', config: { type: 'self_hosted' } });
  const agent = await client.beta.agents.create({ name: 'a', model: 'claude-sonnet-4-5', tools: [TOOLSET, CUSTOM] });
  return { server, key, client, env, agent };
}

test('a turn: claimed once, invariants enforced, tool results reopen it, a duplicate result is 200 and stores nothing', async (t) => {
  const { server, key, client, env, agent } = await start();
  t.after(() => server.stop().then(() => server.cleanup()));
  const runner = new AgentRunner(server.url, createAgentKey(server));
  assert.equal(await runner.poll(0), null);
  const s = await client.beta.sessions.create({ agent: agent.id, environment_id: env.id, initial_events: [say('hi')] });
  const turn = await runner.poll(0);
  assert.equal(turn.type, 'agent_turn');
  assert.match(turn.id, /^turn_[0-9A-Za-z]{24}$/);
  assert.equal(turn.session_id, s.id);
  assert.deepEqual(turn.agent, s.agent);
  assert.ok(Date.parse(turn.lease_expires_at) > Date.now());
  assert.equal(await runner.poll(0), null, 'one live turn per session');

  const [running, use, custom] = await runner.postOk(turn.id, [
    { type: 'session.status_running' },
    { type: 'agent.tool_use', name: 'bash', input: { command: 'true' } },
    { type: 'agent.custom_tool_use', name: 'lookup', input: { q: 1 } },
  ]);
  assert.equal(running.type, 'session.status_running');
  assert.equal((await client.beta.sessions.retrieve(s.id)).status, 'running');
  const before = await runner.events(s.id);
  // Each broken invariant: 400 naming the field, nothing stored.
  const bad = [
    [[{ type: 'agent.tool_use', name: 'lookup', input: {} }], 'events[0].name'],
    [[{ type: 'agent.custom_tool_use', name: 'nope', input: {} }], 'events[0].name'],
    [[{ type: 'session.status_idle', stop_reason: { type: 'end_turn' } }], 'stop_reason'],
    [[{ type: 'session.status_idle', stop_reason: { type: 'requires_action', event_ids: [use.id] } }], 'event_ids'],
    [[{ type: 'agent.message', content: [{ type: 'text', text: 'x' }] }, { type: 'user.message', content: [] }], 'events[1].type'],
    [[{ type: 'agent.thinking' }], 'events[0].type'],
  ];
  for (const [events, field] of bad) {
    const r = await runner.post(turn.id, events);
    expectRawError(r, 400, { fields: [field] });
  }
  assert.deepEqual(await runner.events(s.id), before);
  await runner.postOk(turn.id, [
    { type: 'session.status_idle', stop_reason: { type: 'requires_action', event_ids: [custom.id, use.id] } },
  ]);
  // The turn is over: no more posts, no heartbeats.
  expectRawError(await runner.post(turn.id, [{ type: 'session.status_running' }]), 412, { code: 'turn_lost' });
  expectRawError(await runner.heartbeat(turn.id), 412, { code: 'turn_lost' });
  assert.equal((await client.beta.sessions.retrieve(s.id)).status, 'idle');

  // One of two answered: no turn yet. Both: a new turn.
  await client.beta.sessions.events.send(s.id, {
    events: [{ type: 'user.custom_tool_result', custom_tool_use_id: custom.id, content: [{ type: 'text', text: '42' }] }],
  });
  assert.equal(await runner.poll(0), null);
  await expectBadRequest(
    client.beta.sessions.events.send(s.id, { events: [{ type: 'user.tool_result', tool_use_id: custom.id }] }),
    ['tool_use_id'],
  );
  // A tool use of another session is foreign here.
  const other = await client.beta.sessions.create({ agent: agent.id, environment_id: env.id });
  await expectBadRequest(
    client.beta.sessions.events.send(other.id, { events: [{ type: 'user.tool_result', tool_use_id: use.id }] }),
    ['tool_use_id'],
  );
  const r1 = await client.beta.sessions.events.send(s.id, {
    events: [{ type: 'user.tool_result', tool_use_id: use.id, content: [{ type: 'text', text: 'ok' }] }],
  });
  assert.equal(r1.data.length, 1);
  const n = (await runner.events(s.id)).length;
  const dup = await client.beta.sessions.events.send(s.id, { events: [{ type: 'user.tool_result', tool_use_id: use.id }] });
  assert.deepEqual(dup.data, []);
  assert.equal((await runner.events(s.id)).length, n);
  const turn2 = await runner.poll(0);
  assert.equal(turn2.session_id, s.id);
  assert.notEqual(turn2.id, turn.id);
  const hb = await runner.heartbeat(turn2.id);
  assert.equal(hb.status, 200);
  assert.equal(hb.json.id, turn2.id);
  const stats = async () => (await server.raw('GET', `/v1/environments/${env.id}/work/stats`, { key })).json;
  assert.equal((await stats()).depth, 1, 'the session has its queued item');
  await runner.postOk(turn2.id, [
    { type: 'agent.message', content: [{ type: 'text', text: 'bye' }] },
    { type: 'session.status_terminated' },
  ]);
  assert.equal((await client.beta.sessions.retrieve(s.id)).status, 'terminated');
  assert.equal((await stats()).depth, 0, 'termination stopped the item');
  await expectBadRequest(client.beta.sessions.events.send(s.id, { events: [say('more')] }), ['terminated']);
});

test('a runner killed mid-turn: the lease runs out and another runner completes the turn', async (t) => {
  const { server, client, env, agent } = await start(['--agent-turn-lease-ms', '400']);
  t.after(() => server.stop().then(() => server.cleanup()));
  const agentKey = createAgentKey(server);
  const first = new AgentRunner(server.url, agentKey);
  const second = new AgentRunner(server.url, agentKey);
  const s = await client.beta.sessions.create({ agent: agent.id, environment_id: env.id, initial_events: [say('hi')] });
  const lost = await first.poll(0);
  await first.postOk(lost.id, [{ type: 'session.status_running' }]);
  // The first runner dies here. A held poll of the second one is woken by the expiry,
  // long before its own deadline (when it would look again anyway).
  const t0 = Date.now();
  const taken = await second.poll(20000);
  assert.ok(taken, 'the expired turn came back');
  assert.ok(Date.now() - t0 < 15000, 'the expiry woke the held poll');
  assert.equal(taken.session_id, s.id);
  assert.notEqual(taken.id, lost.id);
  expectRawError(await first.post(lost.id, [{ type: 'agent.message', content: [{ type: 'text', text: 'late' }] }]), 412, {
    code: 'turn_lost',
  });
  expectRawError(await first.heartbeat(lost.id), 412, { code: 'turn_lost' });
  await second.postOk(taken.id, [
    { type: 'agent.message', content: [{ type: 'text', text: 'done' }] },
    { type: 'session.status_idle', stop_reason: { type: 'end_turn' } },
  ]);
  const types = (await second.events(s.id)).map((e) => e.type);
  assert.deepEqual(types, ['user.message', 'session.status_running', 'agent.message', 'session.status_idle']);
});

test('a held turn poll answers the moment a session awaits a turn; model filters apply', async (t) => {
  const { server, client, env, agent } = await start();
  t.after(() => server.stop().then(() => server.cleanup()));
  const opus = await client.beta.agents.create({ name: 'o', model: 'claude-opus-4-6' });
  const onlyOpus = new AgentRunner(server.url, createAgentKey(server, { models: ['claude-opus-4-6'] }));
  const anyModel = new AgentRunner(server.url, createAgentKey(server));
  // A key limited to some models may not ask for others.
  const refused = await onlyOpus.request('GET', '/v1/environd/agent/turns/poll?model=claude-sonnet-4-5');
  expectRawError(refused, 403, { fields: ['model'] });
  const t0 = Date.now();
  const held = onlyOpus.poll(20000);
  await waitFor(async () => /environd_polls_held 1\b/.test(await (await fetch(`${server.url}/metrics`)).text()), {
    what: 'the turn poll to be held',
  });
  const s1 = await client.beta.sessions.create({ agent: agent.id, environment_id: env.id, initial_events: [say('x')] });
  const s2 = await client.beta.sessions.create({ agent: opus.id, environment_id: env.id, initial_events: [say('y')] });
  const got = await held;
  assert.equal(got.session_id, s2.id, 'the sonnet session is not for this key');
  assert.ok(Date.now() - t0 < 15000, 'the new session woke the held poll before its deadline');
  assert.equal((await anyModel.poll(0, ['claude-opus-4-6'])), null);
  assert.equal((await anyModel.poll(0, ['claude-sonnet-4-5'])).session_id, s1.id);
  // Bad polls.
  expectRawError(await anyModel.request('GET', '/v1/environd/agent/turns/poll?block_ms=30001'), 400, { fields: ['block_ms'] });
  // Agent keys reach the turn routes and session reads only.
  expectRawError(await anyModel.request('GET', '/v1/sessions'), 403);
  expectRawError(await anyModel.request('POST', `/v1/sessions/${s1.id}/events`, { events: [say('z')] }), 403);
  assert.equal((await anyModel.request('GET', `/v1/sessions/${s1.id}`)).status, 200);
  // Another organization's agent key sees neither turns nor sessions.
  const stranger = new AgentRunner(server.url, createAgentKey(server, { org: 'other' }));
  assert.equal((await stranger.request('GET', `/v1/sessions/${s1.id}`)).status, 404);
  await client.beta.sessions.events.send(s1.id, { events: [say('again')] });
  assert.equal(await stranger.poll(0), null);
});

test('the SDK stream delivers live events with the list ids; a deleted session ends it', async (t) => {
  const { server, key, client, env, agent } = await start();
  t.after(() => server.stop().then(() => server.cleanup()));
  const runner = new AgentRunner(server.url, createAgentKey(server));
  const s = await client.beta.sessions.create({ agent: agent.id, environment_id: env.id });
  const stream = await client.beta.sessions.events.stream(s.id);
  const got = [];
  const reading = (async () => {
    for await (const ev of stream) got.push(ev);
  })();
  await client.beta.sessions.events.send(s.id, { events: [say('one')] });
  const turn = await runner.nextTurn();
  await runner.postOk(turn.id, [
    { type: 'agent.message', content: [{ type: 'text', text: 'two' }] },
    { type: 'session.status_idle', stop_reason: { type: 'end_turn' } },
  ]);
  // Well under the 15 s keepalive: the append itself wakes the stream.
  await waitFor(() => got.length >= 3, { what: 'three live events', ms: 10000 });
  const listed = [];
  for await (const e of client.beta.sessions.events.list(s.id)) listed.push(e);
  assert.deepEqual(got, listed);
  await client.beta.sessions.delete(s.id);
  await reading; // the stream ends after session.deleted
  assert.equal(got[got.length - 1].type, 'session.deleted');
  // A reconnect with Last-Event-ID gets what followed that event first.
  const s3 = await client.beta.sessions.create({ agent: agent.id, environment_id: env.id });
  const sent = await client.beta.sessions.events.send(s3.id, { events: [say('a'), say('b'), say('c')] });
  const ctrl = new AbortController();
  const res = await fetch(`${server.url}/v1/sessions/${s3.id}/events/stream`, {
    headers: { 'anthropic-beta': 'managed-agents-2026-04-01', 'x-api-key': key, 'last-event-id': sent.data[0].id },
    signal: ctrl.signal,
  });
  assert.equal(res.status, 200);
  const reader = res.body.getReader();
  let text = '';
  while ((text.match(/^id: /gm) || []).length < 2) text += new TextDecoder().decode((await reader.read()).value);
  ctrl.abort();
  assert.deepEqual([...text.matchAll(/^id: (.*)$/gm)].map((m) => m[1]), [sent.data[1].id, sent.data[2].id]);
  const foreign = await server.raw('GET', `/v1/sessions/${s3.id}/events/stream`, {
    key, headers: { 'last-event-id': got[0].id },
  });
  expectRawError(foreign, 400, { fields: ['Last-Event-ID'] });
  // A malformed Last-Event-ID is refused; an unknown session is 404.
  const s2 = await client.beta.sessions.create({ agent: agent.id, environment_id: env.id });
  const r = await server.raw('GET', `/v1/sessions/${s2.id}/events/stream`, {
    headers: { authorization: `Bearer ${server.createKey()}`, 'last-event-id': 'garbage' },
  });
  expectRawError(r, 400, { fields: ['Last-Event-ID'] });
});

test('credentials: an environment key reaches its environment\'s sessions; a session token only its own', async (t) => {
  const { server, key, client, env, agent } = await start();
  t.after(() => server.stop().then(() => server.cleanup()));
  const envKey = (await server.raw('POST', `/v1/environments/${env.id}/keys`, { key, body: {} })).json.key;
  const env2 = await client.beta.environments.create({ name: 'other', config: { type: 'self_hosted' } });
  const env2Key = (await server.raw('POST', `/v1/environments/${env2.id}/keys`, { key, body: {} })).json.key;
  const a = await client.beta.sessions.create({ agent: agent.id, environment_id: env.id, initial_events: [say('a')] });
  const b = await client.beta.sessions.create({ agent: agent.id, environment_id: env.id, initial_events: [say('b')] });
  const as = (k) => server.client(undefined, { authToken: k, apiKey: null });
  assert.equal((await as(envKey).beta.sessions.retrieve(a.id)).id, a.id);
  await expectError(as(env2Key).beta.sessions.retrieve(a.id), { cls: SDK.NotFoundError, status: 404 });
  await expectError(as(envKey).beta.sessions.list(), { cls: SDK.PermissionDeniedError, status: 403 });
  await expectError(as(envKey).beta.sessions.events.send(a.id, { events: [say('no')] }), {
    cls: SDK.PermissionDeniedError, status: 403, fields: ['events[0].type'],
  });
  // A worker polls an item and gets a session token for that item's session only.
  const work = await as(envKey).beta.environments.work.poll(env.id, {});
  const token = JSON.parse(Buffer.from(work.secret, 'base64url').toString()).sessions_token;
  const mine = work.data.id;
  const other = mine === a.id ? b.id : a.id;
  assert.equal((await as(token).beta.sessions.retrieve(mine)).id, mine);
  await expectError(as(token).beta.sessions.retrieve(other), { cls: SDK.PermissionDeniedError, status: 403, fields: ['another session'] });
  await expectError(as(token).beta.sessions.events.list(other), { cls: SDK.PermissionDeniedError, status: 403 });
});

test('held streams are bounded; a client that leaves releases its stream', async (t) => {
  const { server, key, client, env, agent } = await start(['--max-held-streams', '2', '--stream-keepalive-ms', '200']);
  t.after(() => server.stop().then(() => server.cleanup()));
  const s = await client.beta.sessions.create({ agent: agent.id, environment_id: env.id });
  const open = () => {
    const ctrl = new AbortController();
    const p = fetch(`${server.url}/v1/sessions/${s.id}/events/stream`, {
      headers: { 'anthropic-beta': 'managed-agents-2026-04-01', 'x-api-key': key },
      signal: ctrl.signal,
    });
    return { ctrl, p };
  };
  const a = open();
  const b = open();
  const ra = await a.p;
  const rb = await b.p;
  assert.equal(ra.status, 200);
  assert.match(ra.headers.get('content-type'), /^text\/event-stream/);
  // Both parked (the first keepalive may briefly resume them).
  // A keepalive resumes a parked stream for a moment, so a third stream can slip in then:
  // such a stream never ends, so it is aborted (its slot frees at its next keepalive) and
  // the attempt repeated, never read to its end.
  await waitFor(async () => {
    const x = open();
    const r = await x.p;
    if (r.status !== 429) {
      x.ctrl.abort();
      return null;
    }
    const text = await r.text();
    let json;
    try {
      json = JSON.parse(text);
    } catch {}
    return { status: r.status, headers: r.headers, text, json };
  }, { what: 'a third stream to be refused' }).then((r) => expectRawError(r, 429, { fields: ['stream'] }));
  const held = async () => Number(/^environd_streams_held (\d+)$/m.exec(await (await fetch(`${server.url}/metrics`)).text())[1]);
  await waitFor(async () => (await held()) === 2, { what: 'both streams parked' });
  a.ctrl.abort();
  b.ctrl.abort();
  // Gone clients are noticed at their next keepalive and their streams released.
  await waitFor(async () => (await held()) === 0, { what: 'the streams of gone clients to be released' });
  const c = await waitFor(async () => {
    const x = open();
    const r = await x.p;
    if (r.status === 200) return { x, r };
    await r.text();
    return null;
  }, { what: 'a stream slot to free up' });
  c.x.ctrl.abort();
  void rb;
});

test('kill -9: sessions and events survive intact', async (t) => {
  const { server, key, client, env, agent } = await start();
  t.after(() => server.stop().then(() => server.cleanup()));
  const runner = new AgentRunner(server.url, createAgentKey(server));
  const s = await client.beta.sessions.create({ agent: agent.id, environment_id: env.id, initial_events: [say('keep')] });
  const turn = await runner.poll(0);
  await runner.postOk(turn.id, [
    { type: 'session.status_running' },
    { type: 'agent.tool_use', name: 'read', input: { path: 'x' } },
  ]);
  const events = await runner.events(s.id);
  const session = await client.beta.sessions.retrieve(s.id);
  await server.kill9();
  await server.start();
  const after = new AgentRunner(server.url, runner.key);
  assert.deepEqual(await after.events(s.id), events);
  const again = await server.client(key).beta.sessions.retrieve(s.id);
  assert.deepEqual({ ...again, stats: null }, { ...session, stats: null });
  // The unanswered tool use is still unanswered: end_turn is still refused.
  expectRawError(await after.post(turn.id, [{ type: 'session.status_idle', stop_reason: { type: 'end_turn' } }]), 400, {
    fields: ['stop_reason'],
  });
});

test('an item that stops while its session still needs a worker is replaced in the same transaction', async (t) => {
  const { server, key, client, env, agent } = await start();
  t.after(() => server.stop().then(() => server.cleanup()));
  const envKey = (await server.raw('POST', `/v1/environments/${env.id}/keys`, { key, body: {} })).json.key;
  const asEnv = server.client(undefined, { authToken: envKey, apiKey: null });
  const s = await client.beta.sessions.create({ agent: agent.id, environment_id: env.id, initial_events: [say('hi')] });
  const items = async () => {
    const out = [];
    for await (const w of asEnv.beta.environments.work.list(env.id)) out.push(w);
    return out;
  };
  const [first] = await items();
  assert.deepEqual(first.data, { type: 'session', id: s.id });
  // A worker takes it and stops it at once, with the message unanswered.
  const polled = await asEnv.beta.environments.work.poll(env.id, {});
  assert.equal(polled.id, first.id);
  await asEnv.beta.environments.work.ack(first.id, { environment_id: env.id });
  await asEnv.beta.environments.work.stop(first.id, { environment_id: env.id, force: true });
  const after = await items();
  assert.equal(after.length, 2);
  const fresh = after.find((w) => w.id !== first.id);
  assert.equal(fresh.state, 'queued');
  assert.deepEqual(fresh.data, { type: 'session', id: s.id });
  // A held poll gets the replacement at once.
  assert.equal((await asEnv.beta.environments.work.poll(env.id, { block_ms: 900 })).id, fresh.id);
  // Once the session needs nothing (its turn ended), a stop leaves no replacement.
  const runner = new AgentRunner(server.url, createAgentKey(server));
  const turn = await runner.poll(0);
  await runner.postOk(turn.id, [{ type: 'session.status_idle', stop_reason: { type: 'end_turn' } }]);
  await asEnv.beta.environments.work.stop(fresh.id, { environment_id: env.id, force: true });
  assert.deepEqual((await items()).map((w) => w.state), ['stopped', 'stopped']);
});

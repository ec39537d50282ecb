// Concurrent writes to one object lose nothing: each request loads the object, changes it
// and writes it back in one transaction, so requests that run at once (on PostgreSQL they
// do, in transactions of their own) must each see what the one before committed. Every
// request here patches a different metadata key (or appends its own event); afterwards
// every key (every event) is there.
'use strict';
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { Server } = require('./lib/server');
const { selfHosted, enqueueOk } = require('./lib/work');
const { AgentRunner, createAgentKey } = require('./lib/agent_runner');

const N = 12;
let server, key, api;

before(async () => {
  server = new Server();
  await server.start();
  key = server.createKey();
  api = server.client(key);
});

after(async () => {
  await server.stop();
  server.cleanup();
});

// The metadata every one of the N patches added.
function expected() {
  return Object.fromEntries(Array.from({ length: N }, (_, i) => [`k${i}`, `v${i}`]));
}

async function patchAll(patch) {
  const answers = await Promise.allSettled(Array.from({ length: N }, (_, i) => patch({ [`k${i}`]: `v${i}` })));
  for (const a of answers) assert.equal(a.status, 'fulfilled', String(a.reason));
}

test('concurrent metadata patches of one environment all stay', async () => {
  const env = await api.beta.environments.create({ name: 'cw-env', config: { type: 'self_hosted' } });
  await patchAll((metadata) => api.beta.environments.update(env.id, { metadata }));
  assert.deepEqual((await api.beta.environments.retrieve(env.id)).metadata, expected());
});

test('concurrent metadata patches of one work item all stay', async () => {
  const { envId } = await selfHosted(server, key, 'cw-work');
  const item = await enqueueOk(server, key, envId, 'sesn_cw');
  const work = api.beta.environments.work;
  await patchAll((metadata) => work.update(item.id, { environment_id: envId, metadata }));
  assert.deepEqual((await work.retrieve(item.id, { environment_id: envId })).metadata, expected());
});

test('concurrent agent updates each make a version; the latest has every change', async () => {
  const agent = await api.beta.agents.create({ name: 'cw', model: 'claude-sonnet-4-5' });
  await patchAll((metadata) => api.beta.agents.update(agent.id, { metadata }));
  const latest = await api.beta.agents.retrieve(agent.id);
  assert.equal(latest.version, 1 + N);
  assert.deepEqual(latest.metadata, expected());
  const versions = [];
  for await (const v of api.beta.agents.versions.list(agent.id)) versions.push(v.version);
  assert.deepEqual(versions.sort((a, b) => a - b), Array.from({ length: N + 1 }, (_, i) => i + 1));
});

test('concurrent session updates and events all stay', async () => {
  const env = await api.beta.environments.create({ name: 'cw-sessions', config: { type: 'self_hosted' } });
  const agent = await api.beta.agents.create({ name: 'cw-s', model: 'claude-sonnet-4-5' });
  const s = await api.beta.sessions.create({ agent: agent.id, environment_id: env.id });
  await patchAll((metadata) => api.beta.sessions.update(s.id, { metadata }));
  assert.deepEqual((await api.beta.sessions.retrieve(s.id)).metadata, expected());
  const texts = Array.from({ length: N }, (_, i) => `message ${i}`);
  await Promise.all(
    texts.map((text) =>
      api.beta.sessions.events.send(s.id, { events: [{ type: 'user.message', content: [{ type: 'text', text }] }] }),
    ),
  );
  const seen = [];
  for await (const e of api.beta.sessions.events.list(s.id, { limit: 100 })) {
    if (e.type === 'user.message') seen.push(e.content[0].text);
  }
  assert.deepEqual(seen.sort(), texts.sort());
});

test('concurrent turn polls: each awaiting session is claimed once', async () => {
  const env = await api.beta.environments.create({ name: 'cw-turns', config: { type: 'self_hosted' } });
  const agent = await api.beta.agents.create({ name: 'cw-t', model: 'claude-sonnet-4-5' });
  const sessions = [];
  for (let i = 0; i < N; i++) {
    const initial_events = [{ type: 'user.message', content: [{ type: 'text', text: `hi ${i}` }] }];
    sessions.push((await api.beta.sessions.create({ agent: agent.id, environment_id: env.id, initial_events })).id);
  }
  const runner = new AgentRunner(server.url, createAgentKey(server));
  // Twice as many polls as sessions, all at once: the losers of a race get another
  // session or nothing, never one that was already claimed.
  const claimed = (await Promise.all(Array.from({ length: 2 * N }, () => runner.poll(0)))).filter(Boolean);
  // Whatever the race left unclaimed is claimed by polls one at a time.
  for (let t; (t = await runner.poll(0)); ) claimed.push(t);
  const ids = claimed.map((t) => t.session_id);
  assert.equal(new Set(ids).size, ids.length, `a session was claimed twice: ${ids.join(' ')}`);
  // (The session of the test before awaits a turn too.)
  assert.deepEqual(ids.filter((id) => sessions.includes(id)).sort(), sessions.sort());
});

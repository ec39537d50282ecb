// What a store verb commits decides which held polls are woken, at once rather than at
// their own deadline:
// - a key revoked or the environment deleted: every poll held on it claims again (401);
// - a session's item stopped while the session still needs a worker: the fresh item the
//   same transaction enqueued goes to a held poll.
'use strict';
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { Server } = require('./lib/server');
const { selfHosted, waitFor, pollsHeld } = require('./lib/work');

let server, key;

before(async () => {
  server = new Server();
  await server.start();
  key = server.createKey();
});

after(async () => {
  await server.stop();
  server.cleanup();
});

// Holds `n` polls (block_ms 999) on a fresh environment, then runs `act` on it. Returns
// whether the polls were held and `act` done well before their deadline (conclusive), and
// each poll's status and time to answer.
async function heldThen(name, n, act) {
  const env = await selfHosted(server, key, name);
  // Use the key once first: its first use records last_used_at, a write of its own.
  assert.equal(await env.worker.beta.environments.work.poll(env.envId), null);
  const base = await pollsHeld(server);
  const sentAt = Date.now();
  const polls = Array.from({ length: n }, () =>
    env.worker.beta.environments.work.poll(env.envId, { block_ms: 999 }).then(
      (v) => ({ status: 200, v, at: Date.now() - sentAt }),
      (e) => ({ status: e.status, at: Date.now() - sentAt }),
    ),
  );
  await waitFor(async () => (await pollsHeld(server)) >= base + n, { timeoutMs: 5000, intervalMs: 5, what: 'the held polls' });
  await act(env);
  const actedAt = Date.now() - sentAt;
  const answers = await Promise.all(polls);
  return { conclusive: actedAt < 500, answers };
}

async function expectWoken(t, name, act) {
  const results = [];
  for (let attempt = 0; attempt < 3; attempt++) {
    const r = await heldThen(`${name}-${attempt}`, 3, act);
    // Acted before the deadline: every held poll ends in a 401, its key is gone. On a
    // machine too slow for that, a poll may have reached its deadline first: then it
    // answered null, never an item.
    for (const a of r.answers) {
      if (r.conclusive) assert.equal(a.status, 401, JSON.stringify(r.answers));
      else assert.ok(a.status === 401 || (a.status === 200 && a.v === null), JSON.stringify(r.answers));
    }
    results.push(r);
    if (r.conclusive) break;
  }
  t.diagnostic(JSON.stringify(results));
  const conclusive = results.filter((r) => r.conclusive);
  assert.ok(conclusive.length > 0, 'the machine was too slow to act before the polls\' deadline');
  // Woken, all of them: answered well before the 999 ms deadline.
  for (const r of conclusive) for (const a of r.answers) assert.ok(a.at < 950, `a held poll answered at its deadline: ${JSON.stringify(r.answers)}`);
}

test('polls held when their environment key is revoked answer 401 at once, all of them', async (t) => {
  await expectWoken(t, 'recheck-revoke', async (env) => {
    const keys = await server.raw('GET', `/v1/environments/${env.envId}/keys`, { key });
    assert.equal(keys.status, 200, keys.text);
    const r = await server.raw('DELETE', `/v1/environments/${env.envId}/keys/${keys.json.data[0].id}`, { key });
    assert.equal(r.status, 200, r.text);
  });
});

test('polls held when their environment is deleted answer 401 at once, all of them', async (t) => {
  await expectWoken(t, 'recheck-delete', async (env) => {
    assert.deepEqual(await server.client(key).beta.environments.delete(env.envId), { id: env.envId, type: 'environment_deleted' });
  });
});

test('a poll held when a session\'s item is stopped gets the session\'s fresh item at once', async (t) => {
  const api = server.client(key);
  const agent = await api.beta.agents.create({ name: 'recheck', model: 'claude-sonnet-4-5' });
  const results = [];
  for (let attempt = 0; attempt < 3; attempt++) {
    const env = await selfHosted(server, key, `recheck-session-${attempt}`);
    const w = env.worker.beta.environments.work;
    // A session awaiting its turn needs a worker: it has a live item, delivered and acked here.
    const s = await api.beta.sessions.create({
      agent: agent.id,
      environment_id: env.envId,
      initial_events: [{ type: 'user.message', content: [{ type: 'text', text: 'hi' }] }],
    });
    const item = await w.poll(env.envId);
    assert.ok(item && item.data.id === s.id, JSON.stringify(item));
    await w.ack(item.id, { environment_id: env.envId });
    const base = await pollsHeld(server);
    const sentAt = Date.now();
    const held = w.poll(env.envId, { block_ms: 999 }).then((v) => ({ v, at: Date.now() - sentAt }));
    await waitFor(async () => (await pollsHeld(server)) > base, { timeoutMs: 5000, intervalMs: 5, what: 'the held poll' });
    // Its holder stops the item: the session still awaits its turn, so a fresh item is queued.
    await w.stop(item.id, { environment_id: env.envId, force: true });
    const stoppedAt = Date.now() - sentAt;
    const got = await held;
    assert.ok(got.v && got.v.data.id === s.id && got.v.id !== item.id, `not the session's fresh item: ${JSON.stringify(got.v)}`);
    results.push({ conclusive: stoppedAt < 500, at: got.at });
    await w.stop(got.v.id, { environment_id: env.envId, force: true });
    await api.beta.sessions.archive(s.id);
    if (stoppedAt < 500) break;
  }
  t.diagnostic(JSON.stringify(results));
  const conclusive = results.filter((r) => r.conclusive);
  assert.ok(conclusive.length > 0, "the machine was too slow to stop the item before the poll's deadline");
  for (const r of conclusive) assert.ok(r.at < 950, `the held poll answered at its deadline: ${JSON.stringify(results)}`);
});

// A poll held on an environment whose key is revoked, or which is deleted, answers 401 at
// once, not at its own deadline: the store's revoke and delete say that every held poll of
// the environment must claim again, and the server wakes them all.
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
    // Whenever it came, every held poll ends in a 401: its key is gone.
    for (const a of r.answers) assert.equal(a.status, 401, JSON.stringify(r.answers));
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

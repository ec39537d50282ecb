// What one node answers, every node answers: the queue's stats, and a revoked key.
'use strict';
const { test } = require('node:test');
const assert = require('node:assert/strict');
const F = require('./lib/fleet');

const fx = F.perFile('consistency');

test('work stats agree on every node: depth, pending and oldest_queued_at', async () => {
  const { envId, envKey } = await F.environment(fx.nodes[0], fx.apiKey, 'stats');
  for (let i = 0; i < 10; i++) await F.enqueue(fx.nodes[i % 3], fx.apiKey, envId, `sesn_stats_${i}`);
  // Five workers, each polling through one node, two through A: 3 delivered and left
  // unacked (pending), 2 acked (out of the queue), 5 never delivered (depth).
  const workers = [
    ['w-a1', 0, 'pending'],
    ['w-b1', 1, 'pending'],
    ['w-c1', 2, 'pending'],
    ['w-a2', 0, 'ack'],
    ['w-b2', 1, 'ack'],
  ];
  for (const [w, n, what] of workers) {
    const r = await F.poll(fx.nodes[n], envKey, envId, w, 1);
    assert.ok(r.json, `${w}: ${r.text}`);
    if (what === 'ack') await F.callOk(fx.nodes[n], 'POST', `/v1/environments/${envId}/work/${r.json.id}/ack`, { envKey });
  }
  for (const n of fx.nodes) {
    const s = await F.stats(n, fx.apiKey, envId);
    assert.equal(s.depth, 5, `depth on ${n.url}: ${JSON.stringify(s)}`);
    assert.equal(s.pending, 3, `pending on ${n.url}: ${JSON.stringify(s)}`);
  }
  const all = await Promise.all(fx.nodes.map((n) => F.stats(n, fx.apiKey, envId)));
  for (const s of all) assert.deepEqual([s.depth, s.pending, s.oldest_queued_at], [all[0].depth, all[0].pending, all[0].oldest_queued_at]);
});

test('workers_polling converges to the same count on every node', async () => {
  const { envId, envKey } = await F.environment(fx.nodes[0], fx.apiKey, 'polling');
  // Five workers keep polling an empty queue, each through one node (two through A),
  // for as long as it takes every node to count all five.
  const workers = [['w-a1', 0], ['w-b1', 1], ['w-c1', 2], ['w-a2', 0], ['w-b2', 1]];
  let done = false;
  const loops = workers.map(async ([w, n]) => {
    while (!done) {
      const r = await F.poll(fx.nodes[n], envKey, envId, w, 100);
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json, null);
    }
  });
  let last = [];
  try {
    await F.waitFor(async () => {
      last = (await Promise.all(fx.nodes.map((n) => F.stats(n, fx.apiKey, envId)))).map((x) => x.workers_polling);
      return last.every((x) => x === workers.length);
    }, { timeoutMs: 25000, intervalMs: 250, what: `workers_polling = ${workers.length} on every node` });
  } catch (e) {
    throw new Error(`${e.message}; the nodes say ${JSON.stringify(last)}`);
  } finally {
    done = true;
    await Promise.all(loops);
  }
});

test('a key revoked through one node is refused by every other node at once', async () => {
  const { envId, envKey, keyId } = await F.environment(fx.nodes[0], fx.apiKey, 'revoke');
  await F.enqueue(fx.nodes[0], fx.apiKey, envId, 'sesn_revoke');
  // Each node has just accepted the key (whatever it remembers of it, it remembers now).
  for (const n of fx.nodes) {
    const r = await F.call(n, 'GET', `/v1/environments/${envId}/work?limit=1`, { envKey });
    assert.equal(r.status, 200, r.text);
  }
  const del = await F.callOk(fx.nodes[0], 'DELETE', `/v1/environments/${envId}/keys/${keyId}`, { apiKey: fx.apiKey });
  assert.equal(del.type, 'environment_key_deleted');
  for (const n of [fx.nodes[1], fx.nodes[2], fx.nodes[0]]) {
    // A node that still accepts it had not yet read the revocation's notification when the
    // request came (its environment-key cache, src/api/cred_cache.h): SPEC §5 says the key
    // stops working at once.
    const r = await F.poll(n, envKey, envId, 'w-revoked', 1);
    assert.equal(r.status, 401, `poll with the key revoked through another node, on ${n.url}: ${r.status} ${r.text}`);
    const l = await F.call(n, 'GET', `/v1/environments/${envId}/work`, { envKey });
    assert.equal(l.status, 401, `list with the key revoked through another node, on ${n.url}: ${l.status} (not yet invalidated there)`);
  }
  // The API key that revoked it still works everywhere, and so does a new environment key.
  const k2 = await F.callOk(fx.nodes[2], 'POST', `/v1/environments/${envId}/keys`, { apiKey: fx.apiKey, body: { name: 'w2' } });
  for (const n of fx.nodes) assert.equal((await F.poll(n, k2.key, envId, 'w-new', 1)).status, 200);
});

// The database goes away mid-request (an immediate shutdown: every backend killed, as in
// a crash) and comes back: clients get 503 with retry-after, never a 4xx; the nodes serve
// again once it is back; no acknowledged write is lost. This file stops and restarts its
// cluster, so it has a private one.
'use strict';
const { test } = require('node:test');
const assert = require('node:assert/strict');
const F = require('./lib/fleet');

const fx = F.perFile('outage', { privateCluster: true });

test('the database crashes and restarts under load: 503 + retry-after meanwhile, nothing acknowledged lost', async () => {
  const { envId, envKey } = await F.environment(fx.nodes[0], fx.apiKey, 'outage');
  const enqueued = new Map(); // work id → session id: answered 201
  const acked = new Set(); // answered 200 to ack
  const statuses = new Map();
  let during503 = 0;
  let down = false;
  let stop = false;
  const seen = (what, r) => {
    const k = `${what} ${r.status}`;
    statuses.set(k, (statuses.get(k) || 0) + 1);
    assert.ok(r.status < 400 || r.status === 503, `${what} answered ${r.status}: only a success or a 503 may answer while the database is away (a 4xx stops the SDK's workers, a 500 says environd broke): ${r.text}`);
    if (r.status === 503) {
      assert.match(r.headers.get('retry-after') || '', /^\d+$/, `${what}: 503 without retry-after`);
      assert.equal(r.json && r.json.error && r.json.error.type, 'overloaded_error', r.text);
      if (down) during503++;
    }
  };
  let seq = 0;
  const producer = async (node) => {
    while (!stop) {
      const sid = `sesn_outage_${seq++}`;
      const r = await F.call(node, 'POST', `/v1/environments/${envId}/work`, { apiKey: fx.apiKey, body: { data: { type: 'session', id: sid } } });
      seen('enqueue', r);
      if (r.status === 201) enqueued.set(r.json.id, sid);
      else if (r.status === 503) await F.sleep(20);
    }
  };
  const worker = async (node, w) => {
    while (!stop) {
      const r = await F.poll(node, envKey, envId, `outage-${w}`, 200);
      seen('poll', r);
      if (r.status === 503) {
        await F.sleep(20);
        continue;
      }
      if (!r.json) continue;
      const a = await F.call(node, 'POST', `/v1/environments/${envId}/work/${r.json.id}/ack`, { envKey });
      seen('ack', a);
      if (a.status === 200) acked.add(r.json.id);
    }
  };
  const load = Promise.all(fx.nodes.flatMap((n, i) => [producer(n), worker(n, i)]));

  await F.waitFor(() => acked.size >= 20, { what: '20 acks before the crash' });
  down = true;
  fx.cluster.crash();
  // Every node must answer 503 while the database is gone (not hang, not 4xx).
  for (const n of fx.nodes) {
    const r = await F.call(n, 'GET', `/v1/environments/${envId}/work/stats`, { apiKey: fx.apiKey });
    seen('stats', r);
    assert.equal(r.status, 503, `stats on ${n.url} with the database down: ${r.status} ${r.text}`);
  }
  await F.waitFor(() => during503 >= 10, { what: '503s under load while the database is down' });
  fx.cluster.restart();
  down = false;
  const backAt = enqueued.size;
  await F.waitFor(() => enqueued.size >= backAt + 30, { timeoutMs: 60000, what: 'enqueues succeeding again' });
  stop = true;
  await load;

  // Every node serves again: ready, and a whole cycle through each.
  for (const [i, n] of fx.nodes.entries()) {
    const ready = await F.waitFor(async () => (await F.call(n, 'GET', '/readyz')).status === 200, { what: `/readyz on node ${i}` });
    assert.ok(ready);
    const item = await F.enqueue(n, fx.apiKey, envId, `sesn_after_${i}`);
    // Held polls take what is queued first: drain until this one comes back.
    for (;;) {
      const r = await F.poll(n, envKey, envId, `after-${i}`, 999);
      assert.equal(r.status, 200, r.text);
      assert.ok(r.json, `node ${i}: the queue ran dry before ${item.id} was delivered`);
      if (r.json.id === item.id) break;
      const a = await F.call(n, 'POST', `/v1/environments/${envId}/work/${r.json.id}/ack`, { envKey });
      assert.equal(a.status, 200, a.text);
      acked.add(r.json.id);
    }
    await F.finish(n, envKey, envId, item.id);
  }

  // Nothing acknowledged is lost: every 201 is an item, every 200 to an ack left it acked.
  assert.ok(enqueued.size > 50 && acked.size > 20, `load too small: ${enqueued.size} enqueued, ${acked.size} acked`);
  for (const [id, sid] of enqueued) {
    const r = await F.call(fx.nodes[seq++ % 3], 'GET', `/v1/environments/${envId}/work/${id}`, { apiKey: fx.apiKey });
    assert.equal(r.status, 200, `enqueued ${id} (${sid}) answered 201 and is gone: ${r.text}`);
    assert.equal(r.json.data.id, sid);
    if (acked.has(id)) {
      assert.ok(['starting', 'active'].includes(r.json.state), `${id} was acked, now ${r.json.state}`);
      assert.ok(r.json.acknowledged_at, `${id} lost its acknowledged_at`);
    }
  }
  assert.ok(during503 >= 10, `503s while down: ${during503}`);
  const st = Object.fromEntries(statuses);
  assert.ok(!Object.keys(st).some((k) => / 4\d\d$/.test(k)), JSON.stringify(st));
});

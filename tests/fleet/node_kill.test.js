// kill -9 of one node while it holds leases: its workers are gone with it; the items it
// delivered and that were acked through it return to the queue when their lease runs out
// (the sweeper runs on every node) and pollers on the other nodes finish them. What was
// acknowledged through the dead node stays as acknowledged.
'use strict';
const { test } = require('node:test');
const assert = require('node:assert/strict');
const F = require('./lib/fleet');

const TTL_S = 10; // the shortest lease a heartbeat can ask for
const fx = F.perFile('kill');

test('kill -9 of a node holding leases: its items come back after the lease and are finished elsewhere; nothing acknowledged is lost', async () => {
  const [A, B, C] = fx.nodes;
  const { envId, envKey } = await F.environment(A, fx.apiKey, 'kill');
  const N = 24;
  const ids = [];
  for (let i = 0; i < N; i++) ids.push((await F.enqueue(fx.nodes[i % 3], fx.apiKey, envId, `sesn_kill_${i}`)).id);

  // Through C: 8 items finished (ack, heartbeat, stop), 16 acked and heartbeated with a
  // 10 s lease (`active`), which the dead node's workers will never renew.
  const stoppedViaC = new Set();
  const leased = new Map(); // id → when its lease was last renewed (ms, our clock)
  for (let i = 0; i < N; i++) {
    const r = await F.poll(C, envKey, envId, `c-worker-${i % 4}`);
    assert.equal(r.status, 200, r.text);
    assert.ok(r.json, `poll ${i} on C answered null`);
    const id = r.json.id;
    if (stoppedViaC.size < 8) {
      await F.finish(C, envKey, envId, id);
      stoppedViaC.add(id);
      continue;
    }
    const base = `/v1/environments/${envId}/work/${id}`;
    assert.equal((await F.callOk(C, 'POST', `${base}/ack`, { envKey })).state, 'starting');
    const hb = await F.callOk(C, 'POST', `${base}/heartbeat?expected_last_heartbeat=NO_HEARTBEAT&desired_ttl_seconds=${TTL_S}`, { envKey });
    assert.equal(hb.state, 'active');
    assert.equal(hb.ttl_seconds, TTL_S);
    leased.set(id, Date.now());
  }
  assert.equal(leased.size, 16);
  await C.kill9();
  const killedAt = Date.now();

  // Pollers on A and B only. An item comes back only once its lease ran out.
  const expired0 = (await F.metric(A, 'environd_leases_expired_total')) + (await F.metric(B, 'environd_leases_expired_total'));
  const redelivered = new Map();
  const deadline = killedAt + 90000;
  await Promise.all(
    Array.from({ length: 4 }, async (_, w) => {
      const node = w % 2 ? B : A;
      while (redelivered.size < leased.size) {
        assert.ok(Date.now() < deadline, `only ${redelivered.size}/${leased.size} items came back within 90 s`);
        const r = await F.poll(node, envKey, envId, `survivor-${w}`);
        assert.equal(r.status, 200, r.text);
        if (!r.json) continue;
        const id = r.json.id;
        assert.ok(leased.has(id), `${id} was delivered again though it was ${stoppedViaC.has(id) ? 'stopped' : 'not leased'} through the dead node`);
        assert.ok(!redelivered.has(id), `${id} delivered twice after the kill`);
        redelivered.set(id, Date.now());
        // The lease was the dead worker's until it ran out: no earlier (1 s for clock reads).
        assert.ok(Date.now() - leased.get(id) >= TTL_S * 1000 - 1000, `${id} redelivered ${Date.now() - leased.get(id)} ms after its ${TTL_S} s lease was renewed`);
        assert.equal(r.json.state, 'queued');
        assert.equal(r.json.acknowledged_at, null, 'T18 clears the ack');
        await F.finish(node, envKey, envId, id);
      }
    }),
  );
  const expired = (await F.metric(A, 'environd_leases_expired_total')) + (await F.metric(B, 'environd_leases_expired_total')) - expired0;
  assert.ok(expired >= leased.size, `the surviving nodes' sweepers expired ${expired} leases, want ≥ ${leased.size}`);

  // Every item is there and stopped; those stopped through C were never touched again.
  for (const id of ids) {
    const w = await F.callOk(A, 'GET', `/v1/environments/${envId}/work/${id}`, { apiKey: fx.apiKey });
    assert.equal(w.state, 'stopped', `${id}`);
  }
  const rows = fx.cluster.psql(
    `SELECT id, delivery_count FROM work WHERE environment_id = '${envId}' ORDER BY id`,
    fx.db.name,
  ).split('\n').map((l) => l.split('|'));
  assert.equal(rows.length, N);
  for (const [id, n] of rows) assert.equal(Number(n), stoppedViaC.has(id) ? 1 : 2, `deliveries of ${id}`);
});

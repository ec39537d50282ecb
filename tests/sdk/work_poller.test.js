// The SDK's own `WorkPoller` (lib/environments/poller.ts) and a fleet of plain SDK
// pollers against one environd: every item is delivered, acked and stopped exactly
// once (SPEC §3: T2, T4, T7, T16; "No two workers ever hold one lease").
'use strict';
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { Server } = require('./lib/server');
const { SDK, Work, selfHosted, enqueueOk, enqueueMany, decodeSecret, assertWork, listAllWork, expectStatus, waitFor } = require('./lib/work');

let server;
let key;
let envSeq = 0;

const api = () => server.client(key);
const newEnv = (tag) => selfHosted(server, key, `wp-${tag}-${++envSeq}`);
const at = (envId) => ({ environment_id: envId });

before(async () => {
  server = new Server();
  await server.start();
  key = server.createKey();
});

after(async () => {
  if (server) {
    await server.stop();
    server.cleanup();
  }
});

function countBy(ids) {
  const m = new Map();
  for (const id of ids) m.set(id, (m.get(id) || 0) + 1);
  return m;
}

// The WorkPoller's autoStop posts `work.stop` without `force` (poller.ts), i.e. a
// graceful stop: SPEC T14 turns starting/active into `stopping` (T19 makes it `stopped`
// when its lease runs out). So after the poller every item must have had its stop
// requested; then a second stop (T15) brings each to `stopped`.
async function assertAutoStoppedThenFinish(worker, envId, n) {
  const all = await listAllWork(worker, envId);
  assert.equal(all.length, n);
  const notRequested = all.filter((w) => !['stopping', 'stopped'].includes(w.state) || !w.stop_requested_at);
  assert.deepEqual(notRequested.slice(0, 5).map((w) => `${w.id}:${w.state}`), [], `${notRequested.length} items the poller did not stop`);
  for (const w of all) assert.ok(w.acknowledged_at, `${w.id} was acked`);
  const ww = worker.beta.environments.work;
  let next = 0;
  const stopping = all.filter((w) => w.state === 'stopping');
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (next < stopping.length) {
        const w = stopping[next++];
        const s = await ww.stop(w.id, { environment_id: envId, force: false });
        assert.equal(s.state, 'stopped', `T15 for ${w.id}`);
      }
    }),
  );
  const after = await listAllWork(worker, envId);
  const notStopped = after.filter((w) => w.state !== 'stopped');
  assert.deepEqual(notStopped.slice(0, 5).map((w) => `${w.id}:${w.state}`), [], `${notStopped.length} items not stopped`);
  return after;
}

function assertExactlyOnce(seen, expectedIds, what) {
  const counts = countBy(seen);
  const dups = [...counts].filter(([, n]) => n > 1);
  assert.deepEqual(dups, [], `${what}: items seen more than once`);
  const missing = expectedIds.filter((id) => !counts.has(id));
  assert.deepEqual(missing.slice(0, 5), [], `${what}: ${missing.length} items never seen`);
  assert.equal(seen.length, expectedIds.length, `${what}: count`);
}

test('WorkPoller is the SDK class and drains 300 items, each exactly once, auto-stopping them', async () => {
  const { envId, envKey, worker } = await newEnv('drain');
  // Enqueued one after another, so FIFO order is defined.
  const items = await enqueueMany(server, key, envId, 300, 'sesn_drain', 1);
  const poller = api().beta.environments.work.poller({ environmentId: envId, environmentKey: envKey, drain: true, workerId: 'drainer-1' });
  assert.ok(poller instanceof Work.WorkPoller);
  const seen = [];
  const t0 = Date.now();
  for await (const work of poller) {
    assertWork(work, { secret: true, envId });
    // The poller acked it before yielding: the item is starting now.
    assert.equal(work.state, 'queued', 'the yielded object is the poll response');
    const s = decodeSecret(work.secret);
    assert.equal(s.api_base_url, server.url);
    seen.push(work.id);
    assert.ok(Date.now() - t0 < 120000, 'draining 300 items hung (over 120 s)');
  }
  // FIFO for a single poller.
  assert.deepEqual(seen, items.map((x) => x.id), 'a single poller gets items in FIFO order');
  assertExactlyOnce(seen, items.map((x) => x.id), 'drain');
  const all = await assertAutoStoppedThenFinish(worker, envId, 300);
  for (const w of all) assert.ok(w.stopped_at);
  const st = await api().beta.environments.work.stats(envId);
  assert.equal(st.depth, 0);
  assert.equal(st.pending, 0);
  assert.equal(st.oldest_queued_at, null);
  assert.equal(st.workers_polling, 1);
});

test('four WorkPollers drain 300 items together, each item exactly once', async () => {
  const { envId, envKey, worker } = await newEnv('drain4');
  const items = await enqueueMany(server, key, envId, 300, 'sesn_d4');
  const seen = [];
  const per = [0, 0, 0, 0];
  await Promise.all(
    per.map(async (_, i) => {
      const poller = api().beta.environments.work.poller({
        environmentId: envId,
        environmentKey: envKey,
        drain: true,
        blockMs: i % 2 ? null : 999,
        workerId: `d4-${i}`,
      });
      for await (const work of poller) {
        seen.push(work.id);
        per[i]++;
      }
    }),
  );
  assertExactlyOnce(seen, items.map((x) => x.id), 'four pollers');
  assert.ok(per.filter((n) => n > 0).length >= 2, `work was shared: ${per}`);
  await assertAutoStoppedThenFinish(worker, envId, 300);
  assert.equal((await api().beta.environments.work.stats(envId)).workers_polling, 4);
});

test('WorkPoller: break stops the current item; autoStop false leaves it running; abort ends the loop', async () => {
  const { envId, envKey, worker } = await newEnv('ctl');
  const a = api().beta.environments.work;
  const first = await enqueueOk(server, key, envId, 'sesn_ctl_1');
  const second = await enqueueOk(server, key, envId, 'sesn_ctl_2');

  for await (const work of a.poller({ environmentId: envId, environmentKey: envKey, drain: true })) {
    assert.equal(work.id, first.id);
    break;
  }
  // autoStop on break: a graceful stop (T14) → stopping, stop requested.
  const afterBreak = assertWork(await a.retrieve(first.id, at(envId)), { state: 'stopping' });
  assert.ok(afterBreak.stop_requested_at);

  for await (const work of a.poller({ environmentId: envId, environmentKey: envKey, drain: true, autoStop: false })) {
    assert.equal(work.id, second.id);
    // Heartbeat it with the session token from the secret, as a runner does.
    const tok = decodeSecret(work.secret).sessions_token;
    const hb = await server.client(tok).beta.environments.work.heartbeat(work.id, { ...at(envId), expected_last_heartbeat: 'NO_HEARTBEAT' });
    assert.equal(hb.state, 'active');
  }
  assertWork(await a.retrieve(second.id, at(envId)), { state: 'active' });
  await a.stop(second.id, { ...at(envId), force: true });

  // An idle poller (drain false) is ended by abort(), promptly.
  const poller = a.poller({ environmentId: envId, environmentKey: envKey, workerId: 'idle' });
  const done = (async () => {
    const got = [];
    for await (const w of poller) got.push(w.id);
    return got;
  })();
  const third = await enqueueOk(server, key, envId, 'sesn_ctl_3');
  await waitFor(async () => (await a.retrieve(third.id, at(envId))).state === 'stopping', { timeoutMs: 20000, what: 'the idle poller to take the item' });
  const t0 = Date.now();
  poller.abort();
  const got = await done;
  assert.ok(Date.now() - t0 < 5000, 'abort ended the loop promptly');
  assert.deepEqual(got, [third.id]);
  await assertAutoStoppedThenFinish(worker, envId, 3);
});

test('WorkPoller with a revoked or foreign environment key fails fatally instead of spinning', async () => {
  const A = await newEnv('fatalA');
  const B = await newEnv('fatalB');
  const a = server.client(key, { logLevel: 'off' }).beta.environments.work;
  // A's key on B: 403, fatal.
  const run = async (opts) => {
    for await (const w of a.poller({ drain: true, ...opts })) assert.fail(`unexpected item ${w.id}`);
  };
  await expectStatus(run({ environmentId: B.envId, environmentKey: A.envKey }), 403, { where: 'foreign key: ' });
  await expectStatus(run({ environmentId: A.envId, environmentKey: 'envd_env_unknown' }), 401, { where: 'unknown key: ' });
});

test('16 concurrent plain SDK pollers over 2,000 items: each acked exactly once, all stopped', async () => {
  const N = 2000;
  const WORKERS = 16;
  const { envId, envKey, worker } = await newEnv('fleet');
  const deadline = Date.now() + 120000;
  const delivered = [];
  const acked = [];
  const stopped = new Set();
  const errors = [];
  let enqueued = [];
  let enqueueDone = false;

  async function runWorker(i) {
    const w = server.client(envKey).beta.environments.work;
    const wid = `fleet-${i}`;
    while (Date.now() < deadline && !(enqueueDone && stopped.size >= N)) {
      let item;
      try {
        item = await w.poll(envId, { block_ms: 999, 'Anthropic-Worker-ID': wid });
      } catch (e) {
        errors.push(`poll: ${e.message}`);
        return;
      }
      if (!item) continue;
      delivered.push(item.id);
      try {
        // Half the fleet works with the item's session token, half with the env key.
        const c = i % 2 ? server.client(decodeSecret(item.secret).sessions_token).beta.environments.work : w;
        const ackd = await c.ack(item.id, at(envId));
        acked.push(item.id);
        if (ackd.state !== 'starting') errors.push(`${item.id} acked into ${ackd.state}`);
        const hb = await c.heartbeat(item.id, { ...at(envId), expected_last_heartbeat: 'NO_HEARTBEAT', desired_ttl_seconds: 60 });
        if (hb.state !== 'active' || !hb.lease_extended) errors.push(`${item.id} heartbeat ${JSON.stringify(hb)}`);
        const st = await c.stop(item.id, { ...at(envId), force: true });
        if (st.state !== 'stopped') errors.push(`${item.id} stop → ${st.state}`);
        stopped.add(item.id);
      } catch (e) {
        errors.push(`${item.id}: ${e.status} ${e.message}`);
      }
    }
  }

  const fleet = Array.from({ length: WORKERS }, (_, i) => runWorker(i));
  // Enqueue while the fleet is already polling (held polls get woken).
  enqueued = await enqueueMany(server, key, envId, N, 'sesn_fleet', 16);
  enqueueDone = true;
  await Promise.all(fleet);

  assert.deepEqual(errors.slice(0, 10), [], `${errors.length} worker errors`);
  const ids = enqueued.map((x) => x.id);
  assert.equal(new Set(ids).size, N);
  assertExactlyOnce(acked, ids, 'acked');
  assertExactlyOnce(delivered, ids, 'delivered');
  assert.equal(stopped.size, N);
  assert.equal((await worker.beta.environments.work.list(envId)).data.length, 20, 'default page size');
  const all = await listAllWork(worker, envId);
  assert.equal(all.length, N);
  const bad = all.filter((w) => w.state !== 'stopped');
  assert.deepEqual(bad.slice(0, 5).map((w) => `${w.id}:${w.state}`), [], `${bad.length} items not stopped`);
  const st = await api().beta.environments.work.stats(envId);
  assert.equal(st.depth, 0);
  assert.equal(st.pending, 0);
  assert.equal(st.workers_polling, WORKERS);
  // Nothing is left to deliver.
  assert.equal(await server.client(envKey).beta.environments.work.poll(envId, { reclaim_older_than_ms: 0 }), null);
  assert.ok(SDK);
});

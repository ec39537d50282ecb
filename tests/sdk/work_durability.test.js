// Work-queue durability (DESIGN "Durability", SPEC §3): 16 SDK pollers work through
// 1,000 items; the server is killed with SIGKILL mid-way and restarted on the same
// database. Nothing is lost, nothing a client was told is forgotten, no item is held
// by two leases, and the survivors (including leases taken before the crash, resumed
// with the pre-crash session tokens) finish cleanly.
'use strict';
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { Server } = require('./lib/server');
const { SDK, HeartbeatPreconditionFailed, selfHosted, enqueueMany, decodeSecret, assertWork, listAllWork } = require('./lib/work');

const N = 1000;
const WORKERS = 16;
const KILL_AFTER_STOPS = 450;

let server;
let key;

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

const at = (envId) => ({ environment_id: envId });

test('kill -9 mid-way through 1,000 items loses nothing and never doubles a lease', async (t) => {
  const { envId, envKey } = await selfHosted(server, key, 'wd-fleet');
  const enqueued = await enqueueMany(server, key, envId, N, 'sesn_dur', 16);
  const ids = enqueued.map((x) => x.id);
  assert.equal(new Set(ids).size, N);

  // What the clients were told, per item.
  const deliveries = new Map(); // id → number of polls that returned it
  const holder = new Map(); // id → { token, lastHb, stage, inFlight }
  const ackOk = new Map(); // id → successful ack responses
  const stoppedOk = new Set(); // stop answered 200 "stopped"
  const errors = [];
  let crashed = false;
  let killReached;
  const killPoint = new Promise((r) => (killReached = r));
  const deadline = Date.now() + 120000;

  const bump = (m, id) => m.set(id, (m.get(id) || 0) + 1);

  async function phase1Worker(i) {
    const w = server.client(envKey).beta.environments.work;
    while (!crashed && Date.now() < deadline) {
      let item;
      try {
        item = await w.poll(envId, { block_ms: 999, 'Anthropic-Worker-ID': `dur-${i}` });
      } catch (e) {
        if (!crashed) errors.push(`poll: ${e.message}`);
        return;
      }
      if (!item) continue;
      bump(deliveries, item.id);
      const h = { token: decodeSecret(item.secret).sessions_token, lastHb: null, stage: 'ack', inFlight: true };
      holder.set(item.id, h);
      const c = server.client(h.token).beta.environments.work;
      try {
        await c.ack(item.id, at(envId));
        bump(ackOk, item.id);
        h.stage = 'heartbeat';
        const hb = await c.heartbeat(item.id, { ...at(envId), expected_last_heartbeat: 'NO_HEARTBEAT', desired_ttl_seconds: 120 });
        h.lastHb = hb.last_heartbeat;
        h.stage = 'stop';
        const st = await c.stop(item.id, { ...at(envId), force: true });
        if (st.state !== 'stopped') errors.push(`${item.id}: stop → ${st.state}`);
        stoppedOk.add(item.id);
        h.stage = 'done';
        h.inFlight = false;
        if (stoppedOk.size >= KILL_AFTER_STOPS) killReached();
      } catch (e) {
        if (!crashed) errors.push(`${item.id} at ${h.stage}: ${e.status} ${e.message}`);
        return;
      }
    }
  }

  const fleet = Array.from({ length: WORKERS }, (_, i) => phase1Worker(i));
  await Promise.race([killPoint, Promise.all(fleet)]);
  assert.ok(stoppedOk.size >= KILL_AFTER_STOPS, `only ${stoppedOk.size} items done before the deadline: ${errors.slice(0, 3)}`);
  crashed = true;
  await server.kill9();
  await Promise.all(fleet);
  assert.deepEqual(errors, [], 'errors before the crash');
  const stopsBeforeCrash = stoppedOk.size;
  assert.ok(stopsBeforeCrash < N, 'the crash came mid-way');

  // No client acked an item twice, and no item went to two pollers.
  for (const [id, n] of ackOk) assert.equal(n, 1, `${id} acked ${n} times before the crash`);
  for (const [id, n] of deliveries) assert.equal(n, 1, `${id} delivered ${n} times before the crash`);

  await server.start();
  const envWorker = server.client(envKey);
  const api = server.client(key).beta.environments.work;

  // Every item is still there: count == enqueued, same ids.
  const all = await listAllWork(envWorker, envId);
  assert.equal(all.length, N, 'items lost or invented by the crash');
  assert.deepEqual(all.map((x) => x.id).sort(), [...ids].sort());
  const byId = new Map(all.map((x) => [x.id, x]));
  const tally = { stopped: 0, queued: 0, starting: 0, active: 0, stopping: 0 };
  for (const x of all) {
    assertWork(x, { envId });
    tally[x.state]++;
  }
  assert.equal(tally.stopping, 0, 'nothing was stopped gracefully');
  // Every stop a client saw survived.
  for (const id of stoppedOk) assert.equal(byId.get(id).state, 'stopped', `${id} was stopped before the crash`);
  for (const x of all) {
    const h = holder.get(x.id);
    const acked = ackOk.get(x.id) || 0;
    if (acked) assert.notEqual(x.state, 'queued', `${x.id}: an acknowledged ack was lost`);
    if (h && h.lastHb && x.state !== 'stopped') assert.equal(x.state, 'active', `${x.id}: an acknowledged heartbeat was lost`);
    if (x.state === 'starting' || x.state === 'active') {
      // Held by exactly one lease: exactly one client got it, and only it acked it
      // (or its ack was in flight at the crash).
      assert.ok(h, `${x.id} is ${x.state} but no client was ever given it`);
      assert.equal(deliveries.get(x.id), 1);
      assert.ok(acked === 1 || (h.inFlight && h.stage === 'ack'), `${x.id} is ${x.state} without a client ack`);
    }
    if (x.state === 'stopped') assert.ok(h, `${x.id} stopped but never delivered`);
    if (!h) assert.equal(x.state, 'queued', `${x.id} was never delivered`);
  }
  t.diagnostic(`after the crash: ${JSON.stringify(tally)}; client-confirmed stops ${stopsBeforeCrash}`);
  const st = await api.stats(envId);
  assert.equal(st.depth + st.pending, tally.queued, `stats after restart: ${JSON.stringify(st)} vs ${JSON.stringify(tally)}`);
  assert.equal(tally.stopped + tally.queued + tally.starting + tally.active, N);

  // A held item is never handed to another poller, even with reclaim_older_than_ms=0.
  const held = all.filter((x) => x.state === 'starting' || x.state === 'active').map((x) => x.id);
  const heldSet = new Set(held);

  // The pre-crash holders resume with their pre-crash session tokens and finish.
  for (const id of held) {
    const h = holder.get(id);
    const c = server.client(h.token).beta.environments.work;
    let expected = h.lastHb || 'NO_HEARTBEAT';
    let hb;
    try {
      hb = await c.heartbeat(id, { ...at(envId), expected_last_heartbeat: expected });
    } catch (e) {
      // Only a heartbeat that was in flight at the crash may have moved the stored value.
      assert.ok(e instanceof HeartbeatPreconditionFailed && h.stage === 'heartbeat', `${id} resume heartbeat: ${e.message}`);
      expected = e.details.current_state.last_heartbeat || 'NO_HEARTBEAT';
      hb = await c.heartbeat(id, { ...at(envId), expected_last_heartbeat: expected });
    }
    assert.equal(hb.state, 'active');
    assert.equal(hb.lease_extended, true);
    const s = await c.stop(id, { ...at(envId), force: true });
    assert.equal(s.state, 'stopped');
  }

  // The queued rest is finished by a fresh fleet (acks with the session token, so a
  // lost redelivery race is a 401, never a second holder).
  const target = new Set(all.filter((x) => x.state === 'queued').map((x) => x.id));
  const finished = new Set();
  const ack2 = new Map();
  const errors2 = [];
  const deadline2 = Date.now() + 120000;
  async function phase2Worker(i) {
    const w = server.client(envKey).beta.environments.work;
    while (finished.size < target.size && Date.now() < deadline2) {
      const item = await w.poll(envId, { block_ms: 500, reclaim_older_than_ms: 1000, 'Anthropic-Worker-ID': `dur2-${i}` });
      if (!item) continue;
      if (heldSet.has(item.id) || stoppedOk.has(item.id)) errors2.push(`${item.id} was handed out again`);
      assert.equal(decodeSecret(item.secret).api_base_url, server.url);
      const c = server.client(decodeSecret(item.secret).sessions_token).beta.environments.work;
      try {
        await c.ack(item.id, at(envId));
      } catch (e) {
        if (e.status === 401) continue; // redelivered to someone else meanwhile
        throw e;
      }
      bump(ack2, item.id);
      await c.heartbeat(item.id, { ...at(envId), expected_last_heartbeat: 'NO_HEARTBEAT' });
      await c.stop(item.id, { ...at(envId), force: true });
      finished.add(item.id);
    }
  }
  await Promise.all(Array.from({ length: WORKERS }, (_, i) => phase2Worker(i)));
  assert.deepEqual(errors2, []);
  assert.equal(finished.size, target.size, 'the queued rest was finished');
  for (const id of target) assert.ok(finished.has(id), `${id} never finished`);
  for (const [id, n] of ack2) {
    assert.equal(n, 1, `${id} acked ${n} times after the restart`);
    assert.ok(!ackOk.has(id), `${id} acked before the crash and again after it`);
  }

  const end = await listAllWork(envWorker, envId);
  assert.equal(end.length, N);
  const notStopped = end.filter((x) => x.state !== 'stopped');
  assert.deepEqual(notStopped.slice(0, 5).map((x) => `${x.id}:${x.state}`), [], `${notStopped.length} not stopped`);
  const fin = await api.stats(envId);
  assert.equal(fin.depth, 0);
  assert.equal(fin.pending, 0);
  assert.equal(fin.oldest_queued_at, null);
  assert.equal(await envWorker.beta.environments.work.poll(envId, { reclaim_older_than_ms: 0 }), null);
  assert.ok(SDK);
});

test('after a SIGTERM restart a stopped item stays stopped and its token still sees it stopped', async () => {
  const { envId, envKey } = await selfHosted(server, key, 'wd-term');
  const w = () => server.client(envKey).beta.environments.work;
  const enq = await server.raw('POST', `/v1/environments/${envId}/work`, { key, body: { data: { type: 'session', id: 'sesn_term' }, metadata: { a: 'b' } } });
  assert.equal(enq.status, 201);
  const item = await w().poll(envId);
  const tok = decodeSecret(item.secret).sessions_token;
  await w().ack(item.id, at(envId));
  const hb = await w().heartbeat(item.id, { ...at(envId), expected_last_heartbeat: 'NO_HEARTBEAT', desired_ttl_seconds: 300 });
  await server.restart();
  // The lease, its heartbeat and its token survive a clean restart.
  const c = server.client(tok).beta.environments.work;
  const r = await c.retrieve(item.id, at(envId));
  assertWork(r, { state: 'active' });
  assert.equal(r.latest_heartbeat_at, hb.last_heartbeat);
  assert.deepEqual(r.metadata, { a: 'b' });
  const hb2 = await c.heartbeat(item.id, { ...at(envId), expected_last_heartbeat: hb.last_heartbeat });
  assert.equal(hb2.state, 'active');
  await c.stop(item.id, { ...at(envId), force: true });
  await server.kill9();
  await server.start();
  assertWork(await server.client(key).beta.environments.work.retrieve(item.id, at(envId)), { state: 'stopped' });
  // The token outlives the stop (the SDK's worker heartbeats a stopped item: T11), and the
  // crash changed nothing about that.
  assertWork(await server.client(tok).beta.environments.work.retrieve(item.id, at(envId)), { state: 'stopped' });
  const hb3 = await server.client(tok).beta.environments.work.heartbeat(item.id, at(envId));
  assert.equal(hb3.state, 'stopped');
  assert.equal(hb3.lease_extended, false);
  // Dedupe is durable too: the stopped session can be enqueued anew (201).
  const again = await server.raw('POST', `/v1/environments/${envId}/work`, { key, body: { data: { type: 'session', id: 'sesn_term' }, metadata: {} } });
  assert.equal(again.status, 201, again.text);
  const dup = await server.raw('POST', `/v1/environments/${envId}/work`, { key, body: { data: { type: 'session', id: 'sesn_term' }, metadata: {} } });
  assert.equal(dup.status, 200);
  assert.equal(dup.json.id, again.json.id);
});

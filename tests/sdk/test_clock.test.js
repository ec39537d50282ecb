// Time-driven promises, proven without sleeping through them: `environd serve --test-clock`
// serves POST /v1/environd/test/clock, which moves the server's clocks. A 90 s lease
// expires (T18), a reclaim window closes (T3) and the 30 s `workers_polling` horizon passes
// in milliseconds. A step of the wall clock alone (`step_wall_ms`) must move no lease: a
// running server decides leases by its monotonic clock.
'use strict';
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { Server } = require('./lib/server');
const { SDK, selfHosted, enqueueOk, decodeSecret, assertWork, assertHeartbeat, expectStatus, TS_RE } = require('./lib/work');
const { expectRawError } = require('./lib/helpers');

let server;
let key;
let envSeq = 0;

const api = () => server.client(key);
const newEnv = (tag) => selfHosted(server, key, `tc-${tag}-${++envSeq}`);
const at = (envId) => ({ environment_id: envId });

async function moveClock(body) {
  const r = await server.raw('POST', '/v1/environd/test/clock', { key, body });
  assert.equal(r.status, 200, `test clock: ${r.status} ${r.text}`);
  assert.equal(r.json.type, 'test_clock');
  assert.match(r.json.wall, TS_RE);
  assert.match(r.json.lease_now, TS_RE);
  return r.json;
}
const advance = (ms) => moveClock({ advance_ms: ms });

async function stateOf(envId, id) {
  return (await api().beta.environments.work.retrieve(id, at(envId))).state;
}

before(async () => {
  server = new Server({ args: ['--test-clock'] });
  await server.start();
  key = server.createKey();
});

after(async () => {
  if (server) {
    await server.stop();
    server.cleanup();
  }
});

test('without --test-clock the route does not exist', async () => {
  const plain = new Server();
  await plain.start();
  try {
    const k = plain.createKey();
    const r = await plain.raw('POST', '/v1/environd/test/clock', { key: k, body: { advance_ms: 90000 } });
    expectRawError(r, 404, { fields: ['no route'] });
  } finally {
    await plain.stop();
    plain.cleanup();
  }
});

test('the route takes an API key and a bounded body', async () => {
  const { envKey } = await newEnv('auth');
  const r = await server.raw('POST', '/v1/environd/test/clock', { headers: { authorization: `Bearer ${envKey}` }, body: { advance_ms: 1 } });
  expectRawError(r, 403);
  expectRawError(await server.raw('POST', '/v1/environd/test/clock', { key, body: {} }), 400, { fields: ['advance_ms'] });
  expectRawError(await server.raw('POST', '/v1/environd/test/clock', { key, body: { advance_ms: -1 } }), 400, { fields: ['advance_ms'] });
  expectRawError(await server.raw('POST', '/v1/environd/test/clock', { key, body: { advance_ms: '5' } }), 400, { fields: ['advance_ms'] });
  expectRawError(await server.raw('POST', '/v1/environd/test/clock', { key, body: { step_wall_ms: 1e13 } }), 400, { fields: ['step_wall_ms'] });
  expectRawError(await server.raw('POST', '/v1/environd/test/clock', { key, body: { advance_ms: 1, later: 1 } }), 400, { fields: ['later'] });
});

test('T18: the default 90 s lease of an acked item expires and the item is redelivered', async () => {
  const { envId, worker } = await newEnv('t18');
  const w = worker.beta.environments.work;
  const item = await enqueueOk(server, key, envId, 'sesn_t18');
  const first = await w.poll(envId, { 'Anthropic-Worker-ID': 'holder-1' });
  assert.equal(first.id, item.id);
  assertWork(await w.ack(item.id, at(envId)), { state: 'starting' });

  // 89 s on: the lease (90 s from the ack) still holds.
  await advance(89000);
  assert.equal(await stateOf(envId, item.id), 'starting');
  assert.equal(await w.poll(envId, { 'Anthropic-Worker-ID': 'holder-2', reclaim_older_than_ms: 0 }), null);

  // 2 s more: it ran out. The item is back at the head of the queue and goes to the next poller.
  await advance(2000);
  assert.equal(await stateOf(envId, item.id), 'queued');
  const second = await w.poll(envId, { 'Anthropic-Worker-ID': 'holder-2' });
  assertWork(second, { secret: true, state: 'queued' });
  assert.equal(second.id, item.id);
  assert.equal(second.acknowledged_at, null);
  // The first holder's token died with the redelivery; the new holder's NO_HEARTBEAT wins.
  const oldTok = decodeSecret(first.secret).sessions_token;
  await expectStatus(server.client(oldTok).beta.environments.work.heartbeat(item.id, { ...at(envId), expected_last_heartbeat: 'NO_HEARTBEAT' }), 401);
  const s = server.client(decodeSecret(second.secret).sessions_token).beta.environments.work;
  assertWork(await s.ack(item.id, at(envId)), { state: 'starting' });
  assertHeartbeat(await s.heartbeat(item.id, { ...at(envId), expected_last_heartbeat: 'NO_HEARTBEAT' }), { state: 'active', lease_extended: true });
  await s.stop(item.id, { ...at(envId), force: true });
});

test('a heartbeat lease runs for its ttl, and a held item stopping winds down (T19)', async () => {
  const { envId, worker } = await newEnv('ttl');
  const w = worker.beta.environments.work;
  const a = await enqueueOk(server, key, envId, 'sesn_ttl');
  const b = await enqueueOk(server, key, envId, 'sesn_ttl_stopping');
  assert.equal((await w.poll(envId)).id, a.id);
  assert.equal((await w.poll(envId)).id, b.id);
  for (const it of [a, b]) await w.ack(it.id, at(envId));
  const hb = assertHeartbeat(await w.heartbeat(a.id, { ...at(envId), expected_last_heartbeat: 'NO_HEARTBEAT', desired_ttl_seconds: 600 }), {
    state: 'active',
    ttl_seconds: 600,
  });
  await w.heartbeat(b.id, { ...at(envId), expected_last_heartbeat: 'NO_HEARTBEAT', desired_ttl_seconds: 10 });
  assertWork(await w.stop(b.id, { ...at(envId), force: false }), { state: 'stopping' });

  await advance(11000);
  assert.equal(await stateOf(envId, b.id), 'stopped', 'T19: a stopping item whose lease ran out is stopped');
  assert.equal(await stateOf(envId, a.id), 'active');
  await advance(588000); // 599 s after the heartbeat
  assert.equal(await stateOf(envId, a.id), 'active');
  await advance(2000);
  assert.equal(await stateOf(envId, a.id), 'queued', 'T18 after the 600 s lease');
  // The old holder's renewal now finds the item re-queued: 412, lease lost.
  await expectStatus(w.heartbeat(a.id, { ...at(envId), expected_last_heartbeat: hb.last_heartbeat }), 412);
  await api().beta.environments.work.stop(a.id, { ...at(envId), force: true });
});

test('reclaim window: an unacked delivery is handed out again only after reclaim_older_than_ms', async () => {
  const { envId, worker } = await newEnv('reclaim');
  const w = worker.beta.environments.work;
  const item = await enqueueOk(server, key, envId, 'sesn_reclaim');
  const first = await w.poll(envId, { 'Anthropic-Worker-ID': 'r1' });
  assert.equal(first.id, item.id);
  await advance(4900);
  assert.equal(await w.poll(envId, { 'Anthropic-Worker-ID': 'r2' }), null, 'inside the default 5 s window');
  await advance(200);
  const second = await w.poll(envId, { 'Anthropic-Worker-ID': 'r2' });
  assert.ok(second, 'the default 5 s window passed: the delivery is reclaimable');
  assert.equal(second.id, item.id);
  assert.notEqual(decodeSecret(second.secret).sessions_token, decodeSecret(first.secret).sessions_token);

  // A larger window, asked for by the poller: a minute.
  assert.equal(await w.poll(envId, { reclaim_older_than_ms: 60000 }), null);
  await advance(59000);
  assert.equal(await w.poll(envId, { reclaim_older_than_ms: 60000 }), null);
  await advance(1000);
  const third = await w.poll(envId, { reclaim_older_than_ms: 60000 });
  assert.equal(third && third.id, item.id);
  await api().beta.environments.work.stop(item.id, { ...at(envId), force: true });
});

test('a held poll wakes when the test clock makes a delivery reclaimable', async () => {
  const { envId, worker } = await newEnv('heldreclaim');
  const w = worker.beta.environments.work;
  const item = await enqueueOk(server, key, envId, 'sesn_held_reclaim');
  assert.equal((await w.poll(envId)).id, item.id);
  // Without the move this poll ends at its 999 ms deadline with null (the window is 60 s).
  const held = w.poll(envId, { block_ms: 999, reclaim_older_than_ms: 60000 });
  await new Promise((r) => setTimeout(r, 100));
  await advance(60000);
  const got = await held;
  assert.equal(got && got.id, item.id, 'the held poll did not follow the test clock');
  await api().beta.environments.work.stop(item.id, { ...at(envId), force: true });
});

test('workers_polling counts a worker for 30 s after its last poll', async () => {
  const { envId, worker } = await newEnv('seen');
  const w = worker.beta.environments.work;
  const stats = () => api().beta.environments.work.stats(envId);
  await w.poll(envId, { 'Anthropic-Worker-ID': 'seen-1' });
  assert.equal((await stats()).workers_polling, 1);
  await advance(15000);
  await w.poll(envId, { 'Anthropic-Worker-ID': 'seen-2' });
  assert.equal((await stats()).workers_polling, 2);
  await advance(14000); // seen-1 29 s ago
  assert.equal((await stats()).workers_polling, 2);
  await advance(2000); // seen-1 31 s ago, seen-2 16 s ago
  assert.equal((await stats()).workers_polling, 1);
  await advance(15000);
  assert.equal((await stats()).workers_polling, 0);
});

test('a step of the wall clock moves no lease: none expires early, none late', async () => {
  const { envId, worker } = await newEnv('step');
  const w = worker.beta.environments.work;
  const item = await enqueueOk(server, key, envId, 'sesn_step');
  assert.equal((await w.poll(envId)).id, item.id);
  const acked = await w.ack(item.id, at(envId));

  // The wall clock jumps an hour ahead (a bad NTP step, `date -s`): the lease, 90 s from
  // the ack, must not run out.
  const before = await moveClock({ step_wall_ms: 0 });
  const ahead = await moveClock({ step_wall_ms: 3600000 });
  assert.ok(Date.parse(ahead.wall) - Date.parse(before.wall) >= 3600000, 'wall time stepped');
  assert.ok(Date.parse(ahead.lease_now) - Date.parse(before.lease_now) < 60000, 'lease time did not step');
  assert.equal(await stateOf(envId, item.id), 'starting', 'a forward wall step expired a lease early');
  assert.equal(await w.poll(envId, { reclaim_older_than_ms: 0 }), null);

  // The wall clock jumps two hours back: the lease must still run out 90 s after the ack.
  await moveClock({ step_wall_ms: -7200000 });
  await advance(89000);
  assert.equal(await stateOf(envId, item.id), 'starting');
  await advance(2000);
  assert.equal(await stateOf(envId, item.id), 'queued', 'a backward wall step made a lease expire late');
  const again = await w.poll(envId);
  assert.equal(again && again.id, item.id);
  assert.ok(acked.acknowledged_at);

  // Heartbeat leases too: renewed on lease time, whatever the wall clock says.
  await w.ack(item.id, at(envId));
  const hb = await w.heartbeat(item.id, { ...at(envId), expected_last_heartbeat: 'NO_HEARTBEAT', desired_ttl_seconds: 30 });
  await moveClock({ step_wall_ms: 10 * 24 * 3600 * 1000 });
  assertHeartbeat(await w.heartbeat(item.id, { ...at(envId), expected_last_heartbeat: hb.last_heartbeat, desired_ttl_seconds: 30 }), {
    state: 'active',
    lease_extended: true,
  });
  await moveClock({ step_wall_ms: -10 * 24 * 3600 * 1000 });
  await advance(29000);
  assert.equal(await stateOf(envId, item.id), 'active');
  await advance(2000);
  assert.equal(await stateOf(envId, item.id), 'queued');
  await api().beta.environments.work.stop(item.id, { ...at(envId), force: true });
  // SDK errors stay typed on this server as on any other.
  assert.ok(SDK.APIError);
});

// Stale acks after a reclaim (SPEC §3.1 T3–T5). A delivery that was reclaimed leaves its
// first holder with a dead session token: everything it sends with that token is refused
// (401). The SDK's WorkPoller acks with the environment key, which says nothing about which
// delivery the ack is for; so once an item was delivered twice, only the first ack holds
// it and any later environment-key ack is a 409, and two pollers never both get 200.
// The reclaim window is passed with the test clock (`serve --test-clock`), not by sleeping.
'use strict';
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { Server } = require('./lib/server');
const { SDK, selfHosted, enqueueOk, decodeSecret, assertWork, expectStatus, waitFor } = require('./lib/work');

let server;
let key;
let envSeq = 0;

const api = () => server.client(key);
const newEnv = (tag) => selfHosted(server, key, `sa-${tag}-${++envSeq}`);
const at = (envId) => ({ environment_id: envId });

async function advance(ms) {
  const r = await server.raw('POST', '/v1/environd/test/clock', { key, body: { advance_ms: ms } });
  assert.equal(r.status, 200, `test clock: ${r.status} ${r.text}`);
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

test('a superseded session token can no longer ack, heartbeat, stop or read its item', async () => {
  const { envId, worker } = await newEnv('token');
  const w = worker.beta.environments.work;
  const item = await enqueueOk(server, key, envId, 'sesn_token');
  const first = await w.poll(envId, { 'Anthropic-Worker-ID': 'a' });
  await advance(5000); // the default reclaim window
  const second = await w.poll(envId, { 'Anthropic-Worker-ID': 'b' });
  assert.equal(second && second.id, item.id, 'reclaimed');
  const stale = server.client(decodeSecret(first.secret).sessions_token).beta.environments.work;
  const fresh = server.client(decodeSecret(second.secret).sessions_token).beta.environments.work;
  const refused = async (where) => {
    await expectStatus(stale.ack(item.id, at(envId)), 401, { cls: SDK.AuthenticationError, where: `${where} ack: ` });
    await expectStatus(stale.heartbeat(item.id, { ...at(envId), expected_last_heartbeat: 'NO_HEARTBEAT' }), 401, {
      where: `${where} heartbeat: `,
    });
    await expectStatus(stale.stop(item.id, { ...at(envId), force: true }), 401, { where: `${where} stop: ` });
    await expectStatus(stale.retrieve(item.id, at(envId)), 401, { where: `${where} get: ` });
  };
  await refused('queued');
  assertWork(await fresh.ack(item.id, at(envId)), { state: 'starting' });
  await refused('starting');
  await fresh.heartbeat(item.id, { ...at(envId), expected_last_heartbeat: 'NO_HEARTBEAT' });
  await refused('active');
  assert.equal((await api().beta.environments.work.retrieve(item.id, at(envId))).state, 'active', 'the stale token changed nothing');

  // After a lease expiry and a new delivery, the token of the expired holder is dead too.
  await advance(91000);
  const third = await w.poll(envId, { 'Anthropic-Worker-ID': 'c' });
  assert.equal(third && third.id, item.id);
  await expectStatus(fresh.ack(item.id, at(envId)), 401, { where: 'expired holder ack: ' });
  await expectStatus(fresh.stop(item.id, { ...at(envId), force: true }), 401, { where: 'expired holder stop: ' });
  await api().beta.environments.work.stop(item.id, { ...at(envId), force: true });
});

test('environment-key acks: a retry of a single delivery is accepted; after a reclaim only the first ack wins', async () => {
  const { envId, worker } = await newEnv('envkey');
  const w = worker.beta.environments.work;

  // One delivery: the second ack can only be the same poller's retry (a lost reply).
  const once = await enqueueOk(server, key, envId, 'sesn_once');
  assert.equal((await w.poll(envId)).id, once.id);
  assertWork(await w.ack(once.id, at(envId)), { state: 'starting' });
  assertWork(await w.ack(once.id, at(envId)), { state: 'starting' });
  await api().beta.environments.work.stop(once.id, { ...at(envId), force: true });

  // Two deliveries (A's, then B's after the reclaim window): both acks arrive with the
  // environment key. The first takes the item; the second is refused, not retried.
  const twice = await enqueueOk(server, key, envId, 'sesn_twice');
  assert.equal((await w.poll(envId, { 'Anthropic-Worker-ID': 'a' })).id, twice.id);
  await advance(5000);
  assert.equal((await w.poll(envId, { 'Anthropic-Worker-ID': 'b' })).id, twice.id);
  assertWork(await w.ack(twice.id, at(envId)), { state: 'starting' });
  const e = await expectStatus(w.ack(twice.id, at(envId)), 409, { where: 'second ack after a reclaim: ' });
  assert.equal(e.headers.get('x-should-retry'), 'false');
  assert.match(e.message, /delivered more than once/);
  assert.match(e.message, new RegExp(twice.id));
  await api().beta.environments.work.stop(twice.id, { ...at(envId), force: true });

  // With its session token the acking delivery may retry; an env-key ack may not.
  const token = await enqueueOk(server, key, envId, 'sesn_token_retry');
  assert.equal((await w.poll(envId)).id, token.id);
  await advance(5000);
  const current = await w.poll(envId);
  assert.equal(current.id, token.id);
  const s = server.client(decodeSecret(current.secret).sessions_token).beta.environments.work;
  assertWork(await s.ack(token.id, at(envId)), { state: 'starting' });
  assertWork(await s.ack(token.id, at(envId)), { state: 'starting' });
  await expectStatus(w.ack(token.id, at(envId)), 409, { where: 'env-key ack after a token ack: ' });
  await api().beta.environments.work.stop(token.id, { ...at(envId), force: true });
});

// A client whose ack requests wait at a gate the test opens, and report their status.
function gatedClient(envKey) {
  let release;
  const gate = new Promise((r) => (release = r));
  let reached;
  const ackReached = new Promise((r) => (reached = r));
  let settle;
  const ackStatus = new Promise((r) => (settle = r));
  const gatedFetch = async (url, init) => {
    if (!String(url).includes('/ack')) return fetch(url, init);
    reached();
    await gate;
    const res = await fetch(url, init);
    settle(res.status);
    return res;
  };
  return { client: server.client(envKey, { fetch: gatedFetch }), release, ackReached, ackStatus };
}

// Runs one SDK WorkPoller in the background; records the ids it yields (it yields only
// what it acked with 200).
function runPoller(client, envId, envKey, workerId) {
  const poller = client.beta.environments.work.poller({ environmentId: envId, environmentKey: envKey, workerId, autoStop: false });
  const held = [];
  const done = (async () => {
    try {
      for await (const work of poller) held.push(work.id);
    } catch (e) {
      if (!poller.signal.aborted) throw e;
    }
  })();
  return { poller, held, done };
}

for (const firstToAck of ['A', 'B']) {
  test(`two WorkPollers, a reclaim between A's poll and its ack, ${firstToAck} acks first: exactly one holds the item`, async () => {
    const { envId, envKey } = await newEnv(`pollers-${firstToAck}`);
    const item = await enqueueOk(server, key, envId, `sesn_two_pollers_${firstToAck}`);
    const gA = gatedClient(envKey);
    const gB = gatedClient(envKey);
    const a = runPoller(gA.client, envId, envKey, 'poller-A');
    try {
      await gA.ackReached; // A polled the item and its ack is on the way
      await advance(5000); // A's delivery is now reclaimable
      var b = runPoller(gB.client, envId, envKey, 'poller-B');
      await gB.ackReached; // B was handed the item too
      const [first, second] = firstToAck === 'A' ? [gA, gB] : [gB, gA];
      first.release();
      assert.equal(await first.ackStatus, 200, 'the first ack holds the item');
      second.release();
      assert.equal(await second.ackStatus, 409, 'the second ack must be refused: two pollers would hold one item');
      const winner = firstToAck === 'A' ? a : b;
      const loser = firstToAck === 'A' ? b : a;
      await waitFor(() => winner.held.length === 1, { what: 'the winner yields the item' });
      assert.deepEqual(winner.held, [item.id]);
      assert.deepEqual(loser.held, [], 'the refused poller must not work on the item');
      assert.equal((await api().beta.environments.work.retrieve(item.id, at(envId))).state, 'starting');
    } finally {
      gA.release();
      gB.release();
      a.poller.abort();
      if (b) b.poller.abort();
      await a.done;
      if (b) await b.done;
      await api().beta.environments.work.stop(item.id, { ...at(envId), force: true }).catch(() => {});
    }
  });
}

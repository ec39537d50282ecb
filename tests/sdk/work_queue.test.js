// The work queue as the official SDK drives it (SPEC §3 objects and state machine
// T1–T20, §4 credentials, §5 enqueue): every route through
// `client.beta.environments.work.*`, object shapes, the secret and its session token,
// parameter validation, heartbeat preconditions, lease expiry and reclaim, tenancy,
// stats, list, metadata and enqueue dedupe.
'use strict';
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { Server } = require('./lib/server');
const { sqliteOnly } = require('./lib/pg');
const {
  SDK,
  Anthropic,
  HeartbeatPreconditionFailed,
  EnvironmentArchived,
  TS_RE,
  WORK_ID_RE,
  waitFor,
  selfHosted,
  enqueue,
  enqueueOk,
  decodeSecret,
  assertWork,
  assertHeartbeat,
  expectStatus,
  listAllWork,
} = require('./lib/work');

let server;
let key; // API key: org "default", account "default"
let envSeq = 0;

const api = () => server.client(key);
const newEnv = (tag) => selfHosted(server, key, `wq-${tag}-${++envSeq}`);
const at = (envId) => ({ environment_id: envId });

async function pollsHeld() {
  const r = await fetch(server.url + '/metrics');
  const m = /^environd_polls_held (\d+)$/m.exec(await r.text());
  return m ? Number(m[1]) : -1;
}

// Poll (no block) until an item comes back; a bounded loop, not a guessed sleep.
async function pollOne(worker, envId, params = {}) {
  return waitFor(() => worker.beta.environments.work.poll(envId, params), { what: 'a polled item' });
}

before(async () => {
  server = new Server();
  await server.start();
  key = server.createKey(); // created while the server runs, as an operator would
});

after(async () => {
  if (server) {
    await server.stop();
    server.cleanup();
  }
});

test('the error class for a failed heartbeat precondition is exported where the SDK says', () => {
  const viaResource = require('@anthropic-ai/sdk/resources/beta/environments/work').BetaHeartbeatPreconditionFailedError;
  assert.equal(typeof HeartbeatPreconditionFailed, 'function');
  assert.equal(Anthropic.Beta.Environments.Work.BetaHeartbeatPreconditionFailedError, HeartbeatPreconditionFailed);
  assert.equal(viaResource, HeartbeatPreconditionFailed);
  assert.ok(HeartbeatPreconditionFailed.prototype instanceof SDK.PreconditionFailedError);
});

test('full lifecycle through every work route: shapes, secret, timestamps, ids', async () => {
  const { envId, envKey, worker } = await newEnv('life');
  const w = worker.beta.environments.work;
  const a = api().beta.environments.work;

  // T1: enqueue → 201, queued, secret null.
  const { status, item, res } = await enqueue(server, key, envId, 'sesn_life', { metadata: { team: 'a' } });
  assert.equal(status, 201, res.text);
  assertWork(item, { state: 'queued', envId });
  assert.match(item.id, WORK_ID_RE);
  assert.deepEqual(item.data, { type: 'session', id: 'sesn_life' });
  assert.deepEqual(item.metadata, { team: 'a' });
  for (const f of ['acknowledged_at', 'started_at', 'latest_heartbeat_at', 'stop_requested_at', 'stopped_at'])
    assert.equal(item[f], null, f);

  // T2: poll → the item with a secret (only here).
  const polled = await w.poll(envId, { 'Anthropic-Worker-ID': 'life-1' });
  assertWork(polled, { secret: true, state: 'queued', envId });
  assert.equal(polled.id, item.id);
  assert.equal(polled.created_at, item.created_at);
  const secret = decodeSecret(polled.secret);
  assert.deepEqual(Object.keys(secret).sort(), ['api_base_url', 'sessions_token']);
  assert.match(secret.sessions_token, /^envd_req_[A-Za-z0-9_-]+$/);
  assert.equal(secret.api_base_url, server.url);

  // retrieve (API key): secret null.
  assertWork(await a.retrieve(item.id, at(envId)), { state: 'queued' });

  // T4: ack → starting.
  const acked = await w.ack(item.id, at(envId));
  assertWork(acked, { state: 'starting', envId });
  assert.match(acked.acknowledged_at, TS_RE);
  assert.equal(acked.started_at, null);
  assert.equal(acked.latest_heartbeat_at, null);
  // T5: ack again is an idempotent retry.
  const again = await w.ack(item.id, at(envId));
  assertWork(again, { state: 'starting' });
  assert.equal(again.acknowledged_at, acked.acknowledged_at);

  // T7: first heartbeat (NO_HEARTBEAT) → active.
  const hb1 = assertHeartbeat(await w.heartbeat(item.id, { ...at(envId), expected_last_heartbeat: 'NO_HEARTBEAT' }), {
    state: 'active',
    lease_extended: true,
    ttl_seconds: 90,
  });
  assert.match(hb1.last_heartbeat, TS_RE);
  const active = assertWork(await a.retrieve(item.id, at(envId)), { state: 'active' });
  assert.equal(active.latest_heartbeat_at, hb1.last_heartbeat);
  assert.match(active.started_at, TS_RE);

  // T8: echo the stored value → renewed; omitted expected → renewed too.
  const hb2 = assertHeartbeat(
    await w.heartbeat(item.id, { ...at(envId), expected_last_heartbeat: hb1.last_heartbeat, desired_ttl_seconds: 30 }),
    { state: 'active', lease_extended: true, ttl_seconds: 30 },
  );
  assert.ok(hb2.last_heartbeat >= hb1.last_heartbeat);
  const hb3 = assertHeartbeat(await w.heartbeat(item.id, at(envId)), { state: 'active', lease_extended: true });
  // T5 also holds for an active item.
  assertWork(await w.ack(item.id, at(envId)), { state: 'active' });

  // T20: update metadata (API key).
  const upd = await a.update(item.id, { ...at(envId), metadata: { team: 'b', extra: 'x' } });
  assertWork(upd, { state: 'active' });
  assert.deepEqual(upd.metadata, { team: 'b', extra: 'x' });

  // list (env key): secret null.
  const listed = await listAllWork(worker, envId);
  assert.equal(listed.length, 1);
  assertWork(listed[0], { state: 'active' });
  assert.equal(listed[0].latest_heartbeat_at, hb3.last_heartbeat);

  // stats (API key).
  const stats = await a.stats(envId);
  assert.deepEqual(stats, { type: 'work_queue_stats', depth: 0, pending: 0, oldest_queued_at: null, workers_polling: 1 });

  // T16: force stop → stopped, stop_requested_at filled in.
  const stopped = await w.stop(item.id, { ...at(envId), force: true });
  assertWork(stopped, { state: 'stopped' });
  assert.match(stopped.stopped_at, TS_RE);
  assert.match(stopped.stop_requested_at, TS_RE);
  assert.equal(stopped.acknowledged_at, acked.acknowledged_at);
  assert.equal(stopped.started_at, active.started_at);
  assert.deepEqual(stopped.metadata, { team: 'b', extra: 'x' });
  const final = assertWork(await a.retrieve(item.id, at(envId)), { state: 'stopped' });
  // Timestamps follow the life of the item.
  assert.ok(final.created_at <= final.acknowledged_at);
  assert.ok(final.acknowledged_at <= final.started_at);
  assert.ok(final.started_at <= final.latest_heartbeat_at);
  assert.ok(final.latest_heartbeat_at <= final.stop_requested_at);
  assert.ok(final.stop_requested_at <= final.stopped_at);
  assert.ok(envKey);
});

test('ids are work_ + 24 base62 and sort by creation', async () => {
  const { envId } = await newEnv('ids');
  const ids = [];
  for (let i = 0; i < 12; i++) ids.push((await enqueueOk(server, key, envId, `sesn_ids_${i}`)).id);
  for (const id of ids) assert.match(id, WORK_ID_RE);
  assert.equal(new Set(ids).size, ids.length);
  assert.deepEqual([...ids].sort(), ids, 'ids grow with time');
});

test('the session token reaches its own item only (get/ack/heartbeat/stop) and outlives its stop', async () => {
  const { envId, worker } = await newEnv('tok');
  const a1 = await enqueueOk(server, key, envId, 'sesn_tok_a');
  const b1 = await enqueueOk(server, key, envId, 'sesn_tok_b');
  const pa = await worker.beta.environments.work.poll(envId);
  const pb = await worker.beta.environments.work.poll(envId);
  assert.equal(pa.id, a1.id, 'FIFO');
  assert.equal(pb.id, b1.id, 'FIFO');
  const tokA = decodeSecret(pa.secret).sessions_token;
  const tokB = decodeSecret(pb.secret).sessions_token;
  assert.notEqual(tokA, tokB);
  const s = server.client(tokA).beta.environments.work;

  // Own item: get, ack, heartbeat all work.
  assertWork(await s.retrieve(a1.id, at(envId)), { state: 'queued' });
  assertWork(await s.ack(a1.id, at(envId)), { state: 'starting' });
  const hb = assertHeartbeat(await s.heartbeat(a1.id, { ...at(envId), expected_last_heartbeat: 'NO_HEARTBEAT' }), {
    state: 'active',
    lease_extended: true,
  });
  assertHeartbeat(await s.heartbeat(a1.id, { ...at(envId), expected_last_heartbeat: hb.last_heartbeat }), { state: 'active' });

  // Another item: 403 everywhere.
  await expectStatus(s.retrieve(b1.id, at(envId)), 403, { cls: SDK.PermissionDeniedError, where: 'get other: ' });
  await expectStatus(s.ack(b1.id, at(envId)), 403, { cls: SDK.PermissionDeniedError, where: 'ack other: ' });
  await expectStatus(s.heartbeat(b1.id, at(envId)), 403, { cls: SDK.PermissionDeniedError, where: 'heartbeat other: ' });
  await expectStatus(s.stop(b1.id, { ...at(envId), force: true }), 403, { cls: SDK.PermissionDeniedError, where: 'stop other: ' });
  // Routes a session token never reaches.
  await expectStatus(s.poll(envId), 403, { where: 'poll: ' });
  await expectStatus(s.list(envId), 403, { where: 'list: ' });
  await expectStatus(s.stats(envId), 403, { where: 'stats: ' });
  await expectStatus(s.update(a1.id, { ...at(envId), metadata: { a: 'b' } }), 403, { where: 'update: ' });
  const enq = await server.raw('POST', `/v1/environments/${envId}/work`, {
    headers: { authorization: `Bearer ${tokA}` },
    body: { data: { type: 'session', id: 'sesn_tok_c' }, metadata: {} },
  });
  assert.equal(enq.status, 403, `enqueue with a session token: ${enq.text}`);
  // B's token still sees B.
  assertWork(await server.client(tokB).beta.environments.work.retrieve(b1.id, at(envId)), { state: 'queued' });

  // A graceful stop (by the API key) leaves the token alive: the runner heartbeats with
  // it and learns the item is stopping (T10).
  assertWork(await api().beta.environments.work.stop(a1.id, { ...at(envId), force: false }), { state: 'stopping' });
  assertHeartbeat(await s.heartbeat(a1.id, { ...at(envId), expected_last_heartbeat: hb.last_heartbeat }), { state: 'stopping' });
  assertWork(await s.retrieve(a1.id, at(envId)), { state: 'stopping' });

  // Stop with the token itself. The token still reaches its stopped item, as the SDK's
  // worker needs: heartbeat answers T11 (state stopped, lease_extended false, ttl 0) and a
  // second stop is T17's 409 — not a 401.
  assertWork(await s.stop(a1.id, { ...at(envId), force: true }), { state: 'stopped' });
  assertWork(await s.retrieve(a1.id, at(envId)), { state: 'stopped' });
  assertHeartbeat(await s.heartbeat(a1.id, at(envId)), { state: 'stopped', lease_extended: false, ttl_seconds: 0 });
  await expectStatus(s.stop(a1.id, { ...at(envId), force: true }), 409, { cls: SDK.ConflictError, where: 'second stop: ' });
  // Stopped by someone else (API key): B's token sees the stop too.
  await api().beta.environments.work.stop(b1.id, { ...at(envId), force: true });
  assertWork(await server.client(tokB).beta.environments.work.retrieve(b1.id, at(envId)), { state: 'stopped' });
});

test('an empty poll is null, with and without block_ms', async () => {
  const { envId, worker } = await newEnv('empty');
  const w = worker.beta.environments.work;
  assert.equal(await w.poll(envId), null);
  assert.equal(await w.poll(envId, { 'Anthropic-Worker-ID': 'e1' }), null);
  const t0 = Date.now();
  assert.equal(await w.poll(envId, { block_ms: 200 }), null);
  const held = Date.now() - t0;
  assert.ok(held >= 150, `block_ms 200 answered after ${held} ms`);
  assert.ok(held < 2000, `block_ms 200 answered after ${held} ms`);
  assert.equal(await w.poll(envId, { block_ms: 1 }), null);
  // The raw body is the JSON literal null with status 200.
  const r = await server.raw('GET', `/v1/environments/${envId}/work/poll?block_ms=5`, {
    headers: { authorization: `Bearer ${(await newKey(envId))}` },
  });
  assert.equal(r.status, 200);
  assert.equal(r.text.trim(), 'null');
  assert.match(r.headers.get('content-type') || '', /application\/json/);
});

async function newKey(envId) {
  const r = await server.raw('POST', `/v1/environments/${envId}/keys`, { key, body: { name: 'extra' } });
  assert.equal(r.status, 200, r.text);
  return r.json.key;
}

test('a held poll answers promptly when an item is enqueued', async (t) => {
  // One attempt: hold a 999 ms poll, enqueue, time the answer. An attempt only counts when
  // the enqueue returned well before the poll's deadline (so an answer at the deadline
  // cannot pass for a wake-up); a slow machine gets another attempt, a broken wake-up
  // fails them all.
  for (let attempt = 1; ; attempt++) {
    const { envId, worker } = await newEnv(`held${attempt}`);
    const baseline = await pollsHeld();
    const t0 = Date.now();
    let answeredAt = 0;
    const pending = worker.beta.environments.work.poll(envId, { block_ms: 999 }).then((v) => {
      answeredAt = Date.now();
      return v;
    });
    await waitFor(async () => (await pollsHeld()) > baseline || answeredAt, { timeoutMs: 5000, intervalMs: 5, what: 'the held poll' });
    const heldFirst = answeredAt === 0;
    const item = await enqueueOk(server, key, envId, 'sesn_held');
    const enqueuedAt = Date.now();
    const got = await pending;
    const counts = heldFirst && enqueuedAt - t0 < 400;
    if (!counts && attempt < 5) {
      t.diagnostic(`attempt ${attempt} inconclusive (held first: ${heldFirst}, enqueue done after ${enqueuedAt - t0} ms)`);
      continue;
    }
    assert.ok(heldFirst, 'the poll answered before anything was enqueued');
    assert.ok(counts, `the enqueue took until ${enqueuedAt - t0} ms into the poll in every attempt`);
    assert.ok(got, 'the held poll returned null although an item arrived');
    assertWork(got, { secret: true, state: 'queued' });
    assert.equal(got.id, item.id);
    const lag = answeredAt - enqueuedAt;
    t.diagnostic(`held poll answered ${lag} ms after the enqueue returned`);
    assert.ok(lag < 500, `held poll answered ${lag} ms after the enqueue (total ${answeredAt - t0} ms)`);
    return;
  }
});

// Write transactions the server committed (SQLite: commit groups, one fsync each).
async function commits() {
  const m = /^environd_store_commits_total (\d+)$/m.exec(await (await fetch(server.url + '/metrics')).text());
  assert.ok(m, 'no environd_store_commits_total in /metrics');
  return Number(m[1]);
}

test('a held poll woken by an enqueue claims in the enqueue\'s own commit', { skip: sqliteOnly('a commit group is the SQLite writer\'s: on PostgreSQL every request commits on its own') }, async (t) => {
  // The enqueue and the held poll's claim share one commit group (one fsync): the commit
  // counter moves by one for both. Anything else committing in between (a sweep) makes an
  // attempt inconclusive; claiming in a commit of its own moves it by two every time.
  const deltas = [];
  for (let attempt = 1; attempt <= 5; attempt++) {
    const { envId, worker } = await newEnv(`shared${attempt}`);
    const baseline = await pollsHeld();
    let answered = false;
    const pending = worker.beta.environments.work.poll(envId, { block_ms: 999 }).then((v) => {
      answered = true;
      return v;
    });
    await waitFor(async () => (await pollsHeld()) > baseline || answered, { timeoutMs: 5000, intervalMs: 5, what: 'the held poll' });
    const before = await commits();
    const item = await enqueueOk(server, key, envId, 'sesn_shared');
    const got = await pending;
    const delta = (await commits()) - before;
    deltas.push(delta);
    if (answered && got && got.id === item.id && delta === 1) return;
  }
  assert.fail(`the enqueue and the held poll's claim never shared a commit: commits per attempt ${JSON.stringify(deltas)}`);
});

test('a poll that a worker repeats with nothing to claim costs no commit', { skip: sqliteOnly('the SQLite writer\'s commit groups') }, async () => {
  // The first poll asks the store and finds nothing; the next ones trust this node's hint
  // (poll_hint.h) on their HTTP thread and never reach the store's writer. A sweep
  // committing meanwhile makes an attempt inconclusive.
  const deltas = [];
  for (let attempt = 1; attempt <= 5; attempt++) {
    const { envId, worker } = await newEnv(`idle${attempt}`);
    assert.equal(await worker.beta.environments.work.poll(envId), null);
    const before = await commits();
    for (let i = 0; i < 3; i++) assert.equal(await worker.beta.environments.work.poll(envId), null);
    const delta = (await commits()) - before;
    deltas.push(delta);
    if (delta === 0) return;
  }
  assert.fail(`repeated empty polls committed every time: commits per attempt ${JSON.stringify(deltas)}`);
});

test('a held poll whose client went away does not strand the item', async () => {
  const { envId, worker } = await newEnv('gone');
  const baseline = await pollsHeld();
  // Hold a poll and abort it once the server reports it held; a poll that ran out before
  // it was seen held is asked again (bounded).
  for (let attempt = 1; ; attempt++) {
    const ac = new AbortController();
    let settled = false;
    const gone = worker.beta.environments.work.poll(envId, { block_ms: 999 }, { signal: ac.signal })
      .catch((e) => e)
      .finally(() => (settled = true));
    await waitFor(async () => (await pollsHeld()) > baseline || settled, { timeoutMs: 5000, intervalMs: 5, what: 'the held poll' });
    if (settled && attempt < 5) {
      assert.equal(await gone, null);
      continue;
    }
    assert.ok(!settled, 'the poll ended before it was seen held, in every attempt');
    ac.abort();
    assert.ok((await gone) instanceof SDK.APIUserAbortError);
    break;
  }
  // The server lets go of the waiter (bounded by block_ms anyway).
  await waitFor(async () => (await pollsHeld()) <= baseline, { timeoutMs: 2000, intervalMs: 5, what: 'the held poll to be released' });
  const item = await enqueueOk(server, key, envId, 'sesn_gone');
  // Without reclaim (default 5 s), the next poller gets it at once: nobody holds it.
  const got = await worker.beta.environments.work.poll(envId, { block_ms: 999 });
  assert.ok(got, 'the item went to a poller that had gone away');
  assert.equal(got.id, item.id);
  const st = await api().beta.environments.work.stats(envId);
  assert.equal(st.pending, 1);
  assert.equal(st.depth, 0);
  await worker.beta.environments.work.stop(item.id, { ...at(envId), force: true });
});

test('poll parameters: block_ms 1–999, reclaim_older_than_ms 0–86 400 000, else 400', async () => {
  const { envId, worker } = await newEnv('pollval');
  const w = worker.beta.environments.work;
  for (const bad of [0, 1000, -1, 'abc', 1.5]) {
    const e = await expectStatus(w.poll(envId, { block_ms: bad }), 400, { cls: SDK.BadRequestError, where: `block_ms=${bad}: ` });
    assert.match(e.message, /block_ms/);
  }
  for (const bad of [-1, 86400001, 'abc']) {
    const e = await expectStatus(w.poll(envId, { reclaim_older_than_ms: bad }), 400, {
      cls: SDK.BadRequestError,
      where: `reclaim_older_than_ms=${bad}: `,
    });
    assert.match(e.message, /reclaim_older_than_ms/);
  }
  assert.equal(await w.poll(envId, { block_ms: 999, reclaim_older_than_ms: 86400000 }), null);
  assert.equal(await w.poll(envId, { block_ms: 1, reclaim_older_than_ms: 0 }), null);
});

test('heartbeat parameters: desired_ttl_seconds and expected_last_heartbeat validation, TTL clamping', async () => {
  const { envId, worker } = await newEnv('hbval');
  const w = worker.beta.environments.work;
  const item = await enqueueOk(server, key, envId, 'sesn_hbval');
  await pollOne(worker, envId);
  await w.ack(item.id, at(envId));
  for (const bad of [0, -5, 1.5, 'abc']) {
    const e = await expectStatus(w.heartbeat(item.id, { ...at(envId), desired_ttl_seconds: bad }), 400, {
      cls: SDK.BadRequestError,
      where: `desired_ttl_seconds=${bad}: `,
    });
    assert.match(e.message, /desired_ttl_seconds/);
  }
  const e = await expectStatus(w.heartbeat(item.id, { ...at(envId), expected_last_heartbeat: 'yesterday' }), 400, {
    cls: SDK.BadRequestError,
    where: 'expected_last_heartbeat=yesterday: ',
  });
  assert.match(e.message, /expected_last_heartbeat/);
  // Nothing above touched the lease: still starting.
  assertWork(await api().beta.environments.work.retrieve(item.id, at(envId)), { state: 'starting', secret: false });
  const hb = assertHeartbeat(
    await w.heartbeat(item.id, { ...at(envId), expected_last_heartbeat: 'NO_HEARTBEAT', desired_ttl_seconds: 5 }),
    { state: 'active', lease_extended: true, ttl_seconds: 10 },
  );
  const hb2 = assertHeartbeat(
    await w.heartbeat(item.id, { ...at(envId), expected_last_heartbeat: hb.last_heartbeat, desired_ttl_seconds: 9999 }),
    { state: 'active', lease_extended: true, ttl_seconds: 600 },
  );
  assertHeartbeat(await w.heartbeat(item.id, { ...at(envId), expected_last_heartbeat: hb2.last_heartbeat, desired_ttl_seconds: 10 }), {
    ttl_seconds: 10,
  });
  const hb4 = assertHeartbeat(await w.heartbeat(item.id, { ...at(envId), desired_ttl_seconds: 600 }), { ttl_seconds: 600 });
  // expected_last_heartbeat is compared by parsed value, not by string.
  const sameInstant = hb4.last_heartbeat.replace(/Z$/, '+00:00');
  assertHeartbeat(await w.heartbeat(item.id, { ...at(envId), expected_last_heartbeat: sameInstant }), {
    state: 'active',
    lease_extended: true,
  });
  await w.stop(item.id, { ...at(envId), force: true });
});

test('heartbeat preconditions: stale value → BetaHeartbeatPreconditionFailedError with current_state', async () => {
  const { envId, worker } = await newEnv('hb412');
  const w = worker.beta.environments.work;
  const item = await enqueueOk(server, key, envId, 'sesn_hb412');
  await pollOne(worker, envId);
  await w.ack(item.id, at(envId));

  // T9 in starting: a timestamp when none exists.
  const e0 = await expectStatus(
    w.heartbeat(item.id, { ...at(envId), expected_last_heartbeat: '2020-01-01T00:00:00.000000Z' }),
    412,
    { cls: HeartbeatPreconditionFailed, code: 'heartbeat_precondition_failed', where: 'starting + timestamp: ' },
  );
  assert.deepEqual(e0.details.current_state, { last_heartbeat: null, lease_extended: false, state: 'starting', ttl_seconds: e0.details.current_state.ttl_seconds });
  assert.equal(typeof e0.details.current_state.ttl_seconds, 'number');

  const hb = assertHeartbeat(await w.heartbeat(item.id, { ...at(envId), expected_last_heartbeat: 'NO_HEARTBEAT', desired_ttl_seconds: 60 }), {
    state: 'active',
  });
  const hb2 = assertHeartbeat(await w.heartbeat(item.id, { ...at(envId), expected_last_heartbeat: hb.last_heartbeat, desired_ttl_seconds: 60 }));
  assert.ok(hb2.last_heartbeat > hb.last_heartbeat, `a new heartbeat has a later timestamp: ${hb.last_heartbeat} → ${hb2.last_heartbeat}`);

  // T9: the previous (stale) value.
  const e1 = await expectStatus(w.heartbeat(item.id, { ...at(envId), expected_last_heartbeat: hb.last_heartbeat }), 412, {
    cls: HeartbeatPreconditionFailed,
    code: 'heartbeat_precondition_failed',
    where: 'stale: ',
  });
  assert.equal(e1.type, 'invalid_request_error');
  assert.deepEqual(Object.keys(e1.details).sort(), ['current_state', 'error_code']);
  const cs = e1.details.current_state;
  assert.deepEqual(Object.keys(cs).sort(), ['last_heartbeat', 'lease_extended', 'state', 'ttl_seconds']);
  assert.equal(cs.state, 'active');
  assert.equal(cs.last_heartbeat, hb2.last_heartbeat);
  assert.equal(cs.lease_extended, false);
  assert.equal(typeof cs.ttl_seconds, 'number');

  // T9: NO_HEARTBEAT once one exists.
  const e2 = await expectStatus(w.heartbeat(item.id, { ...at(envId), expected_last_heartbeat: 'NO_HEARTBEAT' }), 412, {
    cls: HeartbeatPreconditionFailed,
    where: 'NO_HEARTBEAT after one: ',
  });
  assert.equal(e2.details.current_state.state, 'active');
  assert.equal(e2.details.current_state.last_heartbeat, hb2.last_heartbeat);
  assert.equal(e2.details.current_state.lease_extended, false);

  // The refusals did not move the stored heartbeat.
  assertHeartbeat(await w.heartbeat(item.id, { ...at(envId), expected_last_heartbeat: hb2.last_heartbeat }), { state: 'active' });
  await w.stop(item.id, { ...at(envId), force: true });
});

test('races: one winner among concurrent NO_HEARTBEAT claims and stale heartbeats; only the last redelivery token lives', async () => {
  const { envId, worker } = await newEnv('race');
  const w = worker.beta.environments.work;
  const item = await enqueueOk(server, key, envId, 'sesn_race_hb');
  await pollOne(worker, envId);
  await w.ack(item.id, at(envId));
  const settle = (ps) => Promise.all(ps.map((p) => p.then((v) => ({ ok: v }), (e) => ({ err: e }))));

  const claims = await settle(
    Array.from({ length: 12 }, () => w.heartbeat(item.id, { ...at(envId), expected_last_heartbeat: 'NO_HEARTBEAT' })),
  );
  const won = claims.filter((r) => r.ok);
  assert.equal(won.length, 1, `NO_HEARTBEAT claims that won: ${won.length}`);
  for (const r of claims.filter((r) => r.err)) assert.ok(r.err instanceof HeartbeatPreconditionFailed, String(r.err));
  const last = won[0].ok.last_heartbeat;

  const renewals = await settle(
    Array.from({ length: 12 }, () => w.heartbeat(item.id, { ...at(envId), expected_last_heartbeat: last })),
  );
  assert.equal(renewals.filter((r) => r.ok).length, 1, 'exactly one renewal from the same expected value');
  for (const r of renewals.filter((r) => r.err)) assert.ok(r.err instanceof HeartbeatPreconditionFailed, String(r.err));
  await w.stop(item.id, { ...at(envId), force: true });

  // Concurrent reclaiming polls of one pending item: every answer is that item (or
  // null), and afterwards exactly one of the tokens handed out is alive.
  const p = await enqueueOk(server, key, envId, 'sesn_race_poll');
  const first = await pollOne(worker, envId);
  assert.equal(first.id, p.id);
  const polls = await Promise.all(Array.from({ length: 8 }, () => w.poll(envId, { reclaim_older_than_ms: 0 })));
  const got = polls.filter(Boolean);
  assert.ok(got.length >= 1);
  for (const g of got) assert.equal(g.id, p.id);
  const tokens = [first, ...got].map((g) => decodeSecret(g.secret).sessions_token);
  assert.equal(new Set(tokens).size, tokens.length, 'every delivery has its own token');
  const alive = [];
  for (const t of tokens) {
    try {
      await server.client(t).beta.environments.work.retrieve(p.id, at(envId));
      alive.push(t);
    } catch (e) {
      assert.equal(e.status, 401, String(e));
    }
  }
  assert.equal(alive.length, 1, `${alive.length} live tokens for one item`);
  const st = await api().beta.environments.work.stats(envId);
  assert.equal(st.pending, 1);
  assert.equal(st.depth, 0);
  await w.stop(p.id, { ...at(envId), force: true });
});

test('queued / stopping / stopped transitions: T6, T10–T17', async () => {
  const { envId, worker } = await newEnv('sm');
  const w = worker.beta.environments.work;

  // T12: heartbeat on a queued item → 409, or 412 with a timestamp.
  const q = await enqueueOk(server, key, envId, 'sesn_sm_q');
  const e409 = await expectStatus(w.heartbeat(q.id, at(envId)), 409, { cls: SDK.ConflictError, where: 'queued heartbeat: ' });
  assert.equal(e409.headers.get('x-should-retry'), 'false');
  await expectStatus(w.heartbeat(q.id, { ...at(envId), expected_last_heartbeat: 'NO_HEARTBEAT' }), 409, {
    cls: SDK.ConflictError,
    where: 'queued heartbeat NO_HEARTBEAT: ',
  });
  const e412 = await expectStatus(
    w.heartbeat(q.id, { ...at(envId), expected_last_heartbeat: '2026-01-01T00:00:00.000000Z' }),
    412,
    { cls: HeartbeatPreconditionFailed, where: 'queued heartbeat with timestamp: ' },
  );
  assert.equal(e412.details.current_state.state, 'queued');
  assert.equal(e412.details.current_state.last_heartbeat, null);
  assert.equal(e412.details.current_state.lease_extended, false);

  // T13: stop a queued item → stopped, out of the queue.
  const qs = await w.stop(q.id, { ...at(envId), force: false });
  assertWork(qs, { state: 'stopped' });
  assert.match(qs.stopped_at, TS_RE);
  assert.equal(qs.acknowledged_at, null);
  assert.equal(await w.poll(envId), null, 'a stopped item is out of the queue');
  // T17: stop a stopped item → 409, x-should-retry: false.
  const e17 = await expectStatus(w.stop(q.id, { ...at(envId), force: true }), 409, { cls: SDK.ConflictError, where: 'stop stopped: ' });
  assert.equal(e17.headers.get('x-should-retry'), 'false');
  await expectStatus(w.stop(q.id, { ...at(envId), force: false }), 409, { cls: SDK.ConflictError });
  // T6: ack a stopped item → 409.
  const e6 = await expectStatus(w.ack(q.id, at(envId)), 409, { cls: SDK.ConflictError, where: 'ack stopped: ' });
  assert.equal(e6.headers.get('x-should-retry'), 'false');
  // T11: heartbeat a stopped item → 200, lease not extended, ttl 0; no comparison made.
  assertHeartbeat(await w.heartbeat(q.id, { ...at(envId), expected_last_heartbeat: '2001-01-01T00:00:00Z' }), {
    state: 'stopped',
    lease_extended: false,
    ttl_seconds: 0,
  });

  // T4 does not require a delivery: ack of a queued, never polled item → starting.
  const u = await enqueueOk(server, key, envId, 'sesn_sm_u');
  assertWork(await w.ack(u.id, at(envId)), { state: 'starting' });
  assert.equal(await w.poll(envId), null, 'an acked item is out of the queue');
  await w.stop(u.id, { ...at(envId), force: true });

  // Stop body validation (the SDK sends {} or {"force":…}); no body at all is a graceful stop.
  const b = await enqueueOk(server, key, envId, 'sesn_sm_body');
  for (const body of [{ force: 'yes' }, { force: 1 }, { force: true, extra: 1 }, '[]', '{"force":true}x']) {
    const r = await server.raw('POST', `/v1/environments/${envId}/work/${b.id}/stop`, { key, body, headers: { 'content-type': 'application/json' } });
    assert.equal(r.status, 400, `stop body ${JSON.stringify(body)} → ${r.status} ${r.text}`);
  }
  assertWork(await api().beta.environments.work.retrieve(b.id, at(envId)), { state: 'queued' });
  const nb = await server.raw('POST', `/v1/environments/${envId}/work/${b.id}/stop`, { key });
  assert.equal(nb.status, 200, nb.text);
  assert.equal(nb.json.state, 'stopped');

  // T14/T10/T15: graceful stop of an active item.
  const g = await enqueueOk(server, key, envId, 'sesn_sm_g');
  await pollOne(worker, envId);
  await w.ack(g.id, at(envId));
  const ghb = await w.heartbeat(g.id, { ...at(envId), expected_last_heartbeat: 'NO_HEARTBEAT' });
  const stopping = await w.stop(g.id, { ...at(envId), force: false });
  assertWork(stopping, { state: 'stopping' });
  assert.match(stopping.stop_requested_at, TS_RE);
  assert.equal(stopping.stopped_at, null);
  // T6: ack while stopping → 409.
  await expectStatus(w.ack(g.id, at(envId)), 409, { cls: SDK.ConflictError, where: 'ack stopping: ' });
  // T10: heartbeat while stopping, no comparison (even a nonsense-but-valid stale value).
  const shb = assertHeartbeat(await w.heartbeat(g.id, { ...at(envId), expected_last_heartbeat: 'NO_HEARTBEAT' }), {
    state: 'stopping',
    lease_extended: true,
  });
  assertHeartbeat(await w.heartbeat(g.id, { ...at(envId), expected_last_heartbeat: ghb.last_heartbeat }), { state: 'stopping' });
  assert.match(shb.last_heartbeat, TS_RE);
  // T15: second graceful stop → stopped.
  const gs = await w.stop(g.id, { ...at(envId), force: false });
  assertWork(gs, { state: 'stopped' });
  assert.equal(gs.stop_requested_at, stopping.stop_requested_at);
  assert.match(gs.stopped_at, TS_RE);
  assertHeartbeat(await w.heartbeat(g.id, at(envId)), { state: 'stopped', lease_extended: false, ttl_seconds: 0 });
  await expectStatus(w.stop(g.id, at(envId)), 409, { cls: SDK.ConflictError });

  // T16 from stopping: force.
  const f = await enqueueOk(server, key, envId, 'sesn_sm_f');
  await pollOne(worker, envId);
  await w.ack(f.id, at(envId));
  const fs1 = await w.stop(f.id, at(envId)); // force omitted = graceful
  assertWork(fs1, { state: 'stopping' });
  const fs2 = await w.stop(f.id, { ...at(envId), force: true });
  assertWork(fs2, { state: 'stopped' });
  assert.equal(fs2.stop_requested_at, fs1.stop_requested_at);

  // T14 from starting (no heartbeat yet) and stop by API key.
  const s = await enqueueOk(server, key, envId, 'sesn_sm_s');
  await pollOne(worker, envId);
  await w.ack(s.id, at(envId));
  assertWork(await api().beta.environments.work.stop(s.id, { ...at(envId), force: false }), { state: 'stopping' });
  assertWork(await api().beta.environments.work.stop(s.id, { ...at(envId), force: true }), { state: 'stopped' });
});

test('reclaim: an unacked delivery is redelivered to another poller with a new secret; the old token dies', async () => {
  const { envId, worker } = await newEnv('reclaim');
  const w = worker.beta.environments.work;
  const item = await enqueueOk(server, key, envId, 'sesn_reclaim');
  const first = await w.poll(envId, { 'Anthropic-Worker-ID': 'r1' });
  assert.equal(first.id, item.id);
  const oldTok = decodeSecret(first.secret).sessions_token;
  assertWork(await server.client(oldTok).beta.environments.work.retrieve(item.id, at(envId)), { state: 'queued' });

  // With the default reclaim window (5 s) the fresh delivery is not handed out again.
  assert.equal(await w.poll(envId, { 'Anthropic-Worker-ID': 'r2' }), null);
  const st = await api().beta.environments.work.stats(envId);
  assert.equal(st.depth, 0);
  assert.equal(st.pending, 1);

  const second = await w.poll(envId, { 'Anthropic-Worker-ID': 'r2', reclaim_older_than_ms: 0 });
  assert.ok(second, 'reclaim_older_than_ms=0 should redeliver the pending item');
  assertWork(second, { secret: true, state: 'queued' });
  assert.equal(second.id, item.id);
  assert.notEqual(second.secret, first.secret);
  const newTok = decodeSecret(second.secret).sessions_token;
  assert.notEqual(newTok, oldTok);
  await expectStatus(server.client(oldTok).beta.environments.work.retrieve(item.id, at(envId)), 401, {
    cls: SDK.AuthenticationError,
    where: 'old token after redelivery: ',
  });
  await expectStatus(server.client(oldTok).beta.environments.work.ack(item.id, at(envId)), 401, { where: 'old token ack: ' });
  const s = server.client(newTok).beta.environments.work;
  assertWork(await s.ack(item.id, at(envId)), { state: 'starting' });
  await s.stop(item.id, { ...at(envId), force: true });

  // Reclaimable items are served before fresh ones.
  const old = await enqueueOk(server, key, envId, 'sesn_reclaim_old');
  assert.equal((await w.poll(envId)).id, old.id);
  const fresh = await enqueueOk(server, key, envId, 'sesn_reclaim_fresh');
  const r1 = await w.poll(envId, { reclaim_older_than_ms: 0 });
  assert.equal(r1.id, old.id, 'the reclaimable item comes first');
  const r2 = await w.poll(envId, { reclaim_older_than_ms: 60000 });
  assert.equal(r2.id, fresh.id);
  for (const id of [old.id, fresh.id]) await api().beta.environments.work.stop(id, { ...at(envId), force: true });
});

test('a held poll answers the moment an unacked delivery becomes reclaimable, not at its deadline', async (t) => {
  const { envId, worker } = await newEnv('reclaimwake');
  const w = worker.beta.environments.work;
  // Deliver an item, then at once hold a poll that may reclaim it after 200 ms. An attempt
  // counts when the held poll started well inside that window, so it had to wait and be
  // woken; on a slow machine the next attempt gets a fresh item.
  for (let attempt = 1; ; attempt++) {
    const item = await enqueueOk(server, key, envId, `sesn_reclaim_wake_${attempt}`);
    const sentAt = Date.now();
    assert.equal((await w.poll(envId)).id, item.id);
    const t0 = Date.now();
    const r3 = await w.poll(envId, { block_ms: 999, reclaim_older_than_ms: 200 });
    const answeredAt = Date.now();
    await api().beta.environments.work.stop(item.id, { ...at(envId), force: true });
    if (t0 - sentAt > 100 && attempt < 5) {
      t.diagnostic(`attempt ${attempt} inconclusive: the held poll started ${t0 - sentAt} ms after the delivery`);
      continue;
    }
    assert.ok(r3, 'a held poll with reclaim_older_than_ms=200 got nothing');
    assert.equal(r3.id, item.id);
    assert.ok(answeredAt - sentAt >= 190, `redelivered ${answeredAt - sentAt} ms after the first delivery`);
    assert.ok(answeredAt - t0 < 800, `the held poll answered after ${answeredAt - t0} ms, not when the item became reclaimable`);
    return;
  }
});

test('lease expiry requeues the item; the stale holder gets 412 while the new holder claims it', async () => {
  const { envId, worker } = await newEnv('lease');
  const w = worker.beta.environments.work;
  const item = await enqueueOk(server, key, envId, 'sesn_lease');
  const winding = await enqueueOk(server, key, envId, 'sesn_lease_stopping');
  const first = await w.poll(envId, { 'Anthropic-Worker-ID': 'holder-1' });
  assert.equal(first.id, item.id);
  assert.equal((await w.poll(envId, { 'Anthropic-Worker-ID': 'holder-1' })).id, winding.id);
  await w.ack(item.id, at(envId));
  // A second item winds down (stopping) on a 10 s lease: T19 must stop it when it runs out.
  await w.ack(winding.id, at(envId));
  await w.heartbeat(winding.id, { ...at(envId), expected_last_heartbeat: 'NO_HEARTBEAT', desired_ttl_seconds: 60 });
  assertWork(await w.stop(winding.id, { ...at(envId), force: false }), { state: 'stopping' });
  assertHeartbeat(await w.heartbeat(winding.id, { ...at(envId), desired_ttl_seconds: 10 }), {
    state: 'stopping',
    lease_extended: true,
    ttl_seconds: 10,
  });
  const hb = assertHeartbeat(
    await w.heartbeat(item.id, { ...at(envId), expected_last_heartbeat: 'NO_HEARTBEAT', desired_ttl_seconds: 10 }),
    { state: 'active', ttl_seconds: 10, lease_extended: true },
  );
  const hbAt = Date.now();
  const oldTok = decodeSecret(first.secret).sessions_token;

  // A second worker long-polls until the item comes back (bounded: 20 s after the heartbeat).
  let second = null;
  while (!second) {
    assert.ok(Date.now() - hbAt < 20000, 'the lease did not expire within 20 s of a 10 s heartbeat');
    second = await w.poll(envId, { 'Anthropic-Worker-ID': 'holder-2', block_ms: 999 });
  }
  const elapsed = Date.now() - hbAt;
  assert.ok(elapsed >= 9000, `requeued ${elapsed} ms after a 10 s lease`);
  assertWork(second, { secret: true, state: 'queued' });
  assert.equal(second.id, item.id);
  // T18: requeued with ack/start/heartbeat fields cleared.
  assert.equal(second.acknowledged_at, null);
  assert.equal(second.started_at, null);
  assert.equal(second.latest_heartbeat_at, null);
  assert.equal(second.created_at, item.created_at);
  // T19: the stopping item's lease ran out at about the same time → stopped, never requeued.
  const wound = await waitFor(
    async () => {
      const x = await api().beta.environments.work.retrieve(winding.id, at(envId));
      return x.state === 'stopped' ? x : Date.now() - hbAt > 20000 ? x : null;
    },
    { timeoutMs: 12000, what: 'T19' },
  );
  assertWork(wound, { state: 'stopped' });
  assert.match(wound.stopped_at, TS_RE);

  // The stale holder echoes its last heartbeat → 412.
  const stale = await expectStatus(w.heartbeat(item.id, { ...at(envId), expected_last_heartbeat: hb.last_heartbeat }), 412, {
    cls: HeartbeatPreconditionFailed,
    where: 'stale holder: ',
  });
  assert.equal(stale.details.current_state.last_heartbeat, null);
  assert.equal(stale.details.current_state.lease_extended, false);
  assert.equal(stale.details.current_state.state, 'queued');
  // Its session token died with the redelivery.
  await expectStatus(server.client(oldTok).beta.environments.work.retrieve(item.id, at(envId)), 401, { where: 'old token: ' });

  // The new holder acks and claims the lease with NO_HEARTBEAT.
  const s = server.client(decodeSecret(second.secret).sessions_token).beta.environments.work;
  assertWork(await s.ack(item.id, at(envId)), { state: 'starting' });
  const nhb = assertHeartbeat(await s.heartbeat(item.id, { ...at(envId), expected_last_heartbeat: 'NO_HEARTBEAT' }), {
    state: 'active',
    lease_extended: true,
  });
  // The stale holder still loses, and never steals the new lease.
  const again = await expectStatus(w.heartbeat(item.id, { ...at(envId), expected_last_heartbeat: hb.last_heartbeat }), 412, {
    cls: HeartbeatPreconditionFailed,
  });
  assert.equal(again.details.current_state.state, 'active');
  assert.equal(again.details.current_state.last_heartbeat, nhb.last_heartbeat);
  await s.stop(item.id, { ...at(envId), force: true });
});

test('environment boundaries: foreign work id 404, cloud env 400, archived env keeps workers going', async () => {
  const A = await newEnv('bndA');
  const B = await newEnv('bndB');
  const wa = A.worker.beta.environments.work;
  const bItem = await enqueueOk(server, key, B.envId, 'sesn_bnd_b');
  // A work id from another environment, under this environment's path → 404.
  await expectStatus(api().beta.environments.work.retrieve(bItem.id, at(A.envId)), 404, { cls: SDK.NotFoundError, where: 'get: ' });
  await expectStatus(api().beta.environments.work.update(bItem.id, { ...at(A.envId), metadata: { a: 'b' } }), 404, { where: 'update: ' });
  await expectStatus(api().beta.environments.work.stop(bItem.id, at(A.envId)), 404, { where: 'stop: ' });
  await expectStatus(wa.ack(bItem.id, at(A.envId)), 404, { where: 'ack: ' });
  await expectStatus(wa.heartbeat(bItem.id, at(A.envId)), 404, { where: 'heartbeat: ' });
  await expectStatus(wa.stop(bItem.id, at(A.envId)), 404, { where: 'env-key stop: ' });
  // An unknown but well-formed work id → 404.
  await expectStatus(api().beta.environments.work.retrieve('work_000000000000000000000000', at(A.envId)), 404, { where: 'unknown: ' });

  // Cloud environment: every work route is a 400.
  const cloud = await api().beta.environments.create({ name: `wq-cloud-${++envSeq}` });
  const cw = api().beta.environments.work;
  await expectStatus(cw.stats(cloud.id), 400, { cls: SDK.BadRequestError, where: 'cloud stats: ' });
  await expectStatus(cw.retrieve(bItem.id, at(cloud.id)), 400, { where: 'cloud get: ' });
  await expectStatus(cw.update(bItem.id, { ...at(cloud.id), metadata: {} }), 400, { where: 'cloud update: ' });
  await expectStatus(cw.stop(bItem.id, at(cloud.id)), 400, { where: 'cloud stop: ' });
  const ce = await enqueue(server, key, cloud.id, 'sesn_cloud');
  assert.equal(ce.status, 400, `cloud enqueue: ${ce.res.text}`);
  const ck = await server.raw('POST', `/v1/environments/${cloud.id}/keys`, { key, body: { name: 'w' } });
  assert.equal(ck.status, 400, `cloud env key: ${ck.text}`);

  // Archived environment: no new work, but workers keep going.
  const C = await newEnv('bndC');
  const wc = C.worker.beta.environments.work;
  const c1 = await enqueueOk(server, key, C.envId, 'sesn_arch_1');
  const c2 = await enqueueOk(server, key, C.envId, 'sesn_arch_2');
  const archived = await api().beta.environments.archive(C.envId);
  assert.match(archived.archived_at, TS_RE);
  const ae = await enqueue(server, key, C.envId, 'sesn_arch_3');
  assert.equal(ae.status, 400, ae.res.text);
  assert.equal(ae.item.error.details.error_code, 'environment_archived');
  // The same dedupe path must not sneak around the archive either.
  const ae2 = await enqueue(server, key, C.envId, 'sesn_arch_1');
  assert.ok([200, 400].includes(ae2.status), ae2.res.text);
  // What the SDK would make of that error body.
  const viaSdk = await expectStatus(
    api().post(`/v1/environments/${C.envId}/work`, {
      body: { data: { type: 'session', id: 'sesn_arch_4' }, metadata: {} },
      headers: { 'anthropic-beta': 'managed-agents-2026-04-01' },
    }),
    400,
    { cls: EnvironmentArchived, code: 'environment_archived', where: 'archived enqueue via SDK: ' },
  );
  assert.ok(viaSdk);
  const p1 = await wc.poll(C.envId, { block_ms: 10 });
  assert.equal(p1.id, c1.id);
  assertWork(await wc.ack(c1.id, at(C.envId)), { state: 'starting' });
  const ahb = assertHeartbeat(await wc.heartbeat(c1.id, { ...at(C.envId), expected_last_heartbeat: 'NO_HEARTBEAT' }), { state: 'active' });
  assertHeartbeat(await wc.heartbeat(c1.id, { ...at(C.envId), expected_last_heartbeat: ahb.last_heartbeat }), { state: 'active' });
  assertWork(await wc.stop(c1.id, { ...at(C.envId), force: false }), { state: 'stopping' });
  assertWork(await wc.stop(c1.id, { ...at(C.envId), force: true }), { state: 'stopped' });
  const p2 = await wc.poll(C.envId);
  assert.equal(p2.id, c2.id);
  assertWork(await wc.stop(c2.id, { ...at(C.envId), force: true }), { state: 'stopped' });
  assert.equal((await listAllWork(C.worker, C.envId)).length, 2);
  const cst = await api().beta.environments.work.stats(C.envId);
  assert.equal(cst.depth, 0);
  assertWork(await api().beta.environments.work.retrieve(c2.id, at(C.envId)), { state: 'stopped' });
});

test('deleting an environment: 409 while work is live; queued and stopped work go with it', async () => {
  const D = await newEnv('del');
  const wd = D.worker.beta.environments.work;
  const live = await enqueueOk(server, key, D.envId, 'sesn_del_live');
  const queued = await enqueueOk(server, key, D.envId, 'sesn_del_queued');
  assert.equal((await wd.poll(D.envId)).id, live.id);
  await wd.ack(live.id, at(D.envId));
  const e = await expectStatus(api().beta.environments.delete(D.envId), 409, { cls: SDK.ConflictError, code: 'environment_has_live_work' });
  assert.equal(e.headers.get('x-should-retry'), 'false');
  assertWork(await wd.stop(live.id, { ...at(D.envId), force: false }), { state: 'stopping' });
  await expectStatus(api().beta.environments.delete(D.envId), 409, { code: 'environment_has_live_work', where: 'stopping: ' });
  assertWork(await wd.stop(live.id, { ...at(D.envId), force: true }), { state: 'stopped' });
  const del = await api().beta.environments.delete(D.envId);
  assert.deepEqual(del, { id: D.envId, type: 'environment_deleted' });
  await expectStatus(wd.poll(D.envId), 401, { where: 'env key after delete: ' });
  await expectStatus(api().beta.environments.work.retrieve(queued.id, at(D.envId)), 404, { where: 'work after delete: ' });
  await expectStatus(api().beta.environments.work.stats(D.envId), 404, { where: 'stats after delete: ' });
  const enq = await enqueue(server, key, D.envId, 'sesn_del_new');
  assert.equal(enq.status, 404, enq.res.text);
  // The session id is free again elsewhere: the deleted items are gone, not live.
  const E = await newEnv('del2');
  assert.equal((await enqueue(server, key, E.envId, 'sesn_del_queued')).status, 201);
});

test('credentials: each kind reaches only its routes (SPEC §4)', async () => {
  const A = await newEnv('credA');
  const B = await newEnv('credB');
  const item = await enqueueOk(server, key, A.envId, 'sesn_cred');
  const envKeyOnB = server.client(A.envKey).beta.environments.work;
  // Environment key of env A on env B → 403.
  await expectStatus(envKeyOnB.poll(B.envId), 403, { cls: SDK.PermissionDeniedError, where: 'A key poll B: ' });
  await expectStatus(envKeyOnB.list(B.envId), 403, { cls: SDK.PermissionDeniedError, where: 'A key list B: ' });
  const bItem = await enqueueOk(server, key, B.envId, 'sesn_cred_b');
  await expectStatus(envKeyOnB.ack(bItem.id, at(B.envId)), 403, { where: 'A key ack B: ' });
  await expectStatus(envKeyOnB.heartbeat(bItem.id, at(B.envId)), 403, { where: 'A key heartbeat B: ' });
  await expectStatus(envKeyOnB.stop(bItem.id, at(B.envId)), 403, { where: 'A key stop B: ' });

  // API key on worker routes → 403.
  const a = api().beta.environments.work;
  await expectStatus(a.poll(A.envId), 403, { cls: SDK.PermissionDeniedError, where: 'API key poll: ' });
  await expectStatus(a.list(A.envId), 403, { cls: SDK.PermissionDeniedError, where: 'API key list: ' });
  await expectStatus(a.ack(item.id, at(A.envId)), 403, { where: 'API key ack: ' });
  await expectStatus(a.heartbeat(item.id, at(A.envId)), 403, { where: 'API key heartbeat: ' });

  // Env key on API-key routes → 403.
  const e = A.worker.beta.environments.work;
  await expectStatus(e.stats(A.envId), 403, { cls: SDK.PermissionDeniedError, where: 'env key stats: ' });
  await expectStatus(e.retrieve(item.id, at(A.envId)), 403, { where: 'env key get: ' });
  await expectStatus(e.update(item.id, { ...at(A.envId), metadata: { a: 'b' } }), 403, { where: 'env key update: ' });
  const ee = await server.raw('POST', `/v1/environments/${A.envId}/work`, {
    headers: { authorization: `Bearer ${A.envKey}` },
    body: { data: { type: 'session', id: 'sesn_cred_2' }, metadata: {} },
  });
  assert.equal(ee.status, 403, `env key enqueue: ${ee.text}`);
  await expectStatus(A.worker.beta.environments.retrieve(A.envId), 403, { where: 'env key on environments: ' });

  // Missing / unknown credentials → 401.
  const unknown = server.client('envd_env_doesnotexist0000000000000000').beta.environments.work;
  await expectStatus(unknown.poll(A.envId), 401, { cls: SDK.AuthenticationError, where: 'unknown env key: ' });
  await expectStatus(server.client('envd_req_nope').beta.environments.work.retrieve(item.id, at(A.envId)), 401, { where: 'unknown token: ' });
  const noCred = await server.raw('GET', `/v1/environments/${A.envId}/work/poll`);
  assert.equal(noCred.status, 401, noCred.text);

  // Stop accepts both the API key and the env key.
  assertWork(await e.stop(item.id, { ...at(A.envId), force: false }), { state: 'stopped' });
  assertWork(await a.stop(bItem.id, at(B.envId)), { state: 'stopped' });

  // A revoked env key stops working at once.
  const ks = await server.raw('GET', `/v1/environments/${A.envId}/keys`, { key });
  assert.equal(ks.status, 200, ks.text);
  const kid = ks.json.data[0].id;
  const rv = await server.raw('DELETE', `/v1/environments/${A.envId}/keys/${kid}`, { key });
  assert.equal(rv.status, 200, rv.text);
  await expectStatus(A.worker.beta.environments.work.poll(A.envId), 401, { where: 'revoked env key: ' });
  // Every route, not only a claim (which checks the key in its own transaction): the
  // server's cache of environment keys forgets it at the revocation.
  await expectStatus(A.worker.beta.environments.work.list(A.envId), 401, { where: 'revoked env key, list: ' });
});

test('stats: depth, pending, oldest_queued_at, workers_polling', async () => {
  const { envId, worker } = await newEnv('stats');
  const w = worker.beta.environments.work;
  const a = api().beta.environments.work;
  assert.deepEqual(await a.stats(envId), { type: 'work_queue_stats', depth: 0, pending: 0, oldest_queued_at: null, workers_polling: 0 });
  const items = [];
  for (let i = 0; i < 4; i++) items.push(await enqueueOk(server, key, envId, `sesn_stats_${i}`));
  let s = await a.stats(envId);
  assert.deepEqual(s, { type: 'work_queue_stats', depth: 4, pending: 0, oldest_queued_at: items[0].created_at, workers_polling: 0 });

  const p1 = await w.poll(envId, { 'Anthropic-Worker-ID': 'worker-one' });
  assert.equal(p1.id, items[0].id);
  s = await a.stats(envId);
  assert.equal(s.depth, 3);
  assert.equal(s.pending, 1);
  assert.equal(s.oldest_queued_at, items[0].created_at, 'oldest over queued and pending');
  assert.equal(s.workers_polling, 1);

  const p2 = await w.poll(envId, { 'Anthropic-Worker-ID': 'worker-two' });
  assert.equal(p2.id, items[1].id);
  await w.poll(envId, { 'Anthropic-Worker-ID': 'worker-one' });
  s = await a.stats(envId);
  assert.equal(s.depth, 1);
  assert.equal(s.pending, 3);
  assert.equal(s.workers_polling, 2, 'two distinct Anthropic-Worker-IDs');
  // A poll without a worker id counts no worker.
  await w.poll(envId, { block_ms: 1 });
  assert.equal((await a.stats(envId)).workers_polling, 2);

  await w.ack(items[0].id, at(envId));
  s = await a.stats(envId);
  assert.equal(s.depth, 0);
  assert.equal(s.pending, 3);
  assert.equal(s.oldest_queued_at, items[1].created_at);
  for (const it of items.slice(1)) await w.ack(it.id, at(envId));
  s = await a.stats(envId);
  assert.deepEqual({ ...s, workers_polling: 0 }, { type: 'work_queue_stats', depth: 0, pending: 0, oldest_queued_at: null, workers_polling: 0 });
  // Another environment's pollers do not count here.
  const other = await newEnv('stats2');
  await other.worker.beta.environments.work.poll(other.envId, { 'Anthropic-Worker-ID': 'worker-three' });
  assert.equal((await a.stats(envId)).workers_polling, 2);
  assert.equal((await a.stats(other.envId)).workers_polling, 1);
  for (const it of items) await w.stop(it.id, { ...at(envId), force: true });
});

test('list: newest first, paginated, every state, secret null', async () => {
  const { envId, worker } = await newEnv('list');
  const w = worker.beta.environments.work;
  const made = [];
  for (let i = 0; i < 7; i++) made.push(await enqueueOk(server, key, envId, `sesn_list_${i}`));
  // Spread them over the states: 0 stopped, 1 stopping, 2 active, 3 starting, 4 delivered, 5–6 queued.
  for (let i = 0; i < 5; i++) assert.equal((await w.poll(envId)).id, made[i].id);
  for (let i = 0; i < 4; i++) await w.ack(made[i].id, at(envId));
  for (let i = 0; i < 3; i++) await w.heartbeat(made[i].id, { ...at(envId), expected_last_heartbeat: 'NO_HEARTBEAT' });
  await w.stop(made[0].id, { ...at(envId), force: true });
  await w.stop(made[1].id, { ...at(envId), force: false });
  const want = { 0: 'stopped', 1: 'stopping', 2: 'active', 3: 'starting', 4: 'queued', 5: 'queued', 6: 'queued' };

  const pages = [];
  let page = await w.list(envId, { limit: 3 });
  pages.push(page.data);
  while (page.hasNextPage()) {
    page = await page.getNextPage();
    pages.push(page.data);
    assert.ok(pages.length < 10, 'pagination does not end');
  }
  assert.deepEqual(pages.map((p) => p.length), [3, 3, 1]);
  assert.equal(page.next_page, null);
  const all = pages.flat();
  assert.deepEqual(all.map((x) => x.id), [...made].reverse().map((x) => x.id), 'newest first');
  for (const x of all) {
    assertWork(x, { envId });
    const i = Number(x.data.id.split('_').pop());
    assert.equal(x.state, want[i], `state of item ${i}`);
  }
  // Keyset cursors: items enqueued while paging neither repeat nor hide older ones.
  const p1 = await w.list(envId, { limit: 3 });
  for (let i = 7; i < 10; i++) await enqueueOk(server, key, envId, `sesn_list_${i}`);
  const rest = [];
  let pg = p1;
  while (pg.hasNextPage()) {
    pg = await pg.getNextPage();
    rest.push(...pg.data.map((x) => x.id));
  }
  assert.deepEqual([...p1.data.map((x) => x.id), ...rest], [...made].reverse().map((x) => x.id));
  // Raw: next_page cursor form, default limit, bad limits.
  const r = await server.raw('GET', `/v1/environments/${envId}/work?limit=2`, { headers: { authorization: `Bearer ${worker.apiKey}` } });
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(Object.keys(r.json).sort(), ['data', 'next_page']);
  assert.match(r.json.next_page, /^page_[A-Za-z0-9_-]+$/);
  assert.equal((await w.list(envId)).data.length, 10);
  for (const bad of [0, 101, -1, 'x']) await expectStatus(w.list(envId, { limit: bad }), 400, { where: `limit=${bad}: ` });
  await expectStatus(w.list(envId, { page: 'page_AAAAforged' }), 400, { where: 'forged cursor: ' });
  // A cursor from another environment is a 400 too.
  const other = await newEnv('list2');
  for (let i = 0; i < 3; i++) await enqueueOk(server, key, other.envId, `sesn_list2_${i}`);
  const op = await other.worker.beta.environments.work.list(other.envId, { limit: 1 });
  assert.ok(op.next_page);
  await expectStatus(w.list(envId, { page: op.next_page }), 400, { where: 'foreign cursor: ' });
  // The poll secret never leaks into the list.
  const one = await listAllWork(worker, envId, 100);
  assert.ok(one.every((x) => x.secret === null));
});

test('metadata update: strings upsert, null deletes, "" is a value, limits → 400', async () => {
  const { envId, worker } = await newEnv('meta');
  const a = api().beta.environments.work;
  const item = await enqueueOk(server, key, envId, 'sesn_meta', { metadata: { keep: 'k', drop: 'd', change: 'c' } });
  assert.deepEqual(item.metadata, { keep: 'k', drop: 'd', change: 'c' });
  let u = await a.update(item.id, { ...at(envId), metadata: { change: 'C', drop: null, empty: '', added: 'ünïcødé ✓' } });
  assertWork(u, { state: 'queued' });
  assert.deepEqual(u.metadata, { keep: 'k', change: 'C', empty: '', added: 'ünïcødé ✓' });
  assert.deepEqual((await a.retrieve(item.id, at(envId))).metadata, u.metadata);
  // "" stays a value; only null deletes.
  u = await a.update(item.id, { ...at(envId), metadata: { keep: '' } });
  assert.deepEqual(u.metadata, { keep: '', change: 'C', empty: '', added: 'ünïcødé ✓' });
  // Deleting a key that is absent is fine; an empty patch changes nothing.
  u = await a.update(item.id, { ...at(envId), metadata: { ghost: null } });
  assert.deepEqual(u.metadata, { keep: '', change: 'C', empty: '', added: 'ünïcødé ✓' });
  u = await a.update(item.id, { ...at(envId), metadata: {} });
  assert.deepEqual(u.metadata, { keep: '', change: 'C', empty: '', added: 'ünïcødé ✓' });
  // Omitted metadata → unchanged.
  const raw = await server.raw('POST', `/v1/environments/${envId}/work/${item.id}`, { key, body: {} });
  assert.equal(raw.status, 200, raw.text);
  assert.deepEqual(raw.json.metadata, u.metadata);

  // Limits: ≤ 16 keys, key 1–64, value ≤ 512 → 400 invalid_metadata; nothing changes.
  const many = {};
  for (let i = 0; i < 13; i++) many[`k${i}`] = 'v'; // 4 existing + 13 = 17
  const Env = Anthropic.Beta.Environments;
  const bads = [
    [many, /16/],
    [{ ['x'.repeat(65)]: 'v' }, /64/],
    [{ '': 'v' }, /key/],
    [{ long: 'v'.repeat(513) }, /512/],
  ];
  for (const [md, re] of bads) {
    const e = await expectStatus(a.update(item.id, { ...at(envId), metadata: md }), 400, {
      cls: Env.BetaInvalidMetadataError,
      code: 'invalid_metadata',
      where: `metadata ${JSON.stringify(md).slice(0, 40)}: `,
    });
    assert.match(e.message, re);
  }
  // Exactly at the limits is fine (16 keys, 64-char key, 512-char value).
  const at16 = { ['x'.repeat(64)]: 'v'.repeat(512) };
  for (let i = 0; i < 11; i++) at16[`k${i}`] = String(i); // 4 + 1 + 11 = 16
  u = await a.update(item.id, { ...at(envId), metadata: at16 });
  assert.equal(Object.keys(u.metadata).length, 16);
  // Deleting and adding in one patch is judged on the result.
  const swap = { k0: null, k99: 'new' };
  u = await a.update(item.id, { ...at(envId), metadata: swap });
  assert.equal(Object.keys(u.metadata).length, 16);
  assert.equal(u.metadata.k99, 'new');
  assert.ok(!('k0' in u.metadata));
  // Wrong types → 400.
  for (const body of [{ metadata: { a: 1 } }, { metadata: ['a'] }, { metadata: 'x' }, { metadata: {}, extra: 1 }]) {
    const r = await server.raw('POST', `/v1/environments/${envId}/work/${item.id}`, { key, body });
    assert.equal(r.status, 400, `${JSON.stringify(body)} → ${r.status} ${r.text}`);
  }
  // T20 in any state, including stopped.
  await worker.beta.environments.work.stop(item.id, { ...at(envId), force: true });
  u = await a.update(item.id, { ...at(envId), metadata: { after: 'stop', k1: null } });
  assertWork(u, { state: 'stopped' });
  assert.equal(u.metadata.after, 'stop');
  assert.equal(Object.keys(u.metadata).length, 16);
});

test('enqueue dedupe: one live item per session id', async () => {
  const { envId, worker } = await newEnv('dedupe');
  const w = worker.beta.environments.work;
  const first = await enqueue(server, key, envId, 'sesn_dup', { metadata: { n: '1' } });
  assert.equal(first.status, 201);
  const dup = await enqueue(server, key, envId, 'sesn_dup', { metadata: { n: '2' } });
  assert.equal(dup.status, 200, dup.res.text);
  assertWork(dup.item, { state: 'queued' });
  assert.equal(dup.item.id, first.item.id);
  assert.equal(dup.item.created_at, first.item.created_at);
  // The same id as a healthcheck, or in another environment, is another item.
  const hc = await enqueue(server, key, envId, 'hc_dup', { type: 'healthcheck' });
  assert.equal(hc.status, 201, hc.res.text);
  assert.deepEqual(hc.item.data, { type: 'healthcheck', id: 'hc_dup' });
  const other = await newEnv('dedupe2');
  const elsewhere = await enqueue(server, key, other.envId, 'sesn_dup');
  assert.equal(elsewhere.status, 201);
  assert.notEqual(elsewhere.item.id, first.item.id);

  // Still live while delivered, starting, active, stopping.
  await w.poll(envId);
  assert.equal((await enqueue(server, key, envId, 'sesn_dup')).status, 200);
  await w.ack(first.item.id, at(envId));
  const st = await enqueue(server, key, envId, 'sesn_dup');
  assert.equal(st.status, 200);
  assert.equal(st.item.id, first.item.id);
  assert.equal(st.item.state, 'starting');
  await w.stop(first.item.id, { ...at(envId), force: false });
  const sg = await enqueue(server, key, envId, 'sesn_dup');
  assert.equal(sg.status, 200);
  assert.equal(sg.item.state, 'stopping');
  await w.stop(first.item.id, { ...at(envId), force: true });
  // Once stopped, a new item.
  const fresh = await enqueue(server, key, envId, 'sesn_dup');
  assert.equal(fresh.status, 201, fresh.res.text);
  assert.notEqual(fresh.item.id, first.item.id);
  assertWork(fresh.item, { state: 'queued' });
  assert.equal((await enqueue(server, key, envId, 'sesn_dup')).item.id, fresh.item.id);
  const all = await listAllWork(worker, envId);
  assert.equal(all.filter((x) => x.data.id === 'sesn_dup').length, 2);

  // Concurrent enqueues of one session still make exactly one item.
  const rs = await Promise.all(Array.from({ length: 12 }, () => enqueue(server, key, envId, 'sesn_race')));
  assert.equal(rs.filter((r) => r.status === 201).length, 1, rs.map((r) => r.status).join(','));
  assert.equal(rs.filter((r) => r.status === 200).length, 11);
  assert.equal(new Set(rs.map((r) => r.item.id)).size, 1);

  // Enqueue validation.
  const m17 = {};
  for (let i = 0; i < 17; i++) m17[`k${i}`] = 'v';
  for (const body of [
    { data: { type: 'session', id: 'sesn_v1' }, metadata: m17 },
    { data: { type: 'session', id: 'sesn_v2' }, metadata: { a: null } },
    { data: { type: 'session', id: 'x'.repeat(257) } },
    { data: { type: 'session', id: 'sesn_v3', extra: 1 } },
    {},
    { data: { type: 'session' } },
    { data: { type: 'session', id: '' } },
    { data: { type: 'nope', id: 'x' } },
    { data: { type: 'session', id: 'x' }, metadata: { a: 1 } },
    { data: { type: 'session', id: 'x' }, bogus: true },
  ]) {
    const r = await server.raw('POST', `/v1/environments/${envId}/work`, { key, body });
    assert.equal(r.status, 400, `${JSON.stringify(body)} → ${r.status} ${r.text}`);
  }
});

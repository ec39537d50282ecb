// Test mode (`environd serve --test-mode`, README: "Test your worker against environd in
// CI"): injected faults per route (status with retry-after, dropped connections before and
// after the write, delays), deterministic under a seed, and a reset of all data. Without
// the flag every test route is a 404. The SDK's WorkPoller and `environd worker` must get
// through every injected fault and finish all their items.
'use strict';
const { test, describe, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { Server, BETA } = require('./lib/server');
const { assertEnvelope, httpRequest } = require('./lib/helpers');
const { selfHosted, enqueueOk, waitFor } = require('./lib/work');
const { Worker, workers } = require('./lib/worker_proc');

const FAULTS = '/v1/environd/test/faults';
const RESET = '/v1/environd/test/reset';

// One request on a fresh connection: { status, headers, json, text } or { dropped: err }
// when the server closed the connection without a reply.
async function call(server, method, pathname, { key, body } = {}) {
  const headers = { 'anthropic-beta': BETA };
  if (key) headers['x-api-key'] = key;
  let text;
  if (body !== undefined) {
    text = JSON.stringify(body);
    headers['content-type'] = 'application/json';
  }
  // A hang guard: the test server's idle timeout is an hour, so a connection that is
  // neither answered nor closed within a minute was left hanging.
  let timer;
  const hang = new Promise((resolve) => (timer = setTimeout(() => resolve({ hung: true }), 60000)));
  try {
    return await Promise.race([httpRequest(server.url + pathname, { method, headers, body: text }), hang]);
  } catch (e) {
    return { dropped: e };
  } finally {
    clearTimeout(timer);
  }
}

function assertDropped(r, what) {
  assert.ok(!r.hung, `${what}: the connection was neither answered nor closed`);
  assert.ok(r.dropped, `${what}: expected a dropped connection, got ${r.status} ${r.text}`);
  assert.match(String(r.dropped.code || r.dropped.message), /ECONNRESET|socket hang up|EPIPE/, `${what}: ${r.dropped}`);
}

describe('without --test-mode', () => {
  let server;
  let key;
  before(async () => {
    server = new Server();
    key = server.createKey();
    await server.start();
  });
  after(async () => {
    await server.stop();
    server.cleanup();
  });

  test('every test route is a 404 in the SPEC envelope, with or without a key, and nothing is deleted', async () => {
    const env = await server.client(key).beta.environments.create({ name: 'kept' });
    const routes = [
      ['GET', FAULTS],
      ['POST', FAULTS, { rules: [{ route: '*', fault: 'drop' }] }],
      ['DELETE', FAULTS],
      ['POST', RESET],
    ];
    for (const [method, p, body] of routes) {
      for (const k of [key, undefined]) {
        const r = await call(server, method, p, { key: k, body });
        assert.equal(r.status, 404, `${method} ${p} (key: ${!!k}): ${r.text}`);
        assertEnvelope(r.json, 404, r.headers, `${method} ${p}: `);
        assert.match(r.json.error.message, /no route for/);
      }
    }
    // Nothing was installed: requests are served normally, and the reset deleted nothing.
    assert.equal((await server.client(key).beta.environments.retrieve(env.id)).id, env.id);
    assert.doesNotMatch(server.stdout, /TEST MODE/);
  });
});

describe('with --test-mode', () => {
  let server;
  let key;
  let envSeq = 0;
  const tmpDirs = [];
  const api = () => server.client(key);
  const newEnv = (tag) => selfHosted(server, key, `tm-${tag}-${++envSeq}`);
  const install = async (body) => {
    const r = await call(server, 'POST', FAULTS, { key, body });
    assert.equal(r.status, 200, `install faults: ${r.text}`);
    return r.json;
  };
  const shown = async () => (await call(server, 'GET', FAULTS, { key })).json;
  const clear = async () => assert.equal((await call(server, 'DELETE', FAULTS, { key })).status, 200);

  before(async () => {
    server = new Server({ args: ['--test-mode', '--connection-timeout', '3600'] });
    key = server.createKey();
    await server.start();
  });
  after(async () => {
    for (const w of workers) w.kill('SIGKILL');
    await server.stop();
    server.cleanup();
    for (const d of tmpDirs) fs.rmSync(d, { recursive: true, force: true });
  });

  test('the startup banner says loudly that test mode is on', () => {
    assert.match(server.stdout, /TEST MODE IS ON/);
  });

  test('rules are validated, each error naming its field; the test routes need an API key', async () => {
    const cases = [
      [{}, 'rules'],
      [{ rules: {} }, 'rules'],
      [{ rules: [{ fault: 'drop' }] }, 'rules[0].route'],
      [{ rules: [{ route: 'GET /v1/nope', fault: 'drop' }] }, 'rules[0].route'],
      [{ rules: [{ route: 'POST /v1/environd/test/reset', fault: 'drop' }] }, 'rules[0].route'],
      [{ rules: [{ route: 'PUT /v1/environments', fault: 'drop' }] }, 'rules[0].route'],
      [{ rules: [{ route: '*', fault: 'explode' }] }, 'rules[0].fault'],
      [{ rules: [{ route: '*', fault: 'status', status: 404 }] }, 'rules[0].status'],
      [{ rules: [{ route: '*', fault: 'status', status: 500, retry_after: 1 }] }, 'rules[0].retry_after'],
      [{ rules: [{ route: '*', fault: 'delay' }] }, 'rules[0].delay_ms'],
      [{ rules: [{ route: '*', fault: 'delay', delay_ms: 600001 }] }, 'rules[0].delay_ms'],
      [{ rules: [{ route: '*', fault: 'drop', rate: 1.5 }] }, 'rules[0].rate'],
      [{ rules: [{ route: '*', fault: 'drop', count: 0 }] }, 'rules[0].count'],
      [{ rules: [{ route: '*', fault: 'drop', extra: 1 }] }, 'extra'],
      [{ rules: [], seed: -1 }, 'seed'],
      [{ rules: [], bogus: 1 }, 'bogus'],
    ];
    for (const [body, field] of cases) {
      const r = await call(server, 'POST', FAULTS, { key, body });
      assert.equal(r.status, 400, `${JSON.stringify(body)}: ${r.text}`);
      assertEnvelope(r.json, 400, r.headers);
      assert.ok(r.json.error.message.includes(field), `${JSON.stringify(body)}: message names ${field}: ${r.json.error.message}`);
    }
    assert.deepEqual((await shown()).rules, [], 'a refused rule set installs nothing');
    for (const [method, p] of [['GET', FAULTS], ['POST', RESET]]) {
      const r = await call(server, method, p, {});
      assert.equal(r.status, 401, `${method} ${p} without a key`);
    }
  });

  test('status faults: 429 and 503 with retry-after, 500; the envelope says the fault was injected', async () => {
    await install({
      rules: [
        { route: 'GET /v1/environments', fault: 'status', status: 429, retry_after: 7, count: 1 },
        { route: 'GET /v1/environments', fault: 'status', status: 503, retry_after: 3, count: 1 },
        { route: 'GET /v1/environments', fault: 'status', status: 500, count: 1 },
      ],
    });
    const seen = [];
    for (const [status, retry] of [[429, '7'], [503, '3'], [500, null]]) {
      const r = await call(server, 'GET', '/v1/environments', { key });
      assert.equal(r.status, status, r.text);
      assertEnvelope(r.json, status, r.headers);
      assert.match(r.json.error.message, /injected fault/);
      assert.equal(r.headers.get('retry-after'), retry);
      seen.push(r.status);
    }
    // Each rule had count 1: the fourth request is served.
    assert.equal((await call(server, 'GET', '/v1/environments', { key })).status, 200);
    const s = await shown();
    assert.deepEqual(s.rules.map((r) => [r.fired, r.count]), [[1, 1], [1, 1], [1, 1]]);
    await clear();
    assert.deepEqual((await shown()).rules, []);
  });

  test('a faulted write changes nothing: a status or a dropped connection comes before the write', async () => {
    const { envId } = await newEnv('nowrite');
    await install({
      rules: [
        { route: 'POST /v1/environments', fault: 'status', status: 503, count: 1 },
        { route: 'POST /v1/environments', fault: 'drop', count: 1 },
        { route: 'POST /v1/environments/*/work', fault: 'drop', count: 1 },
        { route: 'POST /v1/environments/*/work', fault: 'status', status: 500, count: 1 },
      ],
    });
    const r1 = await call(server, 'POST', '/v1/environments', { key, body: { name: 'never-1' } });
    assert.equal(r1.status, 503);
    assertDropped(await call(server, 'POST', '/v1/environments', { key, body: { name: 'never-2' } }), 'create');
    const body = { data: { type: 'session', id: 'sesn_never' } };
    assertDropped(await call(server, 'POST', `/v1/environments/${envId}/work`, { key, body }), 'enqueue');
    assert.equal((await call(server, 'POST', `/v1/environments/${envId}/work`, { key, body })).status, 500);
    await clear();
    const names = [];
    for await (const e of api().beta.environments.list({ limit: 100 })) names.push(e.name);
    assert.ok(!names.includes('never-1') && !names.includes('never-2'), `faulted creates wrote: ${names}`);
    const stats = (await call(server, 'GET', `/v1/environments/${envId}/work/stats`, { key })).json;
    assert.equal(stats.depth, 0, 'a faulted enqueue wrote an item');
    // The same requests without faults do write: the checks above could have failed.
    assert.equal((await call(server, 'POST', '/v1/environments', { key, body: { name: 'never-1' } })).status, 200);
    assert.equal((await call(server, 'POST', `/v1/environments/${envId}/work`, { key, body })).status, 201);
  });

  test('drop_after: the write is committed, then the connection is dropped', async () => {
    const { envId, envKey } = await newEnv('dropafter');
    await install({
      rules: [
        { route: 'POST /v1/environments', fault: 'drop_after', count: 1 },
        { route: 'POST /v1/environments/*/work/*/ack', fault: 'drop_after', count: 1 },
      ],
    });
    assertDropped(await call(server, 'POST', '/v1/environments', { key, body: { name: 'committed' } }), 'create');
    const names = [];
    for await (const e of api().beta.environments.list({ limit: 100 })) names.push(e.name);
    assert.ok(names.includes('committed'), 'drop_after lost the write');
    const item = await enqueueOk(server, key, envId, 'sesn_dropafter');
    const polled = await call(server, 'GET', `/v1/environments/${envId}/work/poll`, { key: envKey });
    assert.equal(polled.status, 200);
    assert.equal(polled.json.id, item.id);
    assertDropped(await call(server, 'POST', `/v1/environments/${envId}/work/${item.id}/ack`, { key: envKey }), 'ack');
    const w = (await call(server, 'GET', `/v1/environments/${envId}/work/${item.id}`, { key })).json;
    assert.equal(w.state, 'starting', 'the dropped ack was committed');
    assert.ok(w.acknowledged_at);
    await clear();
  });

  test('delay: the request is answered normally after at least delay_ms', async () => {
    await install({ rules: [{ route: 'GET /v1/environments', fault: 'delay', delay_ms: 400 }] });
    const t0 = Date.now();
    const rs = await Promise.all([1, 2, 3].map(() => call(server, 'GET', '/v1/environments', { key })));
    const took = Date.now() - t0;
    for (const r of rs) assert.equal(r.status, 200, r.text);
    assert.ok(took >= 390, `three delayed requests took ${took} ms`);
    // Other routes are not delayed by this rule, and the counters show three delays.
    assert.equal((await shown()).rules[0].fired, 3);
    await clear();
  });

  test('"*" faults every route but the test routes, which stay usable', async () => {
    await install({ rules: [{ route: '*', fault: 'status', status: 503 }] });
    assert.equal((await call(server, 'GET', '/v1/environments', { key })).status, 503);
    assert.equal((await call(server, 'GET', '/v1/agents', { key })).status, 503);
    assert.equal((await call(server, 'GET', FAULTS, { key })).status, 200);
    await clear();
    assert.equal((await call(server, 'GET', '/v1/environments', { key })).status, 200);
  });

  test('a seed makes the decisions repeatable, rule by rule', async () => {
    const run = async (seed) => {
      await install({ seed, rules: [{ route: 'GET /v1/environments', fault: 'status', status: 500, rate: 0.5 }] });
      const out = [];
      for (let i = 0; i < 40; i++) out.push((await call(server, 'GET', '/v1/environments', { key })).status === 500 ? 1 : 0);
      const s = await shown();
      assert.equal(s.seed, seed);
      assert.equal(s.rules[0].matched, 40);
      assert.equal(s.rules[0].fired, out.reduce((a, b) => a + b, 0));
      return out.join('');
    };
    const a = await run(42);
    const b = await run(42);
    assert.equal(a, b, 'the same seed gave other decisions');
    assert.match(a, /0/);
    assert.match(a, /1/);
    assert.notEqual(await run(43), a, 'another seed gave the same 40 decisions');
    await clear();
  });

  // The faults a client must live with, on one route, at a meaningful rate in total.
  const mix = (route, scale = 1) => [
    { route, fault: 'status', status: 429, retry_after: 0, rate: 0.08 * scale },
    { route, fault: 'status', status: 500, rate: 0.08 * scale },
    { route, fault: 'status', status: 503, retry_after: 0, rate: 0.08 * scale },
    { route, fault: 'drop', rate: 0.08 * scale },
    { route, fault: 'delay', delay_ms: 150, rate: 0.15 * scale },
  ];

  test("the SDK's WorkPoller survives 429, 500, 503, drops and delays on poll, ack and stop, and finishes every item", async () => {
    const { envId, envKey } = await newEnv('poller');
    const items = [];
    for (let i = 0; i < 12; i++) items.push(await enqueueOk(server, key, envId, `sesn_poller_${i}`));
    await install({
      seed: 7,
      rules: [
        ...mix('GET /v1/environments/*/work/poll', 1.5),
        ...mix('POST /v1/environments/*/work/*/ack', 1.5),
        ...mix('POST /v1/environments/*/work/*/stop', 1.5),
      ],
    });
    const client = server.client(key, { maxRetries: 6 });
    const poller = client.beta.environments.work.poller({
      environmentId: envId,
      environmentKey: envKey,
      blockMs: 200,
      reclaimOlderThanMs: 300,
      workerId: 'faulty-net',
    });
    const seen = new Set();
    const t0 = Date.now();
    for await (const work of poller) {
      seen.add(work.id);
      if (seen.size === items.length) break; // the poller stops this last item as it leaves
      assert.ok(Date.now() - t0 < 150000, 'the poller hung (over 150 s)');
    }
    const s = await shown();
    await clear();
    const fired = (f) => s.rules.filter((r) => r.fault === f || r.status === f).reduce((a, r) => a + r.fired, 0);
    for (const f of [429, 500, 503, 'drop', 'delay']) assert.ok(fired(f) > 0, `no ${f} fault was injected: ${JSON.stringify(s.rules)}`);
    assert.deepEqual([...seen].sort(), items.map((x) => x.id).sort());
    for (const it of items) {
      const w = (await call(server, 'GET', `/v1/environments/${envId}/work/${it.id}`, { key })).json;
      assert.ok(w.acknowledged_at, `${it.id} acked`);
      assert.ok(['stopping', 'stopped'].includes(w.state) && w.stop_requested_at, `${it.id} stopped: ${w.state}`);
    }
  });

  test('environd worker survives 429, 500, 503, drops, drops after commit and delays on poll, ack, heartbeat and stop', async () => {
    const { envId, envKey } = await newEnv('worker');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'environd-tm-'));
    tmpDirs.push(dir);
    // Each item runs long enough for a few heartbeats, and leaves a mark per run.
    fs.writeFileSync(path.join(dir, 'item.sh'), '#!/bin/sh\necho x >> "$ANTHROPIC_WORK_ID.runs"\nsleep 1.5\nexit 0\n', { mode: 0o755 });
    const items = [];
    for (let i = 0; i < 8; i++) items.push(await enqueueOk(server, key, envId, `sesn_worker_${i}`));
    const after = (route) => ({ route, fault: 'drop_after', rate: 0.1 });
    await install({
      seed: 11,
      rules: [
        ...mix('GET /v1/environments/*/work/poll'),
        ...mix('POST /v1/environments/*/work/*/ack'), after('POST /v1/environments/*/work/*/ack'),
        ...mix('POST /v1/environments/*/work/*/heartbeat'), after('POST /v1/environments/*/work/*/heartbeat'),
        ...mix('POST /v1/environments/*/work/*/stop'), after('POST /v1/environments/*/work/*/stop'),
      ],
    });
    const w = new Worker(server, { envId, envKey, dir, args: ['--concurrency', '3', '--heartbeat-interval', '1', '--grace', '2'] });
    const state = async (id) => (await call(server, 'GET', `/v1/environments/${envId}/work/${id}`, { key })).json?.state;
    await waitFor(async () => {
      for (const it of items) if ((await state(it.id)) !== 'stopped') return false;
      return true;
    }, { timeoutMs: 150000, intervalMs: 250, what: `every item stopped; worker log:\n${w.stderr.slice(-3000)}` });
    const s = await shown();
    await clear();
    w.kill('SIGTERM');
    assert.equal(await w.exitCode(), 0, w.stderr.slice(-2000));
    const fired = (f) => s.rules.filter((r) => r.fault === f || r.status === f).reduce((a, r) => a + r.fired, 0);
    for (const f of [429, 500, 503, 'drop', 'drop_after', 'delay']) assert.ok(fired(f) > 0, `no ${f} fault was injected: ${JSON.stringify(s.rules)}`);
    const heartbeats = s.rules.filter((r) => r.route.endsWith('/heartbeat')).reduce((a, r) => a + r.fired, 0);
    assert.ok(heartbeats > 0, 'no heartbeat was faulted');
    // Every item ran, and ran once: a lost ack or heartbeat reply never ran an item twice.
    for (const it of items) {
      const runs = fs.readFileSync(path.join(dir, `${it.id}.runs`), 'utf8').trim().split('\n').length;
      assert.equal(runs, 1, `${it.id} ran ${runs} times`);
    }
  });

  test('reset deletes every tenant\'s data, answers held polls and streams, keeps API keys and keeps serving', async () => {
    const other = server.createKey({ org: 'other-org' });
    const { env, envId, envKey } = await newEnv('reset');
    await enqueueOk(server, key, envId, 'sesn_reset');
    const agent = await api().beta.agents.create({ name: 'a', model: 'claude-sonnet-4-5' });
    const session = await api().beta.sessions.create({ agent: agent.id, environment_id: envId });
    await api().beta.sessions.events.send(session.id, { events: [{ type: 'user.message', content: [{ type: 'text', text: 'hi' }] }] });
    await server.client(other).beta.environments.create({ name: 'theirs' });
    // Drain the queue so that a poll is held when the reset comes.
    while ((await call(server, 'GET', `/v1/environments/${envId}/work/poll`, { key: envKey })).json) {}
    const held = call(server, 'GET', `/v1/environments/${envId}/work/poll?block_ms=999`, { key: envKey });
    const ctrl = new AbortController();
    const stream = await fetch(`${server.url}/v1/sessions/${session.id}/events/stream`, {
      headers: { 'anthropic-beta': BETA, 'x-api-key': key },
      signal: ctrl.signal,
    });
    assert.equal(stream.status, 200);
    const streamEnded = (async () => {
      const reader = stream.body.getReader();
      for (;;) if ((await reader.read()).done) return true;
    })();

    const held_now = async () => {
      const m = (await call(server, 'GET', '/metrics')).text;
      return [/^environd_polls_held (\d+)$/m, /^environd_streams_held (\d+)$/m].map((re) => Number(m.match(re)[1]));
    };
    await waitFor(async () => {
      const [polls, streams] = await held_now();
      return polls === 1 && streams === 1;
    }, { timeoutMs: 10000, what: 'the poll and the stream held' });

    const r = await call(server, 'POST', RESET, { key });
    // Once the reset has answered, nothing it deleted is held any more (not at its deadline).
    assert.deepEqual(await held_now(), [0, 0], 'held polls and streams were not answered by the reset');
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.type, 'test_reset');
    assert.ok(r.json.deleted.environments >= 2, JSON.stringify(r.json));
    assert.ok(r.json.deleted.work_items >= 1 && r.json.deleted.environment_keys >= 1, JSON.stringify(r.json));
    assert.ok(r.json.deleted.agents >= 1 && r.json.deleted.sessions >= 1 && r.json.deleted.events >= 1, JSON.stringify(r.json));
    // The held stream ends; the held poll is answered as a poll held across the deletion of
    // its environment key is: 401 (its environment is gone too).
    assert.equal(await streamEnded, true);
    const h = await held;
    assert.equal(h.status, 401, `held poll: ${h.status} ${h.text}`);
    assertEnvelope(h.json, 401, h.headers);

    for (const k of [key, other]) {
      const envs = await call(server, 'GET', '/v1/environments?include_archived=true', { key: k });
      assert.equal(envs.status, 200, 'the API key survived the reset');
      assert.deepEqual(envs.json.data, []);
    }
    assert.deepEqual((await call(server, 'GET', '/v1/agents', { key })).json.data, []);
    assert.deepEqual((await call(server, 'GET', '/v1/sessions', { key })).json.data, []);
    assert.equal((await call(server, 'GET', `/v1/environments/${env.id}`, { key })).status, 404);
    assert.equal((await call(server, 'GET', `/v1/environments/${envId}/work/poll`, { key: envKey })).status, 401, 'the environment key was deleted');
    // The server keeps serving: a fresh environment works end to end.
    const again = await newEnv('after-reset');
    const item = await enqueueOk(server, key, again.envId, 'sesn_after');
    const p = await call(server, 'GET', `/v1/environments/${again.envId}/work/poll`, { key: again.envKey });
    assert.equal(p.json.id, item.id);
    ctrl.abort();
  });
});

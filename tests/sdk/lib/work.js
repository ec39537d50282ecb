// Shared helpers for the work-queue suites (work_queue, work_poller, work_durability):
// SPEC §3 objects, §4 credentials, §5 extensions (enqueue, environment keys).
'use strict';
const assert = require('node:assert/strict');
const SDK = require('@anthropic-ai/sdk');
const Anthropic = SDK.default;

const Work = Anthropic.Beta.Environments.Work;
const HeartbeatPreconditionFailed = Anthropic.Beta.Environments.BetaHeartbeatPreconditionFailedError;
const EnvironmentArchived = Anthropic.Beta.Environments.BetaEnvironmentArchivedError;

const TS_RE = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/;
const WORK_ID_RE = /^work_[0-9A-Za-z]{24}$/;
const ENV_ID_RE = /^env_[0-9A-Za-z]{24}$/;
const STATES = ['queued', 'starting', 'active', 'stopping', 'stopped'];
const WORK_KEYS = [
  'acknowledged_at',
  'created_at',
  'data',
  'environment_id',
  'id',
  'latest_heartbeat_at',
  'metadata',
  'secret',
  'started_at',
  'state',
  'stop_requested_at',
  'stopped_at',
  'type',
].sort();

function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

// Polls `fn` until it returns a truthy value; bounded by `timeoutMs`.
async function waitFor(fn, { timeoutMs = 5000, intervalMs = 25, what = 'condition' } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    last = await fn();
    if (last) return last;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(intervalMs);
  }
}

// A self_hosted environment plus an environment key for it.
async function selfHosted(server, apiKey, name) {
  const env = await server.client(apiKey).beta.environments.create({ name, config: { type: 'self_hosted' } });
  assert.match(env.id, ENV_ID_RE);
  const r = await server.raw('POST', `/v1/environments/${env.id}/keys`, { key: apiKey, body: { name: 'w' } });
  assert.equal(r.status, 200, `create env key: ${r.status} ${r.text}`);
  assert.match(r.json.key, /^envd_env_/);
  return { env, envId: env.id, envKey: r.json.key, worker: server.client(r.json.key) };
}

// SPEC §5 enqueue through the raw helper; returns { status, item, res }.
async function enqueue(server, apiKey, envId, sessionId, { metadata = {}, type = 'session' } = {}) {
  const res = await server.raw('POST', `/v1/environments/${envId}/work`, {
    key: apiKey,
    body: { data: { type, id: sessionId }, metadata },
  });
  return { status: res.status, item: res.json, res };
}

async function enqueueOk(server, apiKey, envId, sessionId, opts) {
  const r = await enqueue(server, apiKey, envId, sessionId, opts);
  assert.equal(r.status, 201, `enqueue ${sessionId}: ${r.status} ${r.res.text}`);
  return r.item;
}

// Enqueues n items with bounded concurrency; returns the items in enqueue order per lane.
async function enqueueMany(server, apiKey, envId, n, prefix, concurrency = 16) {
  const items = new Array(n);
  let next = 0;
  async function lane() {
    for (;;) {
      const i = next++;
      if (i >= n) return;
      items[i] = await enqueueOk(server, apiKey, envId, `${prefix}_${i}`);
    }
  }
  await Promise.all(Array.from({ length: concurrency }, lane));
  return items;
}

function decodeSecret(secret) {
  assert.equal(typeof secret, 'string');
  assert.match(secret, /^[A-Za-z0-9_-]+$/, 'secret is base64url without padding');
  return JSON.parse(Buffer.from(secret, 'base64url').toString('utf8'));
}

// SPEC §3 object, checked exactly.
function assertWork(w, { secret = false, state, envId } = {}) {
  assert.ok(w && typeof w === 'object', `work item: ${JSON.stringify(w)}`);
  assert.deepEqual(Object.keys(w).sort(), WORK_KEYS, `work keys: ${JSON.stringify(w)}`);
  assert.equal(w.type, 'work');
  assert.match(w.id, WORK_ID_RE);
  assert.match(w.environment_id, ENV_ID_RE);
  if (envId) assert.equal(w.environment_id, envId);
  assert.ok(STATES.includes(w.state), `state ${w.state}`);
  if (state) assert.equal(w.state, state, `state of ${w.id}`);
  assert.ok(w.data && ['session', 'healthcheck'].includes(w.data.type) && typeof w.data.id === 'string');
  assert.ok(w.metadata && typeof w.metadata === 'object' && !Array.isArray(w.metadata));
  for (const v of Object.values(w.metadata)) assert.equal(typeof v, 'string');
  assert.match(w.created_at, TS_RE);
  for (const f of ['acknowledged_at', 'started_at', 'latest_heartbeat_at', 'stop_requested_at', 'stopped_at']) {
    assert.ok(f in w, `${f} omitted`);
    if (w[f] !== null) assert.match(w[f], TS_RE, `${f}: ${w[f]}`);
  }
  if (secret) assert.equal(typeof w.secret, 'string', 'secret on poll');
  else assert.equal(w.secret, null, `secret must be null off poll: ${w.secret}`);
  return w;
}

function assertHeartbeat(hb, { state, lease_extended, ttl_seconds } = {}) {
  assert.deepEqual(Object.keys(hb).sort(), ['last_heartbeat', 'lease_extended', 'state', 'ttl_seconds', 'type']);
  assert.equal(hb.type, 'work_heartbeat');
  if (hb.last_heartbeat !== '') assert.match(hb.last_heartbeat, TS_RE);
  assert.equal(typeof hb.lease_extended, 'boolean');
  assert.equal(typeof hb.ttl_seconds, 'number');
  assert.ok(Number.isInteger(hb.ttl_seconds));
  if (state !== undefined) assert.equal(hb.state, state);
  if (lease_extended !== undefined) assert.equal(hb.lease_extended, lease_extended);
  if (ttl_seconds !== undefined) assert.equal(hb.ttl_seconds, ttl_seconds);
  return hb;
}

// Awaits an SDK call that must fail with `status` (and optionally an SDK class / error code).
async function expectStatus(promise, status, { cls, code, where = '' } = {}) {
  let err;
  try {
    const v = await promise;
    assert.fail(`${where}expected HTTP ${status}, got success: ${JSON.stringify(v)}`);
  } catch (e) {
    if (e instanceof assert.AssertionError) throw e;
    err = e;
  }
  assert.ok(err instanceof SDK.APIError, `${where}not an APIError: ${err && err.stack}`);
  assert.equal(err.status, status, `${where}status: ${err.message}`);
  if (cls) assert.ok(err instanceof cls, `${where}expected ${cls.name}, got ${err.constructor.name}`);
  if (code !== undefined) assert.equal(err.errorCode, code, `${where}errorCode`);
  return err;
}

// Every page of the work list (environment key).
async function listAllWork(worker, envId, limit = 100) {
  const out = [];
  for await (const w of worker.beta.environments.work.list(envId, { limit })) out.push(w);
  return out;
}

// The number of polls the server holds right now (its /metrics).
async function pollsHeld(server) {
  const m = /^environd_polls_held (\d+)$/m.exec(await (await fetch(server.url + '/metrics')).text());
  assert.ok(m, 'no environd_polls_held in /metrics');
  return Number(m[1]);
}

module.exports = {
  SDK,
  Anthropic,
  Work,
  HeartbeatPreconditionFailed,
  EnvironmentArchived,
  TS_RE,
  WORK_ID_RE,
  sleep,
  waitFor,
  selfHosted,
  enqueue,
  enqueueOk,
  enqueueMany,
  decodeSecret,
  assertWork,
  assertHeartbeat,
  expectStatus,
  listAllWork,
  pollsHeld,
};

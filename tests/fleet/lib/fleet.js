// A fleet for the tests: a throwaway PostgreSQL cluster (scripts/pg-cluster), a fresh
// database on it per test file, N `environd serve --db postgresql://…` nodes on that
// database, and the raw HTTP calls of the work queue against any node.
//
// The cluster is the one `make fleet` started (ENVIROND_FLEET_PG_DIR) unless a file asks
// for a private one (the outage test stops and restarts its cluster). Without the
// variable every file starts its own. PostgreSQL that cannot start is a failure, never a
// skip.
'use strict';
const assert = require('node:assert/strict');
const { execFileSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { before, after } = require('node:test');
const { Server, BETA, sleep } = require('../../sdk/lib/server');
const work = require('../../sdk/lib/work');

const ROOT = path.resolve(__dirname, '../../..');
const PG_CLUSTER = path.join(ROOT, 'scripts/pg-cluster');

function pgBin(name) {
  const base = '/usr/lib/postgresql';
  const versions = fs.existsSync(base) ? fs.readdirSync(base).sort((a, b) => Number(a) - Number(b)) : [];
  for (const v of versions.reverse()) {
    const p = path.join(base, v, 'bin', name);
    if (fs.existsSync(p)) return p;
  }
  throw new Error(`PostgreSQL's ${name} is not installed (apt-get install postgresql)`);
}

// PostgreSQL refuses to run as root: pg-cluster runs it as `postgres` then, and so do we.
function asOwner(cmd, args) {
  if (process.getuid && process.getuid() === 0) return ['runuser', ['-u', 'postgres', '--', cmd, ...args]];
  return [cmd, args];
}

class Cluster {
  constructor(dir, owned) {
    this.dir = dir;
    this.owned = owned;
    this.url = execFileSync(PG_CLUSTER, ['url', dir], { encoding: 'utf8' }).trim();
  }

  // A private cluster in a temp dir (readable by `postgres` when we are root).
  static start() {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'environd-fleet-pg-'));
    fs.chmodSync(tmp, 0o755);
    const dir = path.join(tmp, 'cluster');
    execFileSync(PG_CLUSTER, ['start', dir], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
    const c = new Cluster(dir, true);
    c.tmp = tmp;
    return c;
  }

  // The suite's shared cluster, or a private one.
  static shared() {
    const dir = process.env.ENVIROND_FLEET_PG_DIR;
    return dir ? new Cluster(dir, false) : Cluster.start();
  }

  // The URL of database `db` on this cluster.
  dbUrl(db) {
    return this.url.replace(/\/postgres\?/, `/${db}?`);
  }

  psql(sql, db = 'postgres') {
    return execFileSync('psql', [this.dbUrl(db), '-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-c', sql], {
      encoding: 'utf8',
    }).trim();
  }

  // A new, empty database; returns its URL.
  freshDb(tag) {
    const name = `fleet_${tag}_${crypto.randomBytes(4).toString('hex')}`;
    this.psql(`CREATE DATABASE ${name}`);
    return { name, url: this.dbUrl(name) };
  }

  pgCtl(args) {
    const [cmd, a] = asOwner(pgBin('pg_ctl'), ['-D', path.join(this.dir, 'data'), ...args]);
    return execFileSync(cmd, a, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  }

  // A crash: every backend dies at once, nothing is flushed beyond what was committed.
  crash() {
    this.pgCtl(['-m', 'immediate', '-w', '-t', '60', 'stop']);
  }

  restart() {
    this.pgCtl(['-l', path.join(this.dir, 'server.log'), '-w', '-t', '60', 'start']);
  }

  stop() {
    if (!this.owned) return;
    try {
      execFileSync(PG_CLUSTER, ['stop', this.dir], { stdio: 'ignore' });
    } catch {}
    try {
      fs.rmSync(this.tmp, { recursive: true, force: true });
    } catch {}
  }
}

// N nodes on one database. The first creates the schema while the others wait on its
// advisory lock: they are started at once on purpose. Node i's connections carry
// application_name environd-node<i> (a URL parameter wins over environd's own), so a test
// can find them in pg_stat_activity.
async function startNodes(dbUrl, n, { pool = 4, args = [] } = {}) {
  const nodes = Array.from({ length: n }, (_, i) => {
    const s = new Server({ db: `${dbUrl}&application_name=environd-node${i}`, args: ['--db-pool', String(pool), ...args] });
    s.appName = `environd-node${i}`;
    return s;
  });
  await Promise.all(nodes.map((s) => s.start()));
  return nodes;
}

async function stopNodes(nodes) {
  await Promise.all(nodes.map((s) => s.stop().catch(() => {})));
  for (const s of nodes) s.cleanup();
}

// ---- raw calls ---------------------------------------------------------------------

async function call(node, method, pathname, { apiKey, envKey, workerId, body, signal } = {}) {
  const h = { 'anthropic-beta': BETA };
  if (apiKey) h['x-api-key'] = apiKey;
  if (envKey) h.authorization = `Bearer ${envKey}`;
  if (workerId) h['anthropic-worker-id'] = workerId;
  if (body !== undefined) h['content-type'] = 'application/json';
  const res = await fetch(node.url + pathname, {
    method,
    headers: h,
    body: body === undefined ? undefined : JSON.stringify(body),
    signal,
  });
  const text = await res.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {}
  return { status: res.status, headers: res.headers, text, json };
}

async function callOk(node, method, pathname, opts, expect = 200) {
  const r = await call(node, method, pathname, opts);
  assert.equal(r.status, expect, `${method} ${pathname} on ${node.url}: ${r.status} ${r.text}`);
  return r.json;
}

// A self_hosted environment and an environment key, created through `node`.
async function environment(node, apiKey, name) {
  const env = await callOk(node, 'POST', '/v1/environments', { apiKey, body: { name, config: { type: 'self_hosted' } } });
  const key = await callOk(node, 'POST', `/v1/environments/${env.id}/keys`, { apiKey, body: { name: 'w' } });
  return { envId: env.id, envKey: key.key, keyId: key.id };
}

const enqueue = (node, apiKey, envId, sid) =>
  callOk(node, 'POST', `/v1/environments/${envId}/work`, { apiKey, body: { data: { type: 'session', id: sid } } }, 201);

const poll = (node, envKey, envId, workerId, blockMs = 999, opts = {}) =>
  call(node, 'GET', `/v1/environments/${envId}/work/poll?block_ms=${blockMs}`, { envKey, workerId, ...opts });

const stats = (node, apiKey, envId) => callOk(node, 'GET', `/v1/environments/${envId}/work/stats`, { apiKey });

// ack → heartbeat → stop(force), as the worker does; returns the stop's item.
async function finish(node, envKey, envId, workId, { ttl } = {}) {
  const base = `/v1/environments/${envId}/work/${workId}`;
  const acked = await callOk(node, 'POST', `${base}/ack`, { envKey });
  assert.equal(acked.state, 'starting', `ack of ${workId}`);
  const q = `expected_last_heartbeat=NO_HEARTBEAT${ttl ? `&desired_ttl_seconds=${ttl}` : ''}`;
  const hb = await callOk(node, 'POST', `${base}/heartbeat?${q}`, { envKey });
  assert.equal(hb.state, 'active', `heartbeat of ${workId}`);
  assert.equal(hb.lease_extended, true);
  const stopped = await callOk(node, 'POST', `${base}/stop`, { envKey, body: { force: true } });
  assert.equal(stopped.state, 'stopped', `stop of ${workId}`);
  return stopped;
}

// The SDK suites' bounded wait, with a longer default bound: a fleet on a loaded machine.
const waitFor = (fn, opts = {}) => work.waitFor(fn, { timeoutMs: 30000, intervalMs: 50, ...opts });

// A test file's fleet: before its tests, a fresh database (on the shared cluster, or on a
// private one the file may stop and restart), `nodes` nodes on it and an API key; after
// them, all stopped. The returned object is filled in by `before`.
function perFile(tag, { nodes = 3, privateCluster = false } = {}) {
  const fx = {};
  before(async () => {
    fx.cluster = privateCluster ? Cluster.start() : Cluster.shared();
    fx.db = fx.cluster.freshDb(tag);
    fx.nodes = await startNodes(fx.db.url, nodes);
    fx.apiKey = fx.nodes[0].createKey();
  });
  after(async () => {
    if (fx.nodes) await stopNodes(fx.nodes);
    if (fx.cluster) fx.cluster.stop();
  });
  return fx;
}

// One counter of a node's Prometheus text.
async function metric(node, name) {
  const r = await call(node, 'GET', '/metrics');
  assert.equal(r.status, 200);
  const m = r.text.match(new RegExp(`^${name} (\\d+)$`, 'm'));
  assert.ok(m, `${name} in /metrics of ${node.url}`);
  return Number(m[1]);
}

module.exports = {
  Cluster,
  perFile,
  startNodes,
  stopNodes,
  call,
  callOk,
  environment,
  enqueue,
  poll,
  stats,
  finish,
  waitFor,
  metric,
  sleep,
};

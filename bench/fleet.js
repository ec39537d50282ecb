#!/usr/bin/env node
// bench/fleet.js - the parts of bench/fleet that take many concurrent HTTP clients (node,
// no dependencies). Prints one JSON object on stdout.
//
//   fleet.js wake       --urls A,B,C --api-key K --samples N
//       A poll held on one node (seen parked in its environd_polls_held gauge), an item
//       enqueued through another (every ordered pair in turn): the time from the enqueue's
//       request start, and from its response, to the poll's response.
//   fleet.js heartbeats --urls A,B,C --api-key K --workers W --seconds S
//       W items acked (each through node i mod n), then W closed loops of
//       POST …/heartbeat on their own item: heartbeats per second.
//   fleet.js idle       --urls A,B,C --api-key K --pollers P --seconds S --psql URL
//       P workers long-polling (block_ms=999) an empty queue, spread over the nodes; once
//       every poller has been answered once, pg_stat_statements is reset, and after S
//       seconds its calls (in the fleet's database) are divided by the polls answered.
'use strict';
const http = require('node:http');
const { execFileSync } = require('node:child_process');

const BETA = 'managed-agents-2026-04-01';

function parseArgs(argv) {
  const o = { mode: argv[0] };
  for (let i = 1; i < argv.length; i += 2) {
    const k = argv[i];
    if (!k.startsWith('--') || i + 1 >= argv.length) throw new Error(`bad argument ${k}`);
    o[k.slice(2)] = argv[i + 1];
  }
  if (!o.urls || !o['api-key']) throw new Error('--urls and --api-key are required');
  o.urls = o.urls.split(',');
  return o;
}

const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity });

function request(base, method, path, { apiKey, envKey, workerId, body } = {}) {
  return new Promise((resolve, reject) => {
    const u = new URL(base + path);
    const h = { 'anthropic-beta': BETA };
    if (apiKey) h['x-api-key'] = apiKey;
    if (envKey) h.authorization = `Bearer ${envKey}`;
    if (workerId) h['anthropic-worker-id'] = workerId;
    let data;
    if (body !== undefined) {
      data = JSON.stringify(body);
      h['content-type'] = 'application/json';
      h['content-length'] = Buffer.byteLength(data);
    } else if (method === 'POST') h['content-length'] = 0;
    const req = http.request({ host: u.hostname, port: u.port, path: u.pathname + u.search, method, headers: h, agent }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json;
        try {
          json = JSON.parse(text);
        } catch {}
        resolve({ status: res.statusCode, text, json, at: process.hrtime.bigint() });
      });
      res.on('error', reject);
    });
    req.setTimeout(30000, () => req.destroy(new Error(`${method} ${path}: no answer in 30 s`)));
    req.on('error', reject);
    req.end(data);
  });
}

async function ok(base, method, path, opts, expect = 200) {
  const r = await request(base, method, path, opts);
  if (r.status !== expect) throw new Error(`${method} ${base}${path}: expected ${expect}, got ${r.status}: ${r.text.slice(0, 400)}`);
  return r;
}

async function environment(o, tag) {
  const base = o.urls[0];
  const apiKey = o['api-key'];
  const name = `fleet-${tag}-${process.pid}-${Date.now()}`;
  const env = (await ok(base, 'POST', '/v1/environments', { apiKey, body: { name, config: { type: 'self_hosted' } } })).json;
  const key = (await ok(base, 'POST', `/v1/environments/${env.id}/keys`, { apiKey, body: { name: 'bench' } })).json;
  return { envId: env.id, envKey: key.key };
}

function pct(sorted, p) {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

async function polls_held(base) {
  const r = await ok(base, 'GET', '/metrics');
  const m = r.text.match(/^environd_polls_held (\d+)$/m);
  if (!m) throw new Error('no environd_polls_held in /metrics');
  return Number(m[1]);
}

async function wake(o) {
  const samples = Number(o.samples || 300);
  const apiKey = o['api-key'];
  const { envId, envKey } = await environment(o, 'wake');
  const n = o.urls.length;
  if (n < 2) throw new Error('wake needs two nodes or more');
  const pairs = [];
  for (let a = 0; a < n; a++) for (let b = 0; b < n; b++) if (a !== b) pairs.push([a, b]);
  const fromStart = [];
  const fromReply = [];
  for (let i = 0; i < samples; i++) {
    const [a, b] = pairs[i % pairs.length];
    const A = o.urls[a];
    const B = o.urls[b];
    const before = await polls_held(A);
    const pollP = request(A, 'GET', `/v1/environments/${envId}/work/poll?block_ms=999`, { envKey, workerId: `wake-${a}` });
    const deadline = Date.now() + 10000;
    while ((await polls_held(A)) <= before) {
      if (Date.now() > deadline) throw new Error('the poll was not held within 10 s');
    }
    const t0 = process.hrtime.bigint();
    const enq = await ok(B, 'POST', `/v1/environments/${envId}/work`, { apiKey, body: { data: { type: 'session', id: `sesn_wake_${i}` } } }, 201);
    const p = await pollP;
    if (p.status !== 200 || !p.json || p.json.id !== enq.json.id)
      throw new Error(`sample ${i}: the poll on node ${a} answered ${p.status} ${p.text.slice(0, 200)}, not the item enqueued on node ${b}`);
    fromStart.push(Number(p.at - t0) / 1e3);
    fromReply.push(Number(p.at - enq.at) / 1e3);
    await ok(A, 'POST', `/v1/environments/${envId}/work/${p.json.id}/stop`, { envKey, body: { force: true } });
  }
  fromStart.sort((x, y) => x - y);
  fromReply.sort((x, y) => x - y);
  return {
    samples,
    wake_from_enqueue_start_p50_us: pct(fromStart, 50),
    wake_from_enqueue_start_p99_us: pct(fromStart, 99),
    wake_from_enqueue_reply_p50_us: pct(fromReply, 50),
    wake_from_enqueue_reply_p99_us: pct(fromReply, 99),
  };
}

async function heartbeats(o) {
  const workers = Number(o.workers || 16);
  const seconds = Number(o.seconds || 10);
  const apiKey = o['api-key'];
  const { envId, envKey } = await environment(o, 'hb');
  const items = [];
  for (let i = 0; i < workers; i++) {
    const node = o.urls[i % o.urls.length];
    await ok(node, 'POST', `/v1/environments/${envId}/work`, { apiKey, body: { data: { type: 'session', id: `sesn_hb_${i}` } } }, 201);
    const p = await ok(node, 'GET', `/v1/environments/${envId}/work/poll`, { envKey, workerId: `hb-${i}` });
    if (!p.json) throw new Error('heartbeats: the poll found nothing');
    await ok(node, 'POST', `/v1/environments/${envId}/work/${p.json.id}/ack`, { envKey });
    await ok(node, 'POST', `/v1/environments/${envId}/work/${p.json.id}/heartbeat?expected_last_heartbeat=NO_HEARTBEAT`, { envKey });
    items.push([node, p.json.id]);
  }
  let count = 0;
  const t0 = process.hrtime.bigint();
  const end = Date.now() + seconds * 1000;
  await Promise.all(
    items.map(async ([node, id]) => {
      while (Date.now() < end) {
        const r = await ok(node, 'POST', `/v1/environments/${envId}/work/${id}/heartbeat`, { envKey });
        if (!r.json.lease_extended) throw new Error(`heartbeat of ${id}: lease not extended: ${r.text}`);
        count++;
      }
    }),
  );
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  for (const [node, id] of items) await ok(node, 'POST', `/v1/environments/${envId}/work/${id}/stop`, { envKey, body: { force: true } });
  return { workers, heartbeats: count, seconds: wall, heartbeats_per_s: count / wall };
}

function psql(url, sql) {
  return execFileSync('psql', [url, '-X', '-q', '-A', '-t', '-F', '\t', '-v', 'ON_ERROR_STOP=1', '-c', sql], { encoding: 'utf8' }).trim();
}

async function idle(o) {
  const pollers = Number(o.pollers || 1000);
  const seconds = Number(o.seconds || 20);
  const { envId, envKey } = await environment(o, 'idle');
  const db = psql(o.psql, 'SELECT current_database()');
  let stop = false;
  let counting = false;
  let answered = 0;
  const warmed = new Set();
  const loops = Array.from({ length: pollers }, async (_, i) => {
    const node = o.urls[i % o.urls.length];
    while (!stop) {
      const r = await request(node, 'GET', `/v1/environments/${envId}/work/poll?block_ms=999`, { envKey, workerId: `idle-${i}` });
      if (r.status !== 200 || r.json !== null) throw new Error(`idle poll ${i}: ${r.status} ${r.text.slice(0, 200)}`);
      warmed.add(i);
      if (counting && !stop) answered++;
    }
  });
  const deadline = Date.now() + 60000;
  while (warmed.size < pollers) {
    if (Date.now() > deadline) throw new Error(`only ${warmed.size}/${pollers} pollers were answered within 60 s`);
    await new Promise((r) => setTimeout(r, 100));
  }
  psql(o.psql, 'SELECT pg_stat_statements_reset()');
  counting = true;
  const t0 = Date.now();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const polls = answered;
  const rows = psql(
    o.psql,
    `SELECT calls, left(regexp_replace(query, '\\s+', ' ', 'g'), 90) FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid` +
      ` WHERE d.datname = '${db}' ORDER BY calls DESC`,
  );
  const wall = (Date.now() - t0) / 1000;
  stop = true;
  await Promise.all(loops);
  const top = rows ? rows.split('\n').map((l) => l.split('\t')) : [];
  const calls = top.reduce((a, [c]) => a + Number(c), 0);
  return {
    pollers,
    seconds: wall,
    polls_answered: polls,
    polls_per_s: polls / wall,
    statements: calls,
    statements_per_poll: calls / polls,
    top: top.slice(0, 8).map(([c, q]) => ({ calls: Number(c), query: q })),
  };
}

(async () => {
  const o = parseArgs(process.argv.slice(2));
  const fn = { wake, heartbeats, idle }[o.mode];
  if (!fn) throw new Error(`unknown mode ${o.mode}: wake | heartbeats | idle`);
  const res = await fn(o);
  process.stdout.write(JSON.stringify(res) + '\n');
  agent.destroy();
})().catch((e) => {
  process.stderr.write(`bench/fleet.js: ${e.stack || e}\n`);
  process.exit(1);
});

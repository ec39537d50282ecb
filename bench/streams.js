#!/usr/bin/env node
// bench/streams.js - held session event streams: the server's RSS with N streams held, and
// the delay from an event's commit to its arrival on a held stream.
//
//   node bench/streams.js [--environd PATH] [--streams 1000] [--events 500] [--runs 3]
//                         [--serve-args "--connection-memory 16"]
//
// Starts `environd serve` in a temp dir (port 0), creates one self_hosted environment, an
// agent and --streams/10 sessions, and opens --streams SSE streams on them (10 per
// session) over plain node:http connections. RSS is read from /proc/PID/status (VmRSS)
// before the streams open and once they are all held. Then, with every stream held, it
// posts --events events one at a time to one session and times, for each, the arrival of
// its frame on one of that session's streams against the arrival of the POST's reply.
// The reply is sent after the commit and after the wake-up, so "stream − reply" bounds
// the commit-to-arrival delay from above when positive; "stream − send" is the whole
// round trip (commit and fsync included). Medians over --runs runs are printed.
'use strict';
const { spawn, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');

const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : def;
};
const BIN = path.resolve(opt('--environd', path.join(__dirname, '..', 'build', 'environd')));
const STREAMS = Number(opt('--streams', '1000'));
const EVENTS = Number(opt('--events', '500'));
const RUNS = Number(opt('--runs', '3'));
const SERVE_ARGS = (opt('--serve-args', '') || '').split(' ').filter(Boolean);
const BETA = 'managed-agents-2026-04-01';
const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });

function request(port, key, method, p, body) {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : JSON.stringify(body);
    const req = http.request(
      { host: '127.0.0.1', port, method, path: p, agent,
        headers: { 'anthropic-beta': BETA, 'x-api-key': key, ...(data ? { 'content-type': 'application/json' } : {}) } },
      (res) => {
        let buf = '';
        res.on('data', (d) => (buf += d));
        res.on('end', () => resolve({ status: res.statusCode, json: buf ? JSON.parse(buf) : null, at: process.hrtime.bigint() }));
      },
    );
    req.on('error', reject);
    if (data) req.write(data);
    req.end();
  });
}

// One SSE stream on its own connection; onEvent(id, at) for every frame.
function openStream(port, key, sessionId, onEvent) {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, method: 'GET', path: `/v1/sessions/${sessionId}/events/stream`, agent: false,
        headers: { 'anthropic-beta': BETA, 'x-api-key': key } },
      (res) => {
        if (res.statusCode !== 200) return reject(new Error(`stream: ${res.statusCode}`));
        let buf = '';
        res.on('data', (d) => {
          const at = process.hrtime.bigint();
          buf += d;
          let i;
          while ((i = buf.indexOf('\n\n')) >= 0) {
            const frame = buf.slice(0, i);
            buf = buf.slice(i + 2);
            const m = /^id: (.*)$/m.exec(frame);
            if (m) onEvent(m[1], at);
          }
        });
        resolve(req);
      },
    );
    req.on('error', reject);
    req.end();
  });
}

const rssKiB = (pid) => Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);
const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};
const median = (xs) => pct(xs, 50);

async function run() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'environd-bench-streams-'));
  const db = path.join(dir, 'db');
  const portFile = path.join(dir, 'port');
  const srv = spawn(BIN, ['serve', '--listen', '127.0.0.1:0', '--port-file', portFile, '--db', db, '--log-level', 'warn',
    '--max-held-streams', String(STREAMS + 16), ...SERVE_ARGS], { stdio: 'ignore' });
  try {
    for (let i = 0; i < 200 && !fs.existsSync(portFile); i++) await new Promise((r) => setTimeout(r, 25));
    const port = Number(fs.readFileSync(portFile, 'utf8').trim());
    const key = execFileSync(BIN, ['key', 'create', '--db', db], { encoding: 'utf8' }).trim();
    const env = (await request(port, key, 'POST', '/v1/environments', { name: 'b', config: { type: 'self_hosted' } })).json;
    const ag = (await request(port, key, 'POST', '/v1/agents', { name: 'a', model: 'm' })).json;
    const sessions = [];
    for (let i = 0; i < Math.max(1, STREAMS / 10); i++)
      sessions.push((await request(port, key, 'POST', '/v1/sessions', { agent: ag.id, environment_id: env.id })).json.id);
    const rssBefore = rssKiB(srv.pid);
    const arrivals = new Map(); // event id -> first arrival
    const streams = [];
    for (let i = 0; i < STREAMS; i++) {
      const sid = sessions[i % sessions.length];
      streams.push(await openStream(port, key, sid, (id, at) => {
        if (!arrivals.has(id)) arrivals.set(id, at);
      }));
    }
    await new Promise((r) => setTimeout(r, 500));
    const rssHeld = rssKiB(srv.pid);
    const target = sessions[0];
    const vsReply = [], vsSend = [];
    for (let i = 0; i < EVENTS; i++) {
      const sent = process.hrtime.bigint();
      const r = await request(port, key, 'POST', `/v1/sessions/${target}/events`, { events: [{ type: 'user.interrupt' }] });
      const id = r.json.data[0].id;
      for (let spin = 0; !arrivals.has(id) && spin < 20000; spin++) await new Promise((res) => setImmediate(res));
      const at = arrivals.get(id);
      if (at === undefined) throw new Error('an event never arrived on its stream');
      vsReply.push(Number(at - r.at) / 1000);
      vsSend.push(Number(at - sent) / 1000);
    }
    for (const s of streams) s.destroy();
    return { rssBefore, rssHeld, vsReply, vsSend };
  } finally {
    srv.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

(async () => {
  const results = [];
  for (let i = 0; i < RUNS; i++) results.push(await run());
  const m = (f) => median(results.map(f));
  console.log(`serve args: ${SERVE_ARGS.join(' ') || '(defaults)'}`);
  console.log(`streams held: ${STREAMS}, events timed: ${EVENTS} per run, runs: ${RUNS} (medians of runs)`);
  console.log(`RSS before streams: ${(m((r) => r.rssBefore) / 1024).toFixed(1)} MiB; with ${STREAMS} held: ${(m((r) => r.rssHeld) / 1024).toFixed(1)} MiB`);
  console.log(`stream arrival - POST reply (µs): p50 ${m((r) => pct(r.vsReply, 50)).toFixed(0)}, p99 ${m((r) => pct(r.vsReply, 99)).toFixed(0)}`);
  console.log(`stream arrival - POST sent  (µs): p50 ${m((r) => pct(r.vsSend, 50)).toFixed(0)}, p99 ${m((r) => pct(r.vsSend, 99)).toFixed(0)}`);
})().catch((e) => {
  console.error(e);
  process.exit(1);
});

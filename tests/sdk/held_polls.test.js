// 2,000 long polls held at once on one environment: every one is answered, each enqueued
// item goes to exactly one of them, the rest answer null at their deadline.
'use strict';
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const http = require('node:http');
const net = require('node:net');
const { Server, BETA } = require('./lib/server');

const POLLS = 2000;
let server, key, envId, envKey;

function request(method, path, { token, body, headers = {} } = {}, agent) {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : JSON.stringify(body);
    const req = http.request(
      {
        host: '127.0.0.1', port: server.port, method, path, agent,
        headers: {
          'anthropic-beta': BETA, authorization: `Bearer ${token}`, ...headers,
          ...(data ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } : {}),
        },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode, json: JSON.parse(text) }));
      },
    );
    req.on('error', reject);
    if (data) req.write(data);
    req.end();
  });
}

async function heldPolls() {
  const res = await fetch(`${server.url}/metrics`);
  const m = /^environd_polls_held (\d+)$/m.exec(await res.text());
  return Number(m[1]);
}

before(async () => {
  // Sockets are opened before their first request: give them time to send it.
  server = new Server({ args: ['--header-timeout', '120'] });
  await server.start();
  key = server.createKey();
  const env = await request('POST', '/v1/environments', { token: key, body: { name: 'held', config: { type: 'self_hosted' } } });
  envId = env.json.id;
  envKey = (await request('POST', `/v1/environments/${envId}/keys`, { token: key, body: { name: 'w' } })).json.key;
});

after(async () => {
  await server.stop();
  server.cleanup();
});

// One poller per connection, opened before the polls start: a poll is a request written on
// an open socket, so a round of 2,000 polls is one synchronous loop of writes and the
// client adds next to nothing to the time the server takes to park them. block_ms is at
// most 999, so all of them can only be seen held at once if they arrive within that window.
class Poller {
  constructor(i, socket) {
    this.i = i;
    this.socket = socket;
    this.pending = '';
    this.onAnswer = null;
    socket.setEncoding('utf8');
    socket.on('data', (d) => {
      this.pending += d;
      this.parse();
    });
    socket.on('error', (e) => this.settle(e));
    socket.on('close', () => this.settle(new Error(`poller ${i}: connection closed`)));
  }

  settle(err, value) {
    const f = this.onAnswer;
    this.onAnswer = null;
    if (f) f(err, value);
  }

  parse() {
    const end = this.pending.indexOf('\r\n\r\n');
    if (end < 0) return;
    const head = this.pending.slice(0, end);
    const len = Number((/^content-length:\s*(\d+)/im.exec(head) || [])[1]);
    if (!Number.isInteger(len)) return this.settle(new Error(`poller ${this.i}: no content-length in ${head}`));
    if (this.pending.length < end + 4 + len) return;
    const status = Number(head.split(' ')[1]);
    const body = this.pending.slice(end + 4, end + 4 + len);
    this.pending = this.pending.slice(end + 4 + len);
    this.settle(null, { status, json: JSON.parse(body) });
  }

  // Writes one poll; the returned promise is its answer.
  poll() {
    return new Promise((resolve, reject) => {
      this.onAnswer = (err, v) => (err ? reject(err) : resolve(v));
      this.socket.write(
        `GET /v1/environments/${envId}/work/poll?block_ms=999&reclaim_older_than_ms=86400000 HTTP/1.1\r\n` +
          `host: 127.0.0.1\r\nanthropic-beta: ${BETA}\r\nauthorization: Bearer ${envKey}\r\n` +
          `anthropic-worker-id: w${this.i}\r\n\r\n`,
      );
    });
  }
}

function connect(i) {
  return new Promise((resolve, reject) => {
    const s = net.connect(server.port, '127.0.0.1', () => resolve(new Poller(i, s)));
    s.once('error', reject);
  });
}

function threads(pid) {
  return Number(/^Threads:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);
}

test(`${POLLS} concurrent held polls: each poller gets exactly one item, none twice`, async () => {
  const pollers = [];
  for (let i = 0; i < POLLS; i += 100)
    pollers.push(...(await Promise.all(Array.from({ length: 100 }, (_, j) => connect(i + j)))));
  // Rounds: every poller without an item polls, all written in one loop; a round ends when
  // every poll of it answered. Nobody acks, so the reclaim window is a day: under the
  // default 5 s, a slow run would rightly hand an unacked item to a second poller.
  const got = new Array(POLLS).fill(null);
  let stop = false;
  let most = 0;
  let threadsAtMost = 0;
  const rounds = (async () => {
    for (let round = 0; round < 200 && got.includes(null) && !stop; round++) {
      const waiting = pollers.filter((p) => got[p.i] === null);
      const answers = await Promise.all(waiting.map((p) => p.poll()));
      answers.forEach((a, k) => {
        assert.equal(a.status, 200);
        if (a.json !== null) got[waiting[k].i] = a.json.id;
      });
    }
  })();
  // Watch the gauge until the server holds most of them at once (the polls of one round
  // reach their deadline together, so the count dips between rounds); bounded by time.
  let roundsFailed = null;
  rounds.catch((e) => (roundsFailed = e));
  for (const until = Date.now() + 120000; most < POLLS * 0.9 && Date.now() < until && !roundsFailed;) {
    const held = await heldPolls();
    if (held > most) {
      most = held;
      threadsAtMost = threads(server.proc.pid);
    }
    await new Promise((r) => setTimeout(r, 5));
  }
  if (roundsFailed) throw roundsFailed;
  stop = most < POLLS * 0.9;
  assert.ok(most >= POLLS * 0.9, `the server held at most ${most} polls at once`);
  // Held without a thread each (the server runs 32 HTTP threads by default).
  assert.ok(threadsAtMost < 64, `${threadsAtMost} threads held ${most} polls`);
  const created = await Promise.all(
    Array.from({ length: POLLS }, (_, i) =>
      request('POST', `/v1/environments/${envId}/work`, { token: key, body: { data: { type: 'session', id: `sesn_${i}` } } }),
    ),
  );
  const enqueued = new Set(created.map((r) => {
    assert.equal(r.status, 201);
    return r.json.id;
  }));
  await rounds;
  for (const p of pollers) p.socket.destroy();
  assert.ok(got.every((id) => id !== null), 'a poller never received an item');
  assert.equal(new Set(got).size, POLLS, 'an item was delivered twice');
  for (const id of got) assert.ok(enqueued.has(id));
  const stats = await request('GET', `/v1/environments/${envId}/work/stats`, { token: key });
  assert.equal(stats.json.pending, POLLS);
  assert.equal(stats.json.depth, 0);
  assert.equal(stats.json.workers_polling, POLLS);
  assert.equal(await heldPolls(), 0);
});

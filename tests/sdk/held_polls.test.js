// 2,000 long polls held at once on one environment: every one is answered, each enqueued
// item goes to exactly one of them, the rest answer null at their deadline.
'use strict';
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
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
  server = new Server();
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

test(`${POLLS} concurrent held polls: each poller gets exactly one item, none twice`, async () => {
  const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity });
  // Each poller polls (block_ms 999) until it receives one item; a poll that times out
  // answers null and the poller asks again. Bounded: at most 40 polls each. Nobody acks,
  // so the reclaim window is a day: under the default 5 s, a slow run would rightly hand
  // an unacked item to a second poller.
  const pollers = Array.from({ length: POLLS }, async (_, i) => {
    for (let attempt = 0; attempt < 40; attempt++) {
      const a = await request('GET', `/v1/environments/${envId}/work/poll?block_ms=999&reclaim_older_than_ms=86400000`, {
        token: envKey, headers: { 'anthropic-worker-id': `w${i}` },
      }, agent);
      assert.equal(a.status, 200);
      if (a.json !== null) return a.json.id;
    }
    return null;
  });
  // Wait (bounded by time) until the server holds most of them at once, then enqueue while
  // they wait. The pollers time out together, so on a slow machine the count dips at each
  // deadline; the most seen is what proves the server can hold them all.
  let most = 0;
  for (const until = Date.now() + 30000; most < POLLS * 0.9 && Date.now() < until;) {
    most = Math.max(most, await heldPolls());
    await new Promise((r) => setTimeout(r, 5));
  }
  assert.ok(most >= POLLS * 0.9, `the server held at most ${most} polls at once`);
  const created = await Promise.all(
    Array.from({ length: POLLS }, (_, i) =>
      request('POST', `/v1/environments/${envId}/work`, { token: key, body: { data: { type: 'session', id: `sesn_${i}` } } }),
    ),
  );
  const enqueued = new Set(created.map((r) => {
    assert.equal(r.status, 201);
    return r.json.id;
  }));
  const got = await Promise.all(pollers);
  agent.destroy();
  assert.ok(got.every((id) => id !== null), 'a poller never received an item');
  assert.equal(new Set(got).size, POLLS, 'an item was delivered twice');
  for (const id of got) assert.ok(enqueued.has(id));
  const stats = await request('GET', `/v1/environments/${envId}/work/stats`, { token: key });
  assert.equal(stats.json.pending, POLLS);
  assert.equal(stats.json.depth, 0);
  assert.equal(stats.json.workers_polling, POLLS);
  assert.equal(await heldPolls(), 0);
});

// A held poll whose client is gone, seen from outside: the item must not be handed to
// nobody. Two ways a poller disappears while its poll is held:
// - it closes the connection: when the poll is woken the server sees the socket closed
//   and does not claim (no delivery happens at all);
// - the connection dies after the server checked it and before the answer is written
//   (here: the client resets it while the claim's commit is held in its fsync by the test
//   storage layer): the answer cannot be written, and the delivery is undone at once, so
//   the next poller gets the item without waiting for reclaim.
// Raw sockets, because the SDK cannot reset a connection.
'use strict';
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const net = require('node:net');
const { BETA } = require('./lib/server');
const { storageServer } = require('./lib/storage');
const { sqliteOnly } = require('./lib/pg');
const { selfHosted, enqueueOk, waitFor, sleep } = require('./lib/work');

let server, key;

before(async () => {
  // The second test holds a commit open through the test storage layer's fault rules.
  server = storageServer();
  await server.start();
  key = server.createKey();
});

after(async () => {
  await server.stop();
  server.cleanup();
});

async function metrics() {
  const text = await (await fetch(server.url + '/metrics')).text();
  const get = (name) => {
    const m = new RegExp(`^${name} (\\d+)$`, 'm').exec(text);
    assert.ok(m, `no ${name} in /metrics`);
    return Number(m[1]);
  };
  return {
    held: get('environd_polls_held'),
    delivered: get('environd_work_delivered_total'),
    undelivered: get('environd_work_undelivered_total'),
  };
}

// Sends a long poll on a raw connection; returns the socket and what it has seen so far.
async function rawPoll(envId, envKey) {
  const sock = net.connect(server.port, '127.0.0.1');
  sock.setNoDelay(true);
  const got = { data: '', closed: false };
  sock.on('data', (d) => (got.data += d));
  sock.on('error', () => {});
  sock.on('close', () => (got.closed = true));
  await new Promise((resolve, reject) => sock.once('connect', resolve).once('error', reject));
  const sentAt = Date.now();
  sock.write(
    `GET /v1/environments/${envId}/work/poll?block_ms=999 HTTP/1.1\r\nHost: 127.0.0.1\r\n` +
      `x-api-key: ${envKey}\r\nanthropic-beta: ${BETA}\r\n\r\n`,
  );
  return { sock, got, sentAt };
}

test('held polls whose clients left get no delivery; the next poller gets each item at once', async (t) => {
  // Whether the server's HTTP library notices a closed connection by itself when a held
  // poll resumes, before the poll runs again, varies (from one server process to the
  // next, mostly); the server must look itself. So: ten environments at a time, and up to
  // four attempts, each on a freshly started server.
  const N = 10;
  const envs = [];
  for (let i = 0; i < N; i++) envs.push(await selfHosted(server, key, `gone-closed-${i}`));
  let conclusive = 0;
  let handed = 0;
  for (let attempt = 1; attempt <= 6 && conclusive < 4; attempt++) {
    if (attempt > 1) await server.restart();
    const before = await metrics();
    const polls = await Promise.all(envs.map((e) => rawPoll(e.envId, e.envKey)));
    await waitFor(async () => (await metrics()).held >= before.held + N || polls.some((p) => p.got.data !== ''), {
      timeoutMs: 5000,
      intervalMs: 5,
      what: 'the held polls',
    });
    const heldAll = polls.every((p) => p.got.data === '');
    // The clients are done: each closes its side (FIN). The server cannot see that while
    // a poll is held; it must look when the enqueue wakes the poll.
    for (const p of polls) p.sock.end();
    await sleep(50);
    const items = await Promise.all(envs.map((e, i) => enqueueOk(server, key, e.envId, `sesn_closed_${attempt}_${i}`)));
    const enqueuedAt = Date.now();
    await waitFor(() => polls.every((p) => p.got.closed), { timeoutMs: 5000, what: 'the server to let go of the polls' });
    // The enqueues woke the dead polls only if they came well before the polls' deadline.
    // (The wake-up comes before the enqueue's answer; a poll's deadline runs from its arrival.)
    const woken = heldAll && enqueuedAt - Math.min(...polls.map((p) => p.sentAt)) < 900;
    if (!woken) t.diagnostic(`attempt ${attempt} inconclusive: the enqueues came too late to wake the held polls`);
    else {
      conclusive++;
      // By the time the connections are closed the woken polls have run: none may have claimed.
      handed += (await metrics()).delivered - before.delivered;
    }
    for (const [i, e] of envs.entries()) {
      const w = server.client(e.envKey).beta.environments.work; // the port changes at a restart
      // Nobody holds it: the next poller gets it at once, without waiting for reclaim (5 s).
      const got = await w.poll(e.envId, woken ? {} : { reclaim_older_than_ms: 0 });
      if (woken && !(got && got.id === items[i].id)) handed++;
      if (got) await w.stop(got.id, { environment_id: e.envId, force: true });
    }
  }
  assert.ok(conclusive > 0, 'no attempt woke the held polls before their deadline');
  assert.equal(handed, 0, 'items were handed to pollers that had left');
});

test('a delivery whose answer never reached the client is undone at once', {
  skip: sqliteOnly('the claim\'s commit is held in its fsync by the SQLite test VFS'),
}, async (t) => {
  const { envId, envKey, worker } = await selfHosted(server, key, 'gone-reset');
  // Use the key once first: its first use also records last_used_at, a write of its own.
  assert.equal(await worker.beta.environments.work.poll(envId), null);
  const item = await enqueueOk(server, key, envId, 'sesn_reset');
  const before = await metrics();
  // The claim's commit is held in its fsync; meanwhile the client resets the connection,
  // so the answer, written after the commit, cannot reach it.
  server.setFaults('sync wal delay=700 count=1');
  const sock = net.connect(server.port, '127.0.0.1');
  sock.on('error', () => {});
  let answer = '';
  sock.on('data', (d) => (answer += d));
  await new Promise((resolve, reject) => sock.once('connect', resolve).once('error', reject));
  sock.write(
    `GET /v1/environments/${envId}/work/poll HTTP/1.1\r\nHost: 127.0.0.1\r\n` +
      `x-api-key: ${envKey}\r\nanthropic-beta: ${BETA}\r\n\r\n`,
  );
  await waitFor(() => server.stderr.includes('test_vfs: delayed sync call on wal'), { timeoutMs: 5000, what: 'the held claim' });
  sock.resetAndDestroy();
  server.setFaults();
  await waitFor(async () => (await metrics()).delivered > before.delivered, { timeoutMs: 5000, what: 'the claim' });
  assert.equal(answer, '', 'the answer reached the client after all');
  await waitFor(async () => (await metrics()).undelivered > before.undelivered, {
    timeoutMs: 5000,
    what: 'the delivery that never reached its client to be undone',
  });
  // Back in the queue at once: the next poller gets it without reclaim (default 5 s).
  const got = await worker.beta.environments.work.poll(envId);
  assert.ok(got, 'the item is stranded with a client that never got it');
  assert.equal(got.id, item.id);
  await worker.beta.environments.work.stop(got.id, { environment_id: envId, force: true });
});

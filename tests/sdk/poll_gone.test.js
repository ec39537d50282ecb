// A held poll whose client is gone, seen from outside: the item must not be handed to
// nobody. Two ways a poller disappears while its poll is held:
// - it closes the connection: when the poll is woken the server sees the socket closed,
//   does not claim, and passes the wake-up on (no delivery happens at all);
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

// Sends a held poll on a raw connection; resolves once the server reports it held, with
// the socket and whatever the server answered on it so far.
async function heldPoll(envId, envKey) {
  const base = (await metrics()).held;
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
  await waitFor(async () => (await metrics()).held > base || got.data !== '', { timeoutMs: 5000, intervalMs: 5, what: 'the held poll' });
  return { sock, got, sentAt, heldBeforeAnswer: got.data === '' };
}

test('a held poll whose client left gets no delivery; the wake-up goes to the next poller', async (t) => {
  const { envId, envKey, worker } = await selfHosted(server, key, 'gone-closed');
  for (let attempt = 1; ; attempt++) {
    const before = await metrics();
    const gone = await heldPoll(envId, envKey);
    gone.sock.end(); // FIN: the client is gone; the server cannot see it while the poll is held
    await sleep(50);
    const item = await enqueueOk(server, key, envId, `sesn_closed_${attempt}`);
    const enqueuedAt = Date.now();
    // The dead poll was still held when the item came only if this all took well under 999 ms.
    if ((!gone.heldBeforeAnswer || enqueuedAt - gone.sentAt > 700) && attempt < 5) {
      t.diagnostic(`attempt ${attempt} inconclusive: the enqueue came ${enqueuedAt - gone.sentAt} ms after the poll`);
      await waitFor(async () => (await metrics()).held <= before.held, { timeoutMs: 5000, what: 'the dead poll to end' });
      const x = await worker.beta.environments.work.poll(envId, { reclaim_older_than_ms: 0 });
      if (x) await worker.beta.environments.work.stop(x.id, { environment_id: envId, force: true });
      continue;
    }
    await waitFor(async () => (await metrics()).held <= before.held, { timeoutMs: 5000, what: 'the dead poll to end' });
    const after = await metrics();
    assert.equal(after.delivered, before.delivered, 'the item was delivered to a poller that had left');
    // Nobody holds it: the next poller gets it at once, without waiting for reclaim (5 s).
    const got = await worker.beta.environments.work.poll(envId);
    assert.ok(got, 'the item is not claimable: it went to the poller that had left');
    assert.equal(got.id, item.id);
    await worker.beta.environments.work.stop(got.id, { environment_id: envId, force: true });
    return;
  }
});

test('a delivery whose answer never reached the client is undone at once', async (t) => {
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

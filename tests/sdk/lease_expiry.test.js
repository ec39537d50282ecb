// A lease that runs out, at the moment it runs out (T18):
// - a poll held at that moment gets the item when the lease expires, not at its own
//   deadline (the expiry wakes the environment's held polls);
// - a heartbeat that arrives after the expiry but before the server's periodic sweep got to
//   the item meets the item as the expiry left it (back in the queue: 412), never a lease
//   that silently lived on.
// The shortest lease is 10 s, so both wait about that long; the items run side by side.
'use strict';
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { Server } = require('./lib/server');
const { selfHosted, enqueueOk, waitFor, sleep, pollsHeld } = require('./lib/work');

let server, key;

before(async () => {
  server = new Server();
  await server.start();
  key = server.createKey();
});

after(async () => {
  await server.stop();
  server.cleanup();
});

// An item acked and beating on a 10 s lease; returns it with the lease's end (server time, ms).
async function leased(envName, session) {
  const env = await selfHosted(server, key, envName);
  const w = env.worker.beta.environments.work;
  const item = await enqueueOk(server, key, env.envId, session);
  const got = await w.poll(env.envId);
  assert.equal(got.id, item.id);
  await w.ack(item.id, { environment_id: env.envId });
  const hb = await w.heartbeat(item.id, {
    environment_id: env.envId,
    expected_last_heartbeat: 'NO_HEARTBEAT',
    desired_ttl_seconds: 10,
  });
  assert.equal(hb.lease_extended, true);
  assert.equal(hb.ttl_seconds, 10);
  // Whole milliseconds after the server's microsecond timestamp: never before the expiry.
  return { ...env, item, hb, expiresAt: Math.ceil(Date.parse(hb.last_heartbeat) + 10000) + 1 };
}

async function until(ms) {
  while (Date.now() < ms) await sleep(Math.max(1, Math.min(50, ms - Date.now())));
}

test('a poll held when a lease runs out gets the item then, not at its own deadline', async (t) => {
  // Three tries, two seconds apart, so that a slow moment of the machine does not decide.
  const tries = [];
  for (let i = 0; i < 3; i++) {
    tries.push(await leased(`wake-${i}`, `sesn_wake_${i}`));
    if (i < 2) await sleep(2000);
  }
  const results = [];
  for (const x of tries) {
    // Start a poll 300 ms before the lease ends; it is held (nothing is queued) until then.
    await until(x.expiresAt - 300);
    const base = await pollsHeld(server);
    const sentAt = Date.now();
    let answeredAt = 0;
    const pending = x.worker.beta.environments.work.poll(x.envId, { block_ms: 999 }).then((v) => {
      answeredAt = Date.now();
      return v;
    });
    await waitFor(async () => (await pollsHeld(server)) > base || answeredAt, { timeoutMs: 5000, intervalMs: 5, what: 'the held poll' });
    const heldInTime = !answeredAt && Date.now() < x.expiresAt;
    const got = await pending;
    assert.ok(got === null || got.id === x.item.id, 'another item?');
    results.push({ heldInTime, got: !!got, elapsed: answeredAt - sentAt });
    if (got) await x.worker.beta.environments.work.stop(got.id, { environment_id: x.envId, force: true });
  }
  t.diagnostic(JSON.stringify(results));
  const conclusive = results.filter((r) => r.heldInTime);
  assert.ok(conclusive.length > 0, 'no poll was held before its lease ran out (the machine is too slow to tell)');
  // Woken: answered with the item before the poll's own 999 ms deadline.
  assert.ok(
    conclusive.some((r) => r.got && r.elapsed < 950),
    `no held poll was woken by the expiry; each answered at its deadline: ${JSON.stringify(conclusive)}`,
  );
});

test('a heartbeat just after the lease ran out is a 412, even before the sweep requeued the item', async () => {
  // Six items whose leases end 37 ms apart, each beaten again a few ms after its end.
  // The sweeper passes at each expiry, so it usually requeues the item first; a heartbeat
  // that comes first meets the item as the sweep would have left it (the store
  // conformance suite, test_event_after_lease_ran_out, makes that case on its fake clock).
  const items = [];
  for (let i = 0; i < 6; i++) {
    items.push(await leased(`late-${i}`, `sesn_late_${i}`));
    await sleep(37);
  }
  const answers = [];
  for (const x of items) {
    await until(x.expiresAt + 5);
    answers.push(
      x.worker.beta.environments.work
        .heartbeat(x.item.id, { environment_id: x.envId, expected_last_heartbeat: x.hb.last_heartbeat, desired_ttl_seconds: 10 })
        .then(
          (hb) => ({ status: 200, hb }),
          (e) => ({ status: e.status, e }),
        ),
    );
  }
  const got = await Promise.all(answers);
  got.forEach((r, i) => {
    assert.equal(r.status, 412, `item ${i}: a heartbeat after the lease ran out renewed it: ${JSON.stringify(r.hb)}`);
    const cur = r.e.error.error.details.current_state;
    assert.equal(cur.state, 'queued', `item ${i}`);
    assert.equal(cur.last_heartbeat, null);
  });
  // Each is back in the queue for the next poller.
  for (const x of items) {
    const next = await x.worker.beta.environments.work.poll(x.envId, { block_ms: 999 });
    assert.ok(next && next.id === x.item.id, 'the expired item is not back in the queue');
    await x.worker.beta.environments.work.stop(next.id, { environment_id: x.envId, force: true });
  }
});

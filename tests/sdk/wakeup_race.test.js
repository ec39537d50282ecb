// The lost wake-up, seen from outside: a poll that finds nothing and is about to be held
// while an item arrives for its environment must still get that item at once. The window
// (between the poll's empty claim and its parking) is short, so many polls race many
// enqueues; a poll answered at its own deadline although its item was enqueued long
// before missed its wake-up. (The guard itself is unit-tested in test_waiters_guard.c.)
'use strict';
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { Server } = require('./lib/server');
const { selfHosted, enqueueOk, sleep } = require('./lib/work');

const ROUNDS_MS = 15000;
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

test('a poll racing an enqueue never sleeps through the wake-up', async (t) => {
  const envs = [];
  for (let i = 0; i < 8; i++) envs.push(await selfHosted(server, key, `race-${i}`));
  const missed = [];
  let pairs = 0;
  const t0 = Date.now();
  for (let round = 0; Date.now() - t0 < ROUNDS_MS && missed.length === 0; round++) {
    await Promise.all(
      envs.map(async (e, i) => {
        const w = e.worker.beta.environments.work;
        const sentAt = Date.now();
        const pending = w.poll(e.envId, { block_ms: 999 }).then((v) => ({ v, at: Date.now() }));
        await sleep(Math.random() * 4);
        const item = await enqueueOk(server, key, e.envId, `race_${round}_${i}`);
        const enqueuedAt = Date.now();
        const { v: got, at } = await pending;
        pairs++;
        if (got) {
          assert.equal(got.id, item.id);
          await w.stop(got.id, { environment_id: e.envId, force: true });
        } else {
          // The poll ran out before the item was there (a slow moment): take it now.
          const again = await w.poll(e.envId);
          assert.ok(again && again.id === item.id, 'the item vanished');
          await w.stop(again.id, { environment_id: e.envId, force: true });
          return;
        }
        // Held to its deadline with the item enqueued (and its wake-up sent) long before: a
        // missed wake-up, not a slow fsync (that would take most of a second).
        if (at - sentAt >= 990 && at - enqueuedAt > 800)
          missed.push({ round, env: i, pollMs: at - sentAt, afterEnqueueMs: at - enqueuedAt });
      }),
    );
  }
  t.diagnostic(`${pairs} poll/enqueue races`);
  assert.deepEqual(missed, [], 'a held poll slept through the wake-up of an item enqueued while it was parking');
});

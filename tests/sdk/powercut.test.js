// Power cut: the server runs on the test storage layer (`environd serve --test-vfs powercut`), which
// keeps every write that was not followed by an fsync apart and throws it away at a
// simulated power cut (SIGUSR2): the files are left exactly as a machine that lost power
// would find them. kill -9 cannot show a missing fsync (the page cache survives it); this
// can. After the cut the server restarts on the same files and everything it acknowledged
// (every 2xx this test received) must be there.
'use strict';
const { test, after } = require('node:test');
const assert = require('node:assert/strict');
const { Server } = require('./lib/server');
const { selfHosted, waitFor } = require('./lib/work');
const { storageServer, firstKey, powerCut } = require('./lib/storage');
const { sqliteOnly } = require('./lib/pg');

// The power cut throws away what SQLite wrote to its files since their last fsync.
const skip = sqliteOnly('the power cut is simulated by the SQLite test VFS');

const servers = [];

after(async () => {
  for (const s of servers) await s.stop();
  for (const s of servers) s.cleanup();
});

test('every write acknowledged before a power cut is there after it', { skip }, async (t) => {
  const server = storageServer();
  servers.push(server);
  await server.start();
  assert.match(server.stderr, /test_vfs: powercut storage layer installed/);
  const key = firstKey(server);
  const api = server.client(key);
  const { envId, envKey, worker } = await selfHosted(server, key, 'pc-queue');

  // Acknowledged writes, by kind. A request whose answer did not arrive is unknown.
  const envs = new Map(); // id → the object the create returned
  const items = new Map(); // work id → the enqueue reply
  const acked = new Set(); // work ids whose ack was answered 2xx
  let stop = false;
  let cutSent = false;
  const tolerate = (e) => {
    if (!cutSent) throw e; // before the cut every request must succeed
  };

  async function envLane(lane) {
    for (let i = 0; !stop; i++) {
      try {
        const e = await api.beta.environments.create({
          name: `pc-${lane}-${i}`,
          description: `lane ${lane} #${i} `.repeat(20),
          metadata: { lane: String(lane), i: String(i) },
        });
        envs.set(e.id, e);
      } catch (e) {
        return tolerate(e);
      }
    }
  }
  async function enqueueLane(lane) {
    for (let i = 0; !stop; i++) {
      const r = await server
        .raw('POST', `/v1/environments/${envId}/work`, { key, body: { data: { type: 'session', id: `s-${lane}-${i}` } } })
        .catch(tolerate);
      if (!r) return;
      if (r.status !== 201) return tolerate(new Error(`enqueue: ${r.status} ${r.text}`));
      items.set(r.json.id, r.json);
    }
  }
  async function ackLane() {
    while (!stop) {
      try {
        const got = await worker.beta.environments.work.poll(envId, { block_ms: 50 });
        if (!got) continue;
        await worker.beta.environments.work.ack(got.id, { environment_id: envId });
        acked.add(got.id);
      } catch (e) {
        return tolerate(e);
      }
    }
  }

  const lanes = [envLane(0), envLane(1), envLane(2), enqueueLane(0), enqueueLane(1), ackLane(), ackLane()];
  await waitFor(() => envs.size >= 60 && items.size >= 60 && acked.size >= 20, {
    timeoutMs: 60000,
    what: 'writes under load',
  });
  cutSent = true;
  const lost = await powerCut(server);
  stop = true;
  await Promise.all(lanes);
  t.diagnostic(
    `cut after ${envs.size} environments, ${items.size} items, ${acked.size} acks acknowledged; ` +
      `${lost.lost} unsynced writes in ${lost.files} files thrown away`,
  );

  // The same files, the real storage layer.
  const again = new Server({ dir: server.dir, db: server.db });
  servers.push(again);
  await again.start();
  assert.ok(!/first start/.test(again.stdout), `the store came back empty: a new key was minted\n${again.stdout}`);
  const api2 = again.client(key);
  for (const [id, e] of envs) assert.deepEqual(await api2.beta.environments.retrieve(id), e, `environment ${id}`);
  // Nothing acknowledged is missing from the lists either (every page is read back).
  const listed = new Set();
  for await (const e of api2.beta.environments.list({ limit: 100 })) listed.add(e.id);
  for (const id of envs.keys()) assert.ok(listed.has(id), `environment ${id} missing from the list`);
  for (const [id, w] of items) {
    const got = await api2.beta.environments.work.retrieve(id, { environment_id: envId });
    assert.equal(got.data.id, w.data.id, `work ${id}`);
  }
  // An acked item stays acked (an item whose enqueue answer the cut swallowed counts too).
  for (const id of acked) {
    const got = await api2.beta.environments.work.retrieve(id, { environment_id: envId });
    assert.equal(got.state, 'starting', `work ${id} was acked before the cut, now ${got.state}`);
  }
  // The store is whole: it takes new writes and the environment key still works.
  const more = await api2.beta.environments.create({ name: 'pc-after' });
  assert.equal((await api2.beta.environments.retrieve(more.id)).name, 'pc-after');
  assert.ok((await again.client(envKey).beta.environments.work.list(envId, { limit: 1 })).data);
});

test('a power cut with nothing in flight loses nothing acknowledged, twice over', { skip }, async () => {
  const server = storageServer();
  servers.push(server);
  await server.start();
  const key = firstKey(server);
  const created = [];
  for (let i = 0; i < 20; i++) created.push(await server.client(key).beta.environments.create({ name: `quiet-${i}` }));
  await powerCut(server);

  // Restart on the test layer again, write more, cut again.
  const second = storageServer({ dir: server.dir, db: server.db });
  servers.push(second);
  await second.start();
  for (const e of created) assert.deepEqual(await second.client(key).beta.environments.retrieve(e.id), e);
  const updated = await second.client(key).beta.environments.update(created[0].id, { metadata: { after: 'cut' } });
  await powerCut(second);

  const third = new Server({ dir: server.dir, db: server.db });
  servers.push(third);
  await third.start();
  const api = third.client(key);
  assert.deepEqual(await api.beta.environments.retrieve(created[0].id), updated);
  for (const e of created.slice(1)) assert.deepEqual(await api.beta.environments.retrieve(e.id), e);
});

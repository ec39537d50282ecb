// Storage faults inside SQLite: the server runs on the test storage layer
// (`environd serve --test-vfs powercut`) with a control file of fault rules, so writes, fsyncs and
// reads fail, or the disk is full, at the level SQLite itself sees. Unlike the store fault
// seam (faults.test.js), which fails calls before they reach SQLite, this runs SQLite's own
// error paths: a commit that cannot be written or synced, a group that SQLite rolls back
// in the middle, a checkpoint that fails. Every request of a failed group gets a 503
// overloaded_error with retry-after, nothing of it is visible afterwards, and the server
// serves again as soon as the fault clears.
'use strict';
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { waitFor } = require('./lib/work');
const { storageServer, firstKey } = require('./lib/storage');
const { PG, sqliteOnly } = require('./lib/pg');

// Every test here fails SQLite's own file I/O through its test VFS.
const skip = sqliteOnly('faults injected by the SQLite test VFS');

let server, key;

function setFaults(...rules) {
  server.setFaults(...rules);
}

function injected(what, line = `test_vfs: injected ${what}`) {
  return server.stderr.split('\n').filter((l) => l === line).length;
}

before(async () => {
  if (PG) return;
  server = storageServer();
  await server.start();
  key = firstKey(server);
});

after(async () => {
  if (PG) return;
  await server.stop();
  server.cleanup();
});

function create(name) {
  return server.raw('POST', '/v1/environments', { key, body: { name, metadata: { probe: name } } });
}

function assertUnavailable(r, where) {
  assert.equal(r.status, 503, `${where}: ${r.status} ${r.text}`);
  assert.equal(r.json.type, 'error', where);
  assert.equal(r.json.error.type, 'overloaded_error', where);
  assert.ok(r.json.error.message.length > 0, where);
  assert.equal(r.headers.get('retry-after'), '1', `${where}: a 503 without retry-after`);
  assert.match(r.headers.get('request-id') || '', /^req_[0-9A-Za-z]{24}$/);
}

async function names() {
  const out = new Set();
  for await (const e of server.client(key).beta.environments.list({ limit: 100, include_archived: true })) out.add(e.name);
  return out;
}

// A burst of concurrent creates under `rules`: every one is a 503; then the fault clears,
// nothing of the burst is visible, and the same names can be created (no half-written row
// holds them).
async function burstFails(tag, rules, fault) {
  const before = injected(fault);
  setFaults(...rules);
  const burst = Array.from({ length: 12 }, (_, i) => `${tag}-${i}`);
  const answers = await Promise.all(burst.map(create));
  setFaults();
  answers.forEach((r, i) => assertUnavailable(r, burst[i]));
  // stderr arrives on its own pipe, maybe after the answers: wait for it (bounded).
  await waitFor(() => injected(fault) > before, { timeoutMs: 5000, what: `the layer to report "${fault}"` });
  const seen = await names();
  for (const n of burst) assert.ok(!seen.has(n), `${n} is visible after its commit failed`);
  const again = await Promise.all(burst.map(create));
  again.forEach((r, i) => assert.equal(r.status, 200, `${burst[i]} after the fault: ${r.status} ${r.text}`));
  const readyz = await server.raw('GET', '/readyz');
  assert.equal(readyz.status, 200);
}

test('a commit whose log write fails: every request of the group is a 503, nothing is visible', { skip }, async () => {
  await burstFails('wal-write', ['write wal'], 'write fault on wal');
});

test('a full disk at commit: 503 with retry-after, nothing is visible', { skip }, async () => {
  await burstFails('wal-full', ['write wal full'], 'write fault on wal');
});

test('a commit whose fsync fails: 503, nothing is visible', { skip }, async () => {
  await burstFails('wal-sync', ['sync wal'], 'sync fault on wal');
});

test('a group that SQLite rolls back in the middle: every request of it is a 503, nothing of it is visible', { skip }, async (t) => {
  // A clean restart empties the writer's page cache, so the next environment write reads
  // its pages from the database file. One write (an environment key) is held in its
  // commit's fsync while twelve creates queue behind it; they then run as one group whose
  // first INSERT meets a failing page read, and SQLite rolls the whole transaction back.
  const aborted = () => server.stderr.split('\n').filter((l) => /store_group_aborted/.test(l)).length;
  const { id: envId } = await server.client(key).beta.environments.create({ name: 'held-group', config: { type: 'self_hosted' } });
  for (let attempt = 1; ; attempt++) {
    await server.restart();
    setFaults('sync wal delay=1500 count=1');
    let heldAnswered = false;
    const held = server
      .raw('POST', `/v1/environments/${envId}/keys`, { key, body: { name: `held-${attempt}` } })
      .finally(() => (heldAnswered = true));
    await waitFor(() => injected('delayed sync call on wal', 'test_vfs: delayed sync call on wal') > 0, {
      timeoutMs: 10000,
      what: 'the held commit',
    });
    setFaults('read writer-db count=1');
    const burst = Array.from({ length: 12 }, (_, i) => `group-${attempt}-${i}`);
    const pending = burst.map(create);
    const conclusive = !heldAnswered; // the burst was sent while the group before it was still committing
    assert.equal((await held).status, 200);
    const answers = await Promise.all(pending);
    setFaults();
    // Sound whatever the grouping: a 2xx is there, a 503 is not, nothing else happens.
    const seen = await names();
    answers.forEach((r, i) => {
      if (r.status === 200) return assert.ok(seen.has(burst[i]), `${burst[i]} was acknowledged but is missing`);
      assertUnavailable(r, burst[i]);
      assert.ok(!seen.has(burst[i]), `${burst[i]} was refused (503) but is visible`);
    });
    await waitFor(() => injected('read fault on writer-db') > 0, { timeoutMs: 5000, what: 'the injected read fault' });
    const failed = answers.filter((r) => r.status === 503).length;
    if ((!conclusive || failed < 2) && attempt < 4) {
      t.diagnostic(`attempt ${attempt} inconclusive: ${failed} of 12 in the failed group (held commit already answered: ${!conclusive})`);
      continue;
    }
    assert.ok(failed >= 2, `the failed group held ${failed} of the 12 creates in every attempt`);
    await waitFor(() => aborted() > 0, { timeoutMs: 5000, what: 'a group rolled back by SQLite (store_group_aborted)' });
    // The server serves again at once.
    const again = await Promise.all(burst.filter((n) => !seen.has(n)).map(create));
    again.forEach((r) => assert.equal(r.status, 200, r.text));
    return;
  }
});

test('failed checkpoints lose nothing: commits still succeed, and a restart recovers from the log', { skip }, async () => {
  // Every write to the database file fails: only checkpoints write it. SQLite checkpoints on
  // its own once the log passes 1000 pages, and when the last connection closes.
  const made = [];
  setFaults('write db');
  const before = injected('write fault on db');
  const big = 'x'.repeat(2000);
  for (let round = 0; injected('write fault on db') === before; round++) {
    assert.ok(round < 100, 'no checkpoint was attempted after 1,600 commits');
    const batch = await Promise.all(
      Array.from({ length: 16 }, (_, i) =>
        server.client(key).beta.environments.create({ name: `ckpt-${round}-${i}`, description: big, metadata: { m: big.slice(0, 500) } }),
      ),
    );
    made.push(...batch);
  }
  // The checkpoint at shutdown fails as well; the log is all there is.
  await server.stop();
  setFaults();
  await server.start();
  const api = server.client(key);
  for (const e of made) assert.deepEqual(await api.beta.environments.retrieve(e.id), e);
  const seen = await names();
  for (const e of made) assert.ok(seen.has(e.name), `${e.name} missing from the list`);
  await waitFor(async () => (await server.raw('GET', '/readyz')).status === 200, { what: 'ready' });
});

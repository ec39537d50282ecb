// Cross-node wake-ups (LISTEN/NOTIFY): a poll held on one node answers at once when the
// item is enqueued through another; after the notification connection drops, a poll held
// through the gap is not left waiting and later enqueues still wake across nodes.
'use strict';
const { test } = require('node:test');
const assert = require('node:assert/strict');
const F = require('./lib/fleet');

const BLOCK_MS = 999;
const fx = F.perFile('wake');

// Holds a poll on `holder` until it is parked there, then enqueues through `producer`.
// Returns the poll's answer and the time from the enqueue's request to the poll's answer.
async function crossWake(holder, producer, envId, envKey, sid) {
  const held = F.metric(holder, 'environd_polls_held');
  const before = await held;
  const started = Date.now();
  const pollP = F.poll(holder, envKey, envId, `w-${sid}`, BLOCK_MS).then((r) => ({ r, at: Date.now() }));
  await F.waitFor(async () => (await F.metric(holder, 'environd_polls_held')) > before, {
    timeoutMs: 10000,
    intervalMs: 5,
    what: 'the poll to be held',
  });
  const sent = Date.now();
  const item = await F.enqueue(producer, fx.apiKey, envId, sid);
  const { r, at } = await pollP;
  return { r, item, afterEnqueue: at - sent, total: at - started };
}

test('a poll held on one node answers at once with an item enqueued on another (every pair of nodes)', async () => {
  const { envId, envKey } = await F.environment(fx.nodes[0], fx.apiKey, 'wake-pairs');
  let n = 0;
  for (let a = 0; a < 3; a++) {
    for (let b = 0; b < 3; b++) {
      if (a === b) continue;
      const { r, item, afterEnqueue } = await crossWake(fx.nodes[a], fx.nodes[b], envId, envKey, `sesn_pair_${n++}`);
      assert.equal(r.status, 200, r.text);
      assert.ok(r.json, `poll on node ${a} answered null for an item enqueued on node ${b}`);
      assert.equal(r.json.id, item.id, `poll on node ${a} answered with the item enqueued on node ${b}`);
      assert.ok(afterEnqueue < BLOCK_MS / 2, `poll on node ${a} answered ${afterEnqueue} ms after the enqueue on node ${b} (block ${BLOCK_MS} ms)`);
      await F.finish(fx.nodes[a], envKey, envId, item.id);
    }
  }
});

// The bus's connections (of one node, or of all): the LISTEN, the NOTIFYs, the clock
// reads and the sweeper lock's tries are theirs alone.
function busPids(node) {
  const out = fx.cluster.psql(
    `SELECT pid FROM pg_stat_activity WHERE datname = '${fx.db.name}' AND pid <> pg_backend_pid()` +
      (node ? ` AND application_name = '${node.appName}'` : '') +
      ` AND (query LIKE 'LISTEN%' OR query LIKE '%pg_notify(%' OR query LIKE '%clock_timestamp()%' OR query LIKE '%pg_try_advisory_lock(%')`,
  );
  return out ? out.split('\n').map(Number).sort() : [];
}

const terminate = (pids) =>
  fx.cluster.psql(`SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid IN (${pids.join(',')})) t`);

test("a poll held through its node's lost notification connection is answered when the node is back", async () => {
  // A fourth node D that logs in as a role of its own: with the role's LOGIN taken away,
  // D's pool keeps its connections but D cannot LISTEN again until it is given back.
  const role = `fleet_d_${process.pid}`;
  fx.cluster.psql(`CREATE ROLE ${role} LOGIN SUPERUSER`);
  const [D] = await F.startNodes(fx.db.url.replace(/\/\/[^@]+@/, `//${role}@`), 1);
  const dPids = () => {
    const out = fx.cluster.psql(
      `SELECT pid FROM pg_stat_activity WHERE datname = '${fx.db.name}' AND usename = '${role}'` +
        ` AND (query LIKE 'LISTEN%' OR query LIKE '%pg_notify(%' OR query LIKE '%clock_timestamp()%' OR query LIKE '%pg_try_advisory_lock(%')`,
    );
    return out ? out.split('\n').map(Number) : [];
  };
  try {
    const { envId, envKey } = await F.environment(fx.nodes[0], fx.apiKey, 'wake-gap');
    const B = fx.nodes[1];
    // The notification B publishes while D is away is lost to D: only D's wake of
    // everything once it is back answers the poll before its block runs out. An attempt
    // answered only at the deadline (a slow machine) is tried again; a node that does not
    // wake its held polls after a reconnect fails every attempt.
    const outcomes = [];
    let woken = false;
    for (let attempt = 0; attempt < 5 && !woken; attempt++) {
      const old = await F.waitFor(() => (dPids().length === 1 ? dPids() : null), { what: "D's LISTEN connection" });
      const before = await F.metric(D, 'environd_polls_held');
      const pollP = F.poll(D, envKey, envId, 'w-gap', BLOCK_MS).then((r) => ({ r, at: Date.now() }));
      await F.waitFor(async () => (await F.metric(D, 'environd_polls_held')) > before, { intervalMs: 5, what: 'the poll to be held' });
      const t0 = Date.now();
      fx.cluster.psql(`ALTER ROLE ${role} NOLOGIN`);
      assert.equal(terminate(old), '1');
      const item = await F.enqueue(B, fx.apiKey, envId, `sesn_gap_${attempt}`);
      fx.cluster.psql(`ALTER ROLE ${role} LOGIN`);
      const { r, at } = await pollP;
      assert.equal(r.status, 200, r.text);
      // A held poll looks at the queue again at its deadline: the item is there either way.
      const got = r.json || (await F.poll(D, envKey, envId, 'w-gap')).json;
      assert.equal(got && got.id, item.id);
      await F.finish(D, envKey, envId, item.id);
      woken = Boolean(r.json) && at - t0 < BLOCK_MS * 0.75;
      outcomes.push(`${r.json ? 'item' : 'null'} after ${at - t0} ms`);
      await F.waitFor(() => {
        const now = dPids();
        return now.length === 1 && !old.includes(now[0]);
      }, { what: "D's new LISTEN connection" });
    }
    assert.ok(woken, `the held poll was never woken by its node's reconnect: ${outcomes.join('; ')}`);
  } finally {
    await F.stopNodes([D]);
    fx.cluster.psql(`ALTER ROLE ${role} LOGIN`);
    fx.cluster.psql(`DROP ROLE ${role}`);
  }
});

test('after the notification connections are terminated, held polls are woken and cross-node wakes resume', async () => {
  const { envId, envKey } = await F.environment(fx.nodes[0], fx.apiKey, 'wake-bus');
  const old = await F.waitFor(() => (busPids().length === 3 ? busPids() : null), { what: "the three nodes' LISTEN connections" });

  // A poll held on A through the drop of every node's connection: it is answered with the
  // item enqueued on B meanwhile, within its block.
  const A = fx.nodes[0];
  const B = fx.nodes[1];
  const before = await F.metric(A, 'environd_polls_held');
  const pollP = F.poll(A, envKey, envId, 'w-all', BLOCK_MS);
  await F.waitFor(async () => (await F.metric(A, 'environd_polls_held')) > before, { intervalMs: 5, what: 'the poll to be held' });
  assert.equal(terminate(old), '3');
  const item = await F.enqueue(B, fx.apiKey, envId, 'sesn_all');
  const r = await pollP;
  assert.equal(r.status, 200, r.text);
  assert.ok(r.json, 'the poll held through the dropped connections answered null: it was left waiting');
  assert.equal(r.json.id, item.id);
  await F.finish(A, envKey, envId, item.id);

  // Every node is back on a new connection; wakes cross fx.nodes again, promptly.
  await F.waitFor(() => {
    const now = busPids();
    return now.length === 3 && now.every((p) => !old.includes(p));
  }, { what: 'three new LISTEN connections' });
  for (const [a, b] of [[0, 1], [1, 2], [2, 0]]) {
    const { r: r2, item: it, afterEnqueue } = await crossWake(fx.nodes[a], fx.nodes[b], envId, envKey, `sesn_after_${a}${b}`);
    assert.equal(r2.status, 200, r2.text);
    assert.ok(r2.json, `after the reconnect, poll on node ${a} answered null`);
    assert.equal(r2.json.id, it.id);
    assert.ok(afterEnqueue < BLOCK_MS / 2, `after the reconnect, poll on node ${a} answered ${afterEnqueue} ms after the enqueue on node ${b}`);
    await F.finish(fx.nodes[a], envKey, envId, it.id);
  }
});

// 16 pollers spread over 3 nodes drain 2,000 items while producers on every node enqueue
// them: each item is delivered exactly once, counted by the workers, by the nodes'
// delivery counters and by the database's own delivery count per item.
'use strict';
const { test } = require('node:test');
const assert = require('node:assert/strict');
const F = require('./lib/fleet');

const ITEMS = 2000;
const POLLERS = 16;
const PRODUCERS = 6;
const fx = F.perFile('drain');

test(`${POLLERS} pollers over 3 nodes drain ${ITEMS} items, each delivered exactly once`, async () => {
  const { envId, envKey } = await F.environment(fx.nodes[1], fx.apiKey, 'drain');
  const counters = async (name) => (await Promise.all(fx.nodes.map((n) => F.metric(n, name)))).reduce((a, b) => a + b, 0);
  const delivered0 = await counters('environd_work_delivered_total');
  const undelivered0 = await counters('environd_work_undelivered_total');

  const enqueued = new Map(); // work id → session id
  let next = 0;
  const producer = async (p) => {
    for (;;) {
      const i = next++;
      if (i >= ITEMS) return;
      const item = await F.enqueue(fx.nodes[(p + i) % 3], fx.apiKey, envId, `sesn_drain_${i}`);
      enqueued.set(item.id, item.data.id);
    }
  };

  const deliveries = new Map(); // work id → times a worker got it
  const byNode = [0, 0, 0];
  let finished = 0;
  const deadline = Date.now() + 240000;
  const poller = async (w) => {
    const node = fx.nodes[w % 3];
    while (finished < ITEMS) {
      assert.ok(Date.now() < deadline, `drain still at ${finished}/${ITEMS} after 240 s`);
      const r = await F.poll(node, envKey, envId, `drainer-${w}`);
      assert.equal(r.status, 200, `poll: ${r.text}`);
      if (!r.json) continue;
      deliveries.set(r.json.id, (deliveries.get(r.json.id) || 0) + 1);
      byNode[w % 3]++;
      await F.finish(node, envKey, envId, r.json.id);
      finished++;
    }
  };

  await Promise.all([
    ...Array.from({ length: PRODUCERS }, (_, p) => producer(p)),
    ...Array.from({ length: POLLERS }, (_, w) => poller(w)),
  ]);

  // The workers' view.
  assert.equal(enqueued.size, ITEMS);
  const dups = [...deliveries].filter(([, n]) => n > 1);
  assert.deepEqual(dups.slice(0, 5), [], `${dups.length} items delivered more than once`);
  const missing = [...enqueued.keys()].filter((id) => !deliveries.has(id));
  assert.deepEqual(missing.slice(0, 5), [], `${missing.length} items never delivered`);
  assert.equal(deliveries.size, ITEMS);
  for (const [i, n] of byNode.entries()) assert.ok(n > 0, `node ${i} delivered nothing: ${byNode}`);

  // The nodes' view: deliveries by poll, less those undone, over the fleet.
  const delivered = (await counters('environd_work_delivered_total')) - delivered0;
  const undelivered = (await counters('environd_work_undelivered_total')) - undelivered0;
  assert.equal(delivered - undelivered, ITEMS, `fx.nodes counted ${delivered} deliveries, ${undelivered} undone`);

  // The database's view: one delivery per item, every item stopped.
  const row = fx.cluster.psql(
    `SELECT count(*), min(delivery_count), max(delivery_count), count(*) FILTER (WHERE state = 4) FROM work WHERE environment_id = '${envId}'`,
    fx.db.name,
  );
  assert.equal(row, `${ITEMS}|1|1|${ITEMS}`, 'count|min deliveries|max deliveries|stopped');

  for (const n of fx.nodes) {
    const s = await F.stats(n, fx.apiKey, envId);
    assert.equal(s.depth, 0, `depth on ${n.url}`);
    assert.equal(s.pending, 0, `pending on ${n.url}`);
  }
});

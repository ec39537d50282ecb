// Durability: kill -9 and SIGTERM restarts on the same database lose nothing that was
// acknowledged (SPEC §2 objects; DESIGN "Durability").
'use strict';
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { Server } = require('./lib/server');
const { SDK, expectError, expectNotFound, listAll, assertEnvironmentShape } = require('./lib/helpers');

let server;
let key;
let otherKey; // same org, another account
const live = new Map(); // id → { obj, ws }
const deleted = []; // { id, name, ws }

const c = () => server.client(key);
const wsParams = (ws) => (ws === 'default' ? {} : { workspace_id: ws });

function paramsFor(i) {
  const metadata = { i: String(i), kind: ['plain', 'selfhosted', 'limited', 'packages', 'side'][i % 5] };
  if (i % 2 === 0) metadata['ключ-' + i] = 'значение ✓ '.repeat(1 + (i % 9));
  const p = { name: `dur-${String(i).padStart(2, '0')}`, metadata };
  switch (i % 5) {
    case 0:
      break;
    case 1:
      p.config = { type: 'self_hosted' };
      p.description = `self hosted #${i}`;
      break;
    case 2:
      p.config = {
        type: 'cloud',
        networking: {
          type: 'limited',
          allowed_hosts: [`h${i}.example.com`, '*.example.org'],
          allow_mcp_servers: i % 4 === 0,
          allow_package_managers: true,
        },
        packages: { pip: [`pkg${i}==1.0`] },
      };
      break;
    case 3:
      p.config = {
        type: 'cloud',
        packages: { apt: ['curl'], cargo: ['serde'], gem: ['rake'], go: ['golang.org/x/tools'], npm: ['zod'], pip: ['numpy'] },
      };
      p.scope = 'account';
      p.description = '';
      break;
    case 4:
      p.workspace_id = 'side';
      p.description = 'd'.repeat(2048);
      break;
  }
  return p;
}

async function allLists() {
  const out = {};
  for (const ws of ['default', 'side']) {
    out[`${ws}/all`] = await listAll(c(), { include_archived: true, limit: 9, ...wsParams(ws) });
    out[`${ws}/live`] = await listAll(c(), { limit: 9, ...wsParams(ws) });
  }
  out.other = await listAll(server.client(otherKey), { include_archived: true });
  return out;
}

let lists; // the lists as they were before the last restart

async function verifyEverything() {
  for (const [id, { obj, ws }] of live) {
    const got = await c().beta.environments.retrieve(id, wsParams(ws));
    assert.deepEqual(got, obj, `environment ${id} changed across the restart`);
  }
  for (const d of deleted) await expectNotFound(c().beta.environments.retrieve(d.id, wsParams(d.ws)));
  assert.deepEqual(await allLists(), lists);
}

before(async () => {
  server = new Server();
  await server.start();
  key = server.createKey({ org: 'dur', account: 'main' });
  otherKey = server.createKey({ org: 'dur', account: 'other' });
  server.createKey({ org: 'dur', workspace: 'side' }); // the workspace exists whatever the rules

  for (let i = 0; i < 50; i++) {
    const p = paramsFor(i);
    const ws = p.workspace_id || 'default';
    const e = await c().beta.environments.create(p);
    assertEnvironmentShape(e);
    live.set(e.id, { obj: e, ws });
  }
  const entries = [...live.entries()];
  for (let i = 0; i < entries.length; i++) {
    const [id, rec] = entries[i];
    if (i % 3 === 0) {
      rec.obj = await c().beta.environments.update(id, {
        description: `updated ${i}`,
        metadata: { i: null, touched: 'yes' },
        ...wsParams(rec.ws),
      });
    }
    if (i % 7 === 0) rec.obj = await c().beta.environments.archive(id, wsParams(rec.ws));
    if (i % 5 === 1) {
      await c().beta.environments.delete(id, wsParams(rec.ws));
      live.delete(id);
      deleted.push({ id, name: rec.obj.name, ws: rec.ws });
    }
  }
  assert.equal(deleted.length, 10);
  lists = await allLists();
  // A sanity check of the fixture: both workspaces, archived and account-scoped ones.
  assert.ok(lists['default/all'].length > lists['default/live'].length);
  assert.ok(lists['side/all'].length > 0);
  assert.ok(lists['default/all'].some((e) => e.scope === 'account'));
  assert.ok(!lists.other.some((e) => e.scope === 'account'));
});

after(async () => {
  if (server) {
    await server.stop();
    server.cleanup();
  }
});

test('kill -9 and restart on the same db: every object identical, deleted ones 404', async () => {
  await server.kill9();
  await server.start();
  await verifyEverything();
});

test('names survive: live ones still taken, deleted ones free', async () => {
  const [, first] = [...live.entries()][0];
  await expectError(c().beta.environments.create({ name: first.obj.name, ...wsParams(first.ws) }), {
    cls: SDK.ConflictError,
    status: 409,
    code: 'environment_name_taken',
  });
  const d = deleted[0];
  const e = await c().beta.environments.create({ name: d.name, ...wsParams(d.ws) });
  assert.notEqual(e.id, d.id);
  live.set(e.id, { obj: e, ws: d.ws });
  lists = await allLists();
});

test('the last write acknowledged before kill -9 is there after it', async () => {
  const [id, rec] = [...live.entries()].find(([, r]) => r.obj.archived_at === null);
  rec.obj = await c().beta.environments.update(id, { metadata: { last: 'write' }, ...wsParams(rec.ws) });
  await server.kill9();
  await server.start();
  assert.deepEqual(await c().beta.environments.retrieve(id, wsParams(rec.ws)), rec.obj);
});

test('a burst of concurrent writes acknowledged before kill -9 is all there', async () => {
  const burst = await Promise.all(
    Array.from({ length: 20 }, (_, i) => c().beta.environments.create({ name: `burst-${i}`, metadata: { b: String(i) } })),
  );
  const [toArchive, toDelete] = [burst[0], burst[1]];
  const archived = await c().beta.environments.archive(toArchive.id);
  await c().beta.environments.delete(toDelete.id);
  await server.kill9();
  await server.start();
  for (const e of burst) {
    if (e.id === toDelete.id) {
      await expectNotFound(c().beta.environments.retrieve(e.id));
      deleted.push({ id: e.id, name: e.name, ws: 'default' });
    } else {
      const want = e.id === toArchive.id ? archived : e;
      assert.deepEqual(await c().beta.environments.retrieve(e.id), want);
      live.set(e.id, { obj: want, ws: 'default' });
    }
  }
  lists = await allLists();
  await verifyEverything();
});

test('a cursor taken before a restart still works after it', async () => {
  // SPEC is silent; cursors are keyset positions, and a rolling restart in the middle
  // of a listing must not turn into a 400.
  const p1 = await c().beta.environments.list({ limit: 5, include_archived: true });
  await server.kill9();
  await server.start();
  const p2 = await c().beta.environments.list({ limit: 5, include_archived: true, page: p1.next_page });
  assert.deepEqual(
    p2.data.map((e) => e.id),
    lists['default/all'].slice(5, 10).map((e) => e.id),
  );
});

test('ids keep growing across restarts', async () => {
  const newest = lists['default/all'][0];
  const e = await c().beta.environments.create({ name: 'after-restart' });
  assert.ok(e.id > newest.id, `${e.id} does not sort after ${newest.id}`);
  assert.ok(e.created_at >= newest.created_at);
  live.set(e.id, { obj: e, ws: 'default' });
  lists = await allLists();
  assert.equal(lists['default/all'][0].id, e.id);
});

test('SIGTERM: the server exits 0 and everything is intact after the restart', async () => {
  const r = await server.stop();
  // A graceful shutdown is a successful exit, not death by signal.
  assert.deepEqual(r, { code: 0, sig: null });
  await server.start();
  await verifyEverything();
  // And account scope still holds.
  for (const [id, { obj, ws }] of live) {
    if (obj.scope === 'account') await expectNotFound(server.client(otherKey).beta.environments.retrieve(id, wsParams(ws)));
  }
});

test('a second SIGTERM restart (via restart()) is just as clean', async () => {
  await server.restart();
  await verifyEverything();
});

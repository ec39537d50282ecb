// Tenancy (SPEC §1 workspace header, §4): organizations, accounts, workspaces.
'use strict';
const { test, describe, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { Server } = require('./lib/server');
const { SDK, expectError, expectNotFound, listAll } = require('./lib/helpers');

let server;
// acme: alice and bob may use any workspace; carol is bound to workspace "team".
// globex: another organization, with an account also called "alice".
let alice, bob, carol, carolKey, globexAlice;
let orgEnv; // acme, default workspace, scope organization, by alice
let acctEnv; // acme, default workspace, scope account, by alice
let teamEnv; // acme, workspace team, scope organization, by alice
let teamAcctEnv; // acme, workspace team, scope account, by alice
let bobEnv; // acme, default workspace, scope account, by bob

before(async () => {
  server = new Server();
  await server.start();
  alice = server.client(server.createKey({ org: 'acme', account: 'alice' }));
  bob = server.client(server.createKey({ org: 'acme', account: 'bob' }));
  carolKey = server.createKey({ org: 'acme', account: 'carol', workspace: 'team' });
  carol = server.client(carolKey);
  globexAlice = server.client(server.createKey({ org: 'globex', account: 'alice' }));

  orgEnv = await alice.beta.environments.create({ name: 'org-env' });
  acctEnv = await alice.beta.environments.create({ name: 'alice-private', scope: 'account' });
  teamEnv = await alice.beta.environments.create({ name: 'team-env', workspace_id: 'team' });
  teamAcctEnv = await alice.beta.environments.create({ name: 'team-private', scope: 'account', workspace_id: 'team' });
  bobEnv = await bob.beta.environments.create({ name: 'bob-private', scope: 'account' });
});

after(async () => {
  if (server) {
    await server.stop();
    server.cleanup();
  }
});

const ids = (list) => list.map((e) => e.id);

// Every route on `id` is a 404 for `c` (with optional workspace params).
async function invisible(c, id, ws = {}) {
  await expectNotFound(c.beta.environments.retrieve(id, ws));
  await expectNotFound(c.beta.environments.update(id, { description: 'intruder', ...ws }));
  await expectNotFound(c.beta.environments.archive(id, ws));
  await expectNotFound(c.beta.environments.delete(id, ws));
}

describe('organizations', () => {
  test('another organization sees nothing: 404 on every route, empty lists', async () => {
    for (const e of [orgEnv, acctEnv]) await invisible(globexAlice, e.id);
    const page = await globexAlice.beta.environments.list({ include_archived: true });
    assert.deepEqual(page.data, []);
    assert.equal(page.next_page, null);
    // Nothing was touched by the attempts.
    assert.deepEqual(await alice.beta.environments.retrieve(orgEnv.id), orgEnv);
    assert.deepEqual(await alice.beta.environments.retrieve(acctEnv.id), acctEnv);
  });

  test('names are per organization', async () => {
    const g = await globexAlice.beta.environments.create({ name: 'org-env' });
    assert.notEqual(g.id, orgEnv.id);
    assert.deepEqual(ids((await globexAlice.beta.environments.list()).data), [g.id]);
    await invisible(alice, g.id);
    assert.ok(!ids(await listAll(alice, { include_archived: true })).includes(g.id));
  });
});

describe('accounts', () => {
  test("organization scope is shared by the organization's accounts", async () => {
    assert.deepEqual(await bob.beta.environments.retrieve(orgEnv.id), orgEnv);
  });

  test("account scope is visible only to its account: 404 and absent from lists", async () => {
    await invisible(bob, acctEnv.id);
    await invisible(alice, bobEnv.id);
    assert.deepEqual(ids((await alice.beta.environments.list()).data), [acctEnv.id, orgEnv.id]);
    assert.deepEqual(ids((await bob.beta.environments.list()).data), [bobEnv.id, orgEnv.id]);
    assert.deepEqual(await alice.beta.environments.retrieve(acctEnv.id), acctEnv);
    assert.deepEqual(await bob.beta.environments.retrieve(bobEnv.id), bobEnv);
  });

  test('pagination skips what the caller may not see', async () => {
    const seen = ids(await listAll(bob, { limit: 1 }));
    assert.deepEqual(seen, [bobEnv.id, orgEnv.id]);
  });

  test('an account-scoped name still occupies the workspace', async () => {
    // SPEC §2: names are unique among the workspace's environments, whoever sees them.
    await expectError(bob.beta.environments.create({ name: 'alice-private' }), {
      cls: SDK.ConflictError,
      status: 409,
      code: 'environment_name_taken',
    });
  });

  test('changing scope changes visibility', async () => {
    const e = await alice.beta.environments.create({ name: 'flip' });
    assert.equal((await bob.beta.environments.retrieve(e.id)).id, e.id);
    await alice.beta.environments.update(e.id, { scope: 'account' });
    await expectNotFound(bob.beta.environments.retrieve(e.id));
    await alice.beta.environments.update(e.id, { scope: 'organization' });
    assert.equal((await bob.beta.environments.retrieve(e.id)).scope, 'organization');
    await alice.beta.environments.delete(e.id);
  });
});

describe('workspaces', () => {
  test('a workspace-less key defaults to workspace "default" and the response says so', async () => {
    const { data, response } = await alice.beta.environments.retrieve(orgEnv.id).withResponse();
    assert.deepEqual(data, orgEnv);
    assert.equal(response.headers.get('anthropic-workspace-id'), 'default');
    const l = await alice.beta.environments.list().withResponse();
    assert.equal(l.response.headers.get('anthropic-workspace-id'), 'default');
    const explicit = await alice.beta.environments.list({ workspace_id: 'default' }).withResponse();
    assert.equal(explicit.response.headers.get('anthropic-workspace-id'), 'default');
    assert.deepEqual(explicit.data.data, l.data.data);
  });

  test('the workspace header selects the workspace and is echoed', async () => {
    const { data, response } = await alice.beta.environments
      .retrieve(teamEnv.id, { workspace_id: 'team' })
      .withResponse();
    assert.deepEqual(data, teamEnv);
    assert.equal(response.headers.get('anthropic-workspace-id'), 'team');
    const created = await alice.beta.environments.create({ name: 'echo', workspace_id: 'team' }).withResponse();
    assert.equal(created.response.headers.get('anthropic-workspace-id'), 'team');
    const l = await alice.beta.environments.list({ workspace_id: 'team' }).withResponse();
    assert.equal(l.response.headers.get('anthropic-workspace-id'), 'team');
    assert.deepEqual(ids(l.data.data), [created.data.id, teamAcctEnv.id, teamEnv.id]);
    await alice.beta.environments.delete(created.data.id, { workspace_id: 'team' });
  });

  test('an environment of another workspace is 404, and the 404 is resolved in the workspace', async () => {
    await invisible(alice, teamEnv.id);
    await invisible(alice, orgEnv.id, { workspace_id: 'team' });
    const err = await expectNotFound(alice.beta.environments.retrieve(orgEnv.id, { workspace_id: 'team' }));
    // SPEC §1: responses resolved in a workspace echo it; the SDK exposes it on errors.
    assert.equal(err.workspaceID, 'team');
    assert.ok(!ids(await listAll(alice, { include_archived: true })).includes(teamEnv.id));
  });

  test('names are per workspace', async () => {
    const e = await alice.beta.environments.create({ name: 'org-env', workspace_id: 'team' });
    assert.notEqual(e.id, orgEnv.id);
    await expectError(alice.beta.environments.create({ name: 'org-env', workspace_id: 'team' }), {
      cls: SDK.ConflictError,
      status: 409,
      code: 'environment_name_taken',
    });
    await alice.beta.environments.delete(e.id, { workspace_id: 'team' });
  });

  test('a workspace-bound key works in its workspace without the header', async () => {
    const { data, response } = await carol.beta.environments.list().withResponse();
    assert.equal(response.headers.get('anthropic-workspace-id'), 'team');
    // carol sees the team's organization-scoped environment, not alice's account-scoped one.
    assert.deepEqual(ids(data.data), [teamEnv.id]);
    assert.deepEqual(await carol.beta.environments.retrieve(teamEnv.id), teamEnv);
    await expectNotFound(carol.beta.environments.retrieve(teamAcctEnv.id));
    const own = await carol.beta.environments.create({ name: 'carol-env' });
    assert.deepEqual(await alice.beta.environments.retrieve(own.id, { workspace_id: 'team' }), own);
    await expectNotFound(alice.beta.environments.retrieve(own.id));
    // Sending its own workspace is fine.
    assert.deepEqual(await carol.beta.environments.retrieve(own.id, { workspace_id: 'team' }), own);
  });

  test('a workspace-bound key naming another workspace is 403 PermissionDeniedError', async () => {
    for (const call of [
      () => carol.beta.environments.list({ workspace_id: 'default' }),
      () => carol.beta.environments.retrieve(orgEnv.id, { workspace_id: 'default' }),
      () => carol.beta.environments.create({ name: 'carol-escape', workspace_id: 'default' }),
      () => carol.beta.environments.update(orgEnv.id, { description: 'x', workspace_id: 'default' }),
      () => carol.beta.environments.archive(orgEnv.id, { workspace_id: 'default' }),
      () => carol.beta.environments.delete(orgEnv.id, { workspace_id: 'default' }),
      () => carol.beta.environments.list({ workspace_id: 'elsewhere' }),
    ]) {
      await expectError(call(), { cls: SDK.PermissionDeniedError, status: 403 });
    }
    // Without the header, the default workspace's environment is simply not there.
    await invisible(carol, orgEnv.id);
    assert.deepEqual(await alice.beta.environments.retrieve(orgEnv.id), orgEnv);
    assert.ok(!(await listAll(alice)).some((e) => e.name === 'carol-escape'));
  });

  test('the raw header works the same way', async () => {
    const r = await server.raw('GET', '/v1/environments', { key: carolKey, headers: { 'anthropic-workspace-id': 'default' } });
    assert.equal(r.status, 403, r.text);
    assert.equal(r.json.error.type, 'permission_error');
    const ok = await server.raw('GET', '/v1/environments', { key: carolKey, headers: { 'anthropic-workspace-id': 'team' } });
    assert.equal(ok.status, 200, ok.text);
    assert.equal(ok.headers.get('anthropic-workspace-id'), 'team');
  });
});

// Every Environments route, driven through the official SDK (SPEC §1, §2).
'use strict';
const { test, describe, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { Server } = require('./lib/server');
const {
  SDK,
  Env,
  TS_RE,
  ENV_ID_RE,
  REQ_ID_RE,
  CURSOR_RE,
  DEFAULT_CONFIG,
  packages,
  limited,
  expectError,
  expectNotFound,
  assertEnvironmentShape,
  listAll,
} = require('./lib/helpers');

let server;
let key;
let client;
let seq = 0;
const uniq = (p = 'env') => `${p}-${++seq}`;

// A fresh organization gives a test its own, empty list.
function freshOrgClient(org) {
  return server.client(server.createKey({ org }));
}

before(async () => {
  server = new Server();
  await server.start();
  key = server.createKey({ org: 'envs' });
  client = server.client(key);
});

after(async () => {
  if (server) {
    await server.stop();
    server.cleanup();
  }
});

describe('create', () => {
  test('a name alone gives the fully populated defaults', async () => {
    const t0 = Date.now();
    const { data: env, response } = await client.beta.environments.create({ name: 'defaults' }).withResponse();
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type'), /^application\/json/);
    assert.match(response.headers.get('request-id'), REQ_ID_RE);
    assertEnvironmentShape(env);
    assert.deepEqual(env, {
      id: env.id,
      type: 'environment',
      name: 'defaults',
      description: null,
      config: {
        type: 'cloud',
        networking: { type: 'unrestricted' },
        packages: { type: 'packages', apt: [], cargo: [], gem: [], go: [], npm: [], pip: [] },
      },
      metadata: {},
      scope: 'organization',
      archived_at: null,
      created_at: env.created_at,
      updated_at: env.updated_at,
    });
    // SPEC is silent: a never-updated object has updated_at == created_at.
    assert.equal(env.updated_at, env.created_at);
    // Server and test share one clock: created_at is "now".
    const t = Date.parse(env.created_at);
    assert.ok(t >= t0 - 5000 && t <= Date.now() + 5000, `created_at ${env.created_at} is not now`);
  });

  test('every given field is echoed', async () => {
    const env = await client.beta.environments.create({
      name: 'full',
      description: 'a description',
      metadata: { team: 'infra', tier: '1' },
      scope: 'account',
      config: {
        type: 'cloud',
        networking: {
          type: 'limited',
          allowed_hosts: ['api.example.com', '*.example.org'],
          allow_mcp_servers: true,
          allow_package_managers: true,
        },
        packages: { pip: ['numpy==1.26.4', 'pandas'], apt: ['curl'] },
      },
    });
    assertEnvironmentShape(env);
    assert.equal(env.name, 'full');
    assert.equal(env.description, 'a description');
    assert.deepEqual(env.metadata, { team: 'infra', tier: '1' });
    assert.equal(env.scope, 'account');
    assert.deepEqual(env.config, {
      type: 'cloud',
      networking: {
        type: 'limited',
        allow_mcp_servers: true,
        allow_package_managers: true,
        allowed_hosts: ['api.example.com', '*.example.org'],
      },
      packages: packages({ pip: ['numpy==1.26.4', 'pandas'], apt: ['curl'] }),
    });
  });

  test('self_hosted config is exactly {type: self_hosted}', async () => {
    const env = await client.beta.environments.create({ name: 'selfhosted', config: { type: 'self_hosted' } });
    assertEnvironmentShape(env);
    assert.deepEqual(env.config, { type: 'self_hosted' });
    assert.equal(env.scope, 'organization');
    assert.equal(env.description, null);
    assert.deepEqual(env.metadata, {});
  });

  test('limited networking: omitted booleans default to false, hosts kept in order', async () => {
    const env = await client.beta.environments.create({
      name: 'limited-hosts',
      config: { type: 'cloud', networking: { type: 'limited', allowed_hosts: ['b.example.com', 'a.example.com', '*.example.net'] } },
    });
    assert.deepEqual(env.config, {
      type: 'cloud',
      networking: limited({ allowed_hosts: ['b.example.com', 'a.example.com', '*.example.net'] }),
      packages: packages(),
    });
  });

  test('limited networking with nothing else is fully populated', async () => {
    const env = await client.beta.environments.create({
      name: 'limited-bare',
      config: { type: 'cloud', networking: { type: 'limited' } },
    });
    assert.deepEqual(env.config.networking, limited());
  });

  test('cloud config with only a type gets defaults for networking and packages', async () => {
    const env = await client.beta.environments.create({ name: 'cloud-bare', config: { type: 'cloud' } });
    assert.deepEqual(env.config, DEFAULT_CONFIG);
  });

  test('partial packages are filled with empty lists, order and versions kept', async () => {
    const env = await client.beta.environments.create({
      name: 'pkgs',
      config: { type: 'cloud', packages: { type: 'packages', npm: ['zod@3', 'left-pad'], go: ['golang.org/x/tools@v0.1.0'] } },
    });
    assert.deepEqual(env.config.packages, packages({ npm: ['zod@3', 'left-pad'], go: ['golang.org/x/tools@v0.1.0'] }));
    assert.deepEqual(env.config.networking, { type: 'unrestricted' });
  });

  test('null config, scope and description mean the defaults', async () => {
    const env = await client.beta.environments.create({ name: 'nulls', config: null, scope: null, description: null });
    assert.deepEqual(env.config, DEFAULT_CONFIG);
    assert.equal(env.scope, 'organization');
    assert.equal(env.description, null);
  });

  test('unicode text round-trips byte for byte', async () => {
    const name = 'ünï-çødé ✓ 環境 🚀';
    const env = await client.beta.environments.create({
      name,
      description: 'line1\nline2\t"quoted" \\ back\u0001slash',
      metadata: { 'ключ': 'значение 🚀', 'quote"key': 'a\\b' },
    });
    assert.equal(env.name, name);
    assert.equal(env.description, 'line1\nline2\t"quoted" \\ back\u0001slash');
    assert.deepEqual(env.metadata, { 'ключ': 'значение 🚀', 'quote"key': 'a\\b' });
    assert.deepEqual(await client.beta.environments.retrieve(env.id), env);
  });

  test('ids are unique and sort by creation; created_at never goes backwards', async () => {
    const c = freshOrgClient('id-order');
    const envs = [];
    for (let i = 0; i < 25; i++) envs.push(await c.beta.environments.create({ name: `o-${i}` }));
    for (let i = 1; i < envs.length; i++) {
      assert.ok(envs[i].id > envs[i - 1].id, `id ${envs[i].id} does not sort after ${envs[i - 1].id}`);
      assert.ok(envs[i].created_at >= envs[i - 1].created_at);
    }
    assert.equal(new Set(envs.map((e) => e.id)).size, envs.length);
  });
});

describe('retrieve', () => {
  test('returns exactly what create returned', async () => {
    const env = await client.beta.environments.create({
      name: uniq('get'),
      metadata: { k: 'v' },
      config: { type: 'cloud', networking: { type: 'limited', allowed_hosts: ['x.example.com'] } },
    });
    const { data, response } = await client.beta.environments.retrieve(env.id).withResponse();
    assert.equal(response.status, 200);
    assert.deepEqual(data, env);
  });

  test('unknown, malformed and empty-looking ids are 404', async () => {
    await expectNotFound(client.beta.environments.retrieve('env_000000000000000000000000'));
    await expectNotFound(client.beta.environments.retrieve('env_zzzzzzzzzzzzzzzzzzzzzzzz'));
    await expectNotFound(client.beta.environments.retrieve('nope'));
    await expectNotFound(client.beta.environments.retrieve('env_'));
    await expectNotFound(client.beta.environments.retrieve('x'.repeat(300)));
  });
});

describe('update', () => {
  const FULL = () => ({
    name: uniq('upd'),
    description: 'd0',
    metadata: { a: '1', b: '2', c: '3' },
    config: {
      type: 'cloud',
      networking: { type: 'limited', allowed_hosts: ['a.example.com'], allow_mcp_servers: true, allow_package_managers: true },
      packages: { pip: ['numpy'], npm: ['left-pad'] },
    },
  });
  const mk = (p = FULL()) => client.beta.environments.create(p);
  const upd = (id, p) => client.beta.environments.update(id, p);
  const get = (id) => client.beta.environments.retrieve(id);

  test('an empty update is no change: same object, updated_at unchanged', async () => {
    const e = await mk();
    const { data, response } = await upd(e.id, {}).withResponse();
    assert.equal(response.status, 200);
    assert.deepEqual(data, e);
    assert.deepEqual(await get(e.id), e);
  });

  test('null name, config, scope and metadata keep their values', async () => {
    const e = await mk();
    assert.deepEqual(await upd(e.id, { name: null, config: null, scope: null, metadata: null }), e);
    assert.deepEqual(await get(e.id), e);
  });

  test('restating every current value is no effective change', async () => {
    const e = await mk();
    const same = await upd(e.id, {
      name: e.name,
      description: e.description,
      scope: e.scope,
      metadata: { ...e.metadata },
      config: e.config,
    });
    assert.deepEqual(same, e);
  });

  test('description: a string replaces, "" is stored as "", null clears', async () => {
    const e = await mk();
    const u1 = await upd(e.id, { description: 'd1' });
    assert.equal(u1.description, 'd1');
    assert.ok(u1.updated_at > e.updated_at, 'updated_at must advance on a change');
    assert.equal(u1.created_at, e.created_at);
    assert.deepEqual({ ...u1, description: e.description, updated_at: e.updated_at }, e);

    const u2 = await upd(e.id, { description: '' });
    assert.equal(u2.description, '');
    assert.ok(u2.updated_at > u1.updated_at);

    const u3 = await upd(e.id, { description: null });
    assert.equal(u3.description, null);
    assert.ok(u3.updated_at > u2.updated_at);
    assert.deepEqual(await get(e.id), u3);

    // Clearing what is already null is no change.
    const u4 = await upd(e.id, { description: null });
    assert.deepEqual(u4, u3);
  });

  test('rename frees the old name and keeps everything else', async () => {
    const e = await mk();
    const newName = uniq('renamed');
    const u = await upd(e.id, { name: newName });
    assert.equal(u.name, newName);
    assert.deepEqual({ ...u, name: e.name, updated_at: e.updated_at }, e);
    const reuse = await client.beta.environments.create({ name: e.name });
    assert.notEqual(reuse.id, e.id);
  });

  test('metadata is a patch: string upserts, null and "" delete', async () => {
    const e = await mk();
    const u = await upd(e.id, { metadata: { a: '10', b: null, c: '', d: '4' } });
    assert.deepEqual(u.metadata, { a: '10', d: '4' });
    assert.ok(u.updated_at > e.updated_at);
    assert.deepEqual({ ...u, metadata: e.metadata, updated_at: e.updated_at }, e);
    assert.deepEqual(await get(e.id), u);
    // Delete the rest: metadata becomes {} (never null).
    const v = await upd(e.id, { metadata: { a: null, d: '' } });
    assert.deepEqual(v.metadata, {});
  });

  test('deleting an absent metadata key or re-setting a value is no change', async () => {
    const e = await mk();
    assert.deepEqual(await upd(e.id, { metadata: { zzz: null, yyy: '' } }), e);
    assert.deepEqual(await upd(e.id, { metadata: { a: '1' } }), e);
    assert.deepEqual(await upd(e.id, { metadata: {} }), e);
  });

  test('config with only its type keeps networking and packages', async () => {
    const e = await mk();
    assert.deepEqual(await upd(e.id, { config: { type: 'cloud' } }), e);
    assert.deepEqual(await upd(e.id, { config: { type: 'cloud', networking: null, packages: null } }), e);
  });

  test('packages: given lists replace, omitted lists keep', async () => {
    const e = await mk();
    const u = await upd(e.id, { config: { type: 'cloud', packages: { apt: ['curl', 'git'] } } });
    assert.deepEqual(u.config, {
      type: 'cloud',
      networking: e.config.networking,
      packages: packages({ apt: ['curl', 'git'], pip: ['numpy'], npm: ['left-pad'] }),
    });
    assert.ok(u.updated_at > e.updated_at);
    const v = await upd(e.id, { config: { type: 'cloud', packages: { type: 'packages', pip: [] } } });
    assert.deepEqual(v.config.packages, packages({ apt: ['curl', 'git'], npm: ['left-pad'] }));
    assert.deepEqual(await get(e.id), v);
  });

  test('packages: a null list keeps its value', async () => {
    // SPEC §2: "Omitted or null field = keep"; applied inside packages as well.
    const e = await mk();
    assert.deepEqual(await upd(e.id, { config: { type: 'cloud', packages: { pip: null, npm: null } } }), e);
  });

  test('limited networking: omitted fields keep', async () => {
    const e = await mk();
    const u = await upd(e.id, { config: { type: 'cloud', networking: { type: 'limited', allowed_hosts: ['b.example.com'] } } });
    assert.deepEqual(u.config, {
      type: 'cloud',
      networking: limited({ allow_mcp_servers: true, allow_package_managers: true, allowed_hosts: ['b.example.com'] }),
      packages: e.config.packages,
    });
    const v = await upd(e.id, { config: { type: 'cloud', networking: { type: 'limited', allow_mcp_servers: false } } });
    assert.deepEqual(
      v.config.networking,
      limited({ allow_mcp_servers: false, allow_package_managers: true, allowed_hosts: ['b.example.com'] }),
    );
    assert.deepEqual(v.config.packages, e.config.packages);
  });

  test('networking type switches; limited after unrestricted starts from defaults', async () => {
    const e = await client.beta.environments.create({ name: uniq('switch') });
    const u = await upd(e.id, { config: { type: 'cloud', networking: { type: 'limited', allowed_hosts: ['h.example.com'] } } });
    assert.deepEqual(u.config.networking, limited({ allowed_hosts: ['h.example.com'] }));
    const v = await upd(e.id, { config: { type: 'cloud', networking: { type: 'unrestricted' } } });
    assert.deepEqual(v.config, DEFAULT_CONFIG);
    // SPEC is silent: limited fields are not remembered across an unrestricted spell.
    const w = await upd(e.id, { config: { type: 'cloud', networking: { type: 'limited' } } });
    assert.deepEqual(w.config.networking, limited());
  });

  test('the merged result is re-validated: packages under limited need allow_package_managers', async () => {
    const e = await client.beta.environments.create({
      name: uniq('reval'),
      config: { type: 'cloud', packages: { pip: ['requests'] } },
    });
    await expectError(upd(e.id, { config: { type: 'cloud', networking: { type: 'limited' } } }), {
      cls: SDK.BadRequestError,
      status: 400,
      fields: [/packages|package_managers/],
    });
    assert.deepEqual(await get(e.id), e);

    const f = await mk();
    await expectError(
      upd(f.id, { config: { type: 'cloud', networking: { type: 'limited', allow_package_managers: false } } }),
      { cls: SDK.BadRequestError, status: 400, fields: [/packages|package_managers/] },
    );
    assert.deepEqual(await get(f.id), f);
    // Emptying the packages in the same request makes it valid.
    const g = await upd(f.id, {
      config: {
        type: 'cloud',
        networking: { type: 'limited', allow_package_managers: false },
        packages: { apt: [], cargo: [], gem: [], go: [], npm: [], pip: [] },
      },
    });
    assert.deepEqual(g.config, {
      type: 'cloud',
      networking: limited({ allow_mcp_servers: true, allowed_hosts: ['a.example.com'] }),
      packages: packages(),
    });
  });

  test('config type may not change (both directions)', async () => {
    const cloud = await mk();
    const err = await expectError(upd(cloud.id, { config: { type: 'self_hosted' } }), {
      cls: Env.BetaInvalidConfigTypeChangeError,
      status: 400,
      code: 'invalid_config_type_change',
    });
    assert.equal(err.constructor.name, 'BetaInvalidConfigTypeChangeError');
    assert.deepEqual(await get(cloud.id), cloud);

    const sh = await client.beta.environments.create({ name: uniq('sh'), config: { type: 'self_hosted' } });
    await expectError(upd(sh.id, { config: { type: 'cloud' } }), {
      cls: Env.BetaInvalidConfigTypeChangeError,
      status: 400,
      code: 'invalid_config_type_change',
    });
    // The type change is refused as a whole: nothing else in the request is applied.
    await expectError(upd(sh.id, { name: uniq('nope'), config: { type: 'cloud' } }), {
      cls: Env.BetaInvalidConfigTypeChangeError,
      status: 400,
      code: 'invalid_config_type_change',
    });
    assert.deepEqual(await get(sh.id), sh);
    assert.deepEqual(await upd(sh.id, { config: { type: 'self_hosted' } }), sh);
  });

  test('scope can change', async () => {
    const e = await mk();
    const u = await upd(e.id, { scope: 'account' });
    assert.equal(u.scope, 'account');
    assert.ok(u.updated_at > e.updated_at);
    const v = await upd(e.id, { scope: 'organization' });
    assert.equal(v.scope, 'organization');
  });

  test('several fields at once; response equals a later retrieve', async () => {
    const e = await mk();
    const u = await upd(e.id, {
      description: 'multi',
      metadata: { a: null, z: '26' },
      config: { type: 'cloud', packages: { gem: ['rails'] } },
    });
    assert.deepEqual(u, {
      ...e,
      description: 'multi',
      metadata: { b: '2', c: '3', z: '26' },
      config: { ...e.config, packages: packages({ pip: ['numpy'], npm: ['left-pad'], gem: ['rails'] }) },
      updated_at: u.updated_at,
    });
    assert.deepEqual(await get(e.id), u);
  });

  test('a failed update changes nothing', async () => {
    const e = await mk();
    await expectError(upd(e.id, { description: 'ok', metadata: { ['k'.repeat(65)]: 'v' } }), {
      cls: Env.BetaInvalidMetadataError,
      status: 400,
      code: 'invalid_metadata',
    });
    assert.deepEqual(await get(e.id), e);
  });

  test('unknown environment is 404', async () => {
    await expectNotFound(upd('env_000000000000000000000000', { description: 'x' }));
  });
});

describe('name uniqueness', () => {
  test('a taken name is 409 environment_name_taken, never retried', async () => {
    await client.beta.environments.create({ name: 'taken' });
    const err = await expectError(client.beta.environments.create({ name: 'taken' }), {
      cls: SDK.ConflictError,
      status: 409,
      code: 'environment_name_taken',
    });
    assert.equal(err.headers.get('x-should-retry'), 'false');

    // The SDK retries 409s by default; x-should-retry:false must stop it.
    let calls = 0;
    const counting = server.client(key, {
      maxRetries: 2,
      fetch: (...a) => {
        calls++;
        return fetch(...a);
      },
    });
    await expectError(counting.beta.environments.create({ name: 'taken' }), {
      cls: SDK.ConflictError,
      status: 409,
      code: 'environment_name_taken',
    });
    assert.equal(calls, 1, 'the SDK retried a deterministic 409');
  });

  test('renaming onto a taken name is 409; renaming to its own name is no change', async () => {
    const a = await client.beta.environments.create({ name: uniq('ren-a') });
    const b = await client.beta.environments.create({ name: uniq('ren-b') });
    const err = await expectError(client.beta.environments.update(b.id, { name: a.name }), {
      cls: SDK.ConflictError,
      status: 409,
      code: 'environment_name_taken',
    });
    assert.equal(err.headers.get('x-should-retry'), 'false');
    assert.deepEqual(await client.beta.environments.retrieve(b.id), b);
    assert.deepEqual(await client.beta.environments.update(b.id, { name: b.name }), b);
  });

  test('an archived environment keeps its name; a deleted one frees it', async () => {
    const e = await client.beta.environments.create({ name: 'held' });
    await client.beta.environments.archive(e.id);
    await expectError(client.beta.environments.create({ name: 'held' }), {
      cls: SDK.ConflictError,
      status: 409,
      code: 'environment_name_taken',
    });
    await client.beta.environments.delete(e.id);
    const again = await client.beta.environments.create({ name: 'held' });
    assert.notEqual(again.id, e.id);
    assert.equal(again.archived_at, null);
  });

  test('the same name is free in another workspace', async () => {
    // Workspace-bound keys make the workspaces exist whatever the server's rules for that.
    const k1 = server.createKey({ org: 'names', workspace: 'w1' });
    const k2 = server.createKey({ org: 'names', workspace: 'w2' });
    const e1 = await server.client(k1).beta.environments.create({ name: 'same' });
    const e2 = await server.client(k2).beta.environments.create({ name: 'same' });
    assert.notEqual(e1.id, e2.id);
    await expectError(server.client(k1).beta.environments.create({ name: 'same' }), {
      cls: SDK.ConflictError,
      status: 409,
      code: 'environment_name_taken',
    });
  });
});

describe('archive', () => {
  test('sets archived_at once; again returns the original; still readable', async () => {
    const e = await client.beta.environments.create({ name: uniq('arch'), metadata: { m: '1' } });
    const { data: a, response } = await client.beta.environments.archive(e.id).withResponse();
    assert.equal(response.status, 200);
    assertEnvironmentShape(a);
    assert.match(a.archived_at, TS_RE);
    assert.ok(a.archived_at >= e.created_at);
    // Everything but archived_at (and possibly updated_at: SPEC is silent) is unchanged.
    assert.deepEqual({ ...a, archived_at: null, updated_at: e.updated_at }, e);

    const a2 = await client.beta.environments.archive(e.id);
    assert.deepEqual(a2, a);
    assert.deepEqual(await client.beta.environments.retrieve(e.id), a);
  });

  test('update of an archived environment is BetaEnvironmentArchivedError and changes nothing', async () => {
    const e = await client.beta.environments.create({ name: uniq('arch-upd') });
    const a = await client.beta.environments.archive(e.id);
    const err = await expectError(client.beta.environments.update(e.id, { description: 'nope' }), {
      cls: Env.BetaEnvironmentArchivedError,
      status: 400,
      code: 'environment_archived',
    });
    assert.equal(err.constructor.name, 'BetaEnvironmentArchivedError');
    await expectError(client.beta.environments.update(e.id, { metadata: { k: 'v' } }), {
      cls: Env.BetaEnvironmentArchivedError,
      status: 400,
      code: 'environment_archived',
    });
    assert.deepEqual(await client.beta.environments.retrieve(e.id), a);
  });

  test('archive of an unknown environment is 404', async () => {
    await expectNotFound(client.beta.environments.archive('env_000000000000000000000000'));
  });
});

describe('delete', () => {
  test('answers {id, type: environment_deleted}, then 404 everywhere forever', async () => {
    const e = await client.beta.environments.create({ name: uniq('del') });
    const { data, response } = await client.beta.environments.delete(e.id).withResponse();
    assert.equal(response.status, 200);
    assert.deepEqual(data, { id: e.id, type: 'environment_deleted' });
    await expectNotFound(client.beta.environments.retrieve(e.id));
    await expectNotFound(client.beta.environments.update(e.id, { description: 'x' }));
    await expectNotFound(client.beta.environments.archive(e.id));
    await expectNotFound(client.beta.environments.delete(e.id));
    const all = await listAll(client, { include_archived: true, limit: 100 });
    assert.ok(!all.some((x) => x.id === e.id));
  });

  test('an archived environment can be deleted', async () => {
    const e = await client.beta.environments.create({ name: uniq('del-arch') });
    await client.beta.environments.archive(e.id);
    assert.deepEqual(await client.beta.environments.delete(e.id), { id: e.id, type: 'environment_deleted' });
    await expectNotFound(client.beta.environments.retrieve(e.id));
  });

  test('unknown environment is 404', async () => {
    await expectNotFound(client.beta.environments.delete('env_000000000000000000000000'));
  });
});

describe('list', () => {
  let c;
  let A, B, C, D;
  before(async () => {
    c = freshOrgClient('list');
    A = await c.beta.environments.create({ name: 'A', config: { type: 'self_hosted' } });
    B = await c.beta.environments.create({ name: 'B', metadata: { x: 'y' } });
    C = await c.beta.environments.create({ name: 'C', description: 'c' });
    D = await c.beta.environments.create({ name: 'D', scope: 'account' });
    B = await c.beta.environments.archive(B.id);
  });

  test('newest first, archived hidden by default, objects identical to retrieve', async () => {
    const { data: page, response } = await c.beta.environments.list().withResponse();
    assert.equal(response.status, 200);
    assert.match(response.headers.get('request-id'), REQ_ID_RE);
    assert.deepEqual(page.data, [D, C, A]);
    assert.equal(page.next_page, null);
    const explicit = await c.beta.environments.list({ include_archived: false });
    assert.deepEqual(explicit.data, [D, C, A]);
  });

  test('include_archived shows archived ones in place', async () => {
    const page = await c.beta.environments.list({ include_archived: true });
    assert.deepEqual(page.data, [D, C, B, A]);
    assert.equal(page.next_page, null);
  });

  test('pages: next_page is a cursor while more remain, null on the last page', async () => {
    const p1 = await c.beta.environments.list({ limit: 2 });
    assert.deepEqual(p1.data, [D, C]);
    assert.match(p1.next_page, CURSOR_RE);
    assert.ok(p1.hasNextPage());
    const p2 = await p1.getNextPage();
    assert.deepEqual(p2.data, [A]);
    assert.equal(p2.next_page, null);
    assert.equal(p2.hasNextPage(), false);
  });

  test('an exact fit has next_page null (look one row ahead)', async () => {
    const p = await c.beta.environments.list({ limit: 3 });
    assert.deepEqual(p.data, [D, C, A]);
    assert.equal(p.next_page, null);
    const q = await c.beta.environments.list({ limit: 3, include_archived: true });
    assert.deepEqual(q.data, [D, C, B]);
    assert.match(q.next_page, CURSOR_RE);
    const r = await q.getNextPage();
    assert.deepEqual(r.data, [A]);
    assert.equal(r.next_page, null);
  });

  test('limit 1 walks every item', async () => {
    const ids = (await listAll(c, { limit: 1, include_archived: true })).map((e) => e.id);
    assert.deepEqual(ids, [D.id, C.id, B.id, A.id]);
  });

  test('an empty organization lists nothing', async () => {
    const empty = freshOrgClient('list-empty');
    const p = await empty.beta.environments.list({ include_archived: true });
    assert.deepEqual(p.data, []);
    assert.equal(p.next_page, null);
  });

  test('deleted ones disappear from the list', async () => {
    const E = await c.beta.environments.create({ name: 'E' });
    assert.deepEqual((await c.beta.environments.list()).data, [E, D, C, A]);
    await c.beta.environments.delete(E.id);
    assert.deepEqual((await c.beta.environments.list()).data, [D, C, A]);
  });
});

describe('auto-pagination over 300 environments', () => {
  const N = 300;
  let c;
  let created; // in creation order
  let expected; // newest first
  before(async () => {
    c = freshOrgClient('pagination');
    created = [];
    for (let i = 0; i < N; i++) {
      created.push(await c.beta.environments.create({ name: `p-${String(i).padStart(3, '0')}`, metadata: { i: String(i) } }));
    }
    expected = created.map((e) => e.id).reverse();
  });

  test('default limit is 20', async () => {
    const p = await c.beta.environments.list();
    assert.equal(p.data.length, 20);
    assert.deepEqual(p.data.map((e) => e.id), expected.slice(0, 20));
    assert.match(p.next_page, CURSOR_RE);
  });

  test('for await with limit 7 yields every id exactly once, newest first', async () => {
    const seen = [];
    for await (const e of c.beta.environments.list({ limit: 7 })) {
      assertEnvironmentShape(e);
      seen.push(e.id);
    }
    assert.equal(seen.length, N);
    assert.equal(new Set(seen).size, N);
    assert.deepEqual(seen, expected);
  });

  test('page sizes are 7 x 42 then 6; each page its slice', async () => {
    let page = await c.beta.environments.list({ limit: 7 });
    const sizes = [page.data.length];
    let i = 0;
    assert.deepEqual(page.data.map((e) => e.id), expected.slice(0, 7));
    while (page.hasNextPage()) {
      page = await page.getNextPage();
      i++;
      sizes.push(page.data.length);
      assert.deepEqual(page.data.map((e) => e.id), expected.slice(i * 7, i * 7 + 7));
    }
    assert.deepEqual(sizes, [...Array(42).fill(7), 6]);
    assert.equal(page.next_page, null);
  });

  test('limit 100 gives exactly three full pages, the last with next_page null', async () => {
    let page = await c.beta.environments.list({ limit: 100 });
    const pages = [page];
    while (page.hasNextPage()) pages.push((page = await page.getNextPage()));
    assert.deepEqual(pages.map((p) => p.data.length), [100, 100, 100]);
    assert.equal(pages[2].next_page, null);
    assert.deepEqual(pages.flatMap((p) => p.data.map((e) => e.id)), expected);
    // Objects in lists are the objects.
    assert.deepEqual(pages[2].data[99], created[0]);
  });

  test('archived ones are skipped (or kept) across page boundaries', async () => {
    const archived = new Set();
    for (let i = 0; i < N; i += 5) {
      await c.beta.environments.archive(created[i].id);
      archived.add(created[i].id);
    }
    const visible = (await listAll(c, { limit: 7 })).map((e) => e.id);
    assert.deepEqual(visible, expected.filter((id) => !archived.has(id)));
    const all = (await listAll(c, { limit: 7, include_archived: true })).map((e) => e.id);
    assert.deepEqual(all, expected);
  });

  test('keyset: creating and deleting while paging neither skips nor repeats', async () => {
    const first = await c.beta.environments.list({ limit: 7, include_archived: true });
    assert.deepEqual(first.data.map((e) => e.id), expected.slice(0, 7));
    // A newer environment appears before the cursor: not in the remaining pages.
    const newer = await c.beta.environments.create({ name: 'p-newer' });
    // Delete one already seen and one not yet seen.
    await c.beta.environments.delete(expected[3]);
    await c.beta.environments.delete(expected[50]);
    const rest = [];
    let page = first;
    while (page.hasNextPage()) {
      page = await page.getNextPage();
      rest.push(...page.data.map((e) => e.id));
    }
    assert.deepEqual(rest, expected.slice(7).filter((id) => id !== expected[50]));
    assert.ok(!rest.includes(newer.id));
  });

  test('a cursor may be followed with a different limit', async () => {
    // SPEC is silent: limit is not part of a keyset cursor, so changing the page size
    // between pages is allowed and continues where the cursor points.
    const p1 = await c.beta.environments.list({ limit: 10, include_archived: true });
    const ids1 = p1.data.map((e) => e.id);
    const p2 = await c.beta.environments.list({ limit: 3, include_archived: true, page: p1.next_page });
    const all = (await listAll(c, { limit: 100, include_archived: true })).map((e) => e.id);
    assert.deepEqual(p2.data.map((e) => e.id), all.slice(ids1.length, ids1.length + 3));
  });
});

describe('concurrent requests', () => {
  const settle = (ps) => Promise.allSettled(ps);

  test('20 concurrent creates of one name: exactly one wins, the rest are 409', async () => {
    const c = freshOrgClient('race');
    const results = await settle(Array.from({ length: 20 }, () => c.beta.environments.create({ name: 'contested' })));
    const won = results.filter((r) => r.status === 'fulfilled');
    const lost = results.filter((r) => r.status === 'rejected');
    assert.equal(won.length, 1, `winners: ${won.length}`);
    for (const r of lost) {
      assert.ok(r.reason instanceof SDK.ConflictError, String(r.reason));
      assert.equal(r.reason.errorCode, 'environment_name_taken');
    }
    assert.deepEqual((await c.beta.environments.list()).data, [won[0].value]);
  });

  test('concurrent metadata patches of distinct keys all land (no lost update)', async () => {
    const e = await client.beta.environments.create({ name: uniq('race-meta') });
    await Promise.all(
      Array.from({ length: 16 }, (_, i) => client.beta.environments.update(e.id, { metadata: { [`k${i}`]: String(i) } })),
    );
    const got = await client.beta.environments.retrieve(e.id);
    assert.deepEqual(got.metadata, Object.fromEntries(Array.from({ length: 16 }, (_, i) => [`k${i}`, String(i)])));
  });

  test('concurrent patches cannot together exceed 16 metadata keys', async () => {
    const e = await client.beta.environments.create({ name: uniq('race-meta-limit'), metadata: keysOf(12) });
    const results = await settle(
      Array.from({ length: 8 }, (_, i) => client.beta.environments.update(e.id, { metadata: { [`extra${i}`]: 'x' } })),
    );
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 4);
    for (const r of results.filter((x) => x.status === 'rejected')) assert.ok(r.reason instanceof Env.BetaInvalidMetadataError, String(r.reason));
    assert.equal(Object.keys((await client.beta.environments.retrieve(e.id)).metadata).length, 16);
  });

  test('concurrent archives all answer the one archived_at', async () => {
    const e = await client.beta.environments.create({ name: uniq('race-arch') });
    const all = await Promise.all(Array.from({ length: 10 }, () => client.beta.environments.archive(e.id)));
    for (const a of all) assert.deepEqual(a, all[0]);
    assert.deepEqual(await client.beta.environments.retrieve(e.id), all[0]);
  });

  test('concurrent deletes: exactly one 200, the rest 404', async () => {
    const e = await client.beta.environments.create({ name: uniq('race-del') });
    const results = await settle(Array.from({ length: 10 }, () => client.beta.environments.delete(e.id)));
    const ok = results.filter((r) => r.status === 'fulfilled');
    assert.equal(ok.length, 1);
    assert.deepEqual(ok[0].value, { id: e.id, type: 'environment_deleted' });
    for (const r of results.filter((x) => x.status === 'rejected')) assert.ok(r.reason instanceof SDK.NotFoundError, String(r.reason));
  });

  test('update racing archive: never an update applied after archived_at', async () => {
    for (let round = 0; round < 5; round++) {
      const e = await client.beta.environments.create({ name: uniq('race-upd-arch') });
      const [u, a] = await settle([
        client.beta.environments.update(e.id, { description: 'late' }),
        client.beta.environments.archive(e.id),
      ]);
      assert.equal(a.status, 'fulfilled');
      const final = await client.beta.environments.retrieve(e.id);
      if (u.status === 'fulfilled') {
        // The update won: it happened before the archive, so the archive shows it.
        assert.equal(final.description, 'late');
        assert.deepEqual(a.value, final);
      } else {
        assert.ok(u.reason instanceof Env.BetaEnvironmentArchivedError, String(u.reason));
        assert.equal(final.description, null);
      }
    }
  });
});

function keysOf(n) {
  return Object.fromEntries(Array.from({ length: n }, (_, i) => [`m${i}`, 'v']));
}

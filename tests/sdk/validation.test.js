// Input validation of environments (SPEC §1 bodies, §2 validation), through the SDK.
'use strict';
const { test, describe, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { Server } = require('./lib/server');
const { SDK, Env, packages, limited, expectError, listAll } = require('./lib/helpers');

let server;
let client;
let seq = 0;
const uniq = (p = 'v') => `${p}-${++seq}`;
// Every environment that a test expects to exist; checked at the end, so that no
// rejected request left anything behind.
const accepted = new Set();

before(async () => {
  server = new Server();
  await server.start();
  client = server.client(server.createKey({ org: 'validation' }));
});

after(async () => {
  if (server) {
    await server.stop();
    server.cleanup();
  }
});

async function ok(params) {
  const e = await client.beta.environments.create({ name: uniq(), ...params });
  accepted.add(e.id);
  return e;
}

function bad(params, fields, cls = SDK.BadRequestError) {
  const p = 'name' in params ? params : { name: uniq('bad'), ...params };
  return expectError(client.beta.environments.create(p), {
    cls,
    status: 400,
    fields,
    code: cls === Env.BetaInvalidMetadataError ? 'invalid_metadata' : undefined,
    // A wrongly typed metadata may fairly be reported as invalid_metadata
    // (BetaInvalidMetadataError, a BadRequestError) or as a plain 400.
    exact: 'metadata' in params && cls === SDK.BadRequestError ? false : undefined,
  });
}

const badMeta = (metadata, fields = []) => bad({ metadata }, ['metadata', ...fields], Env.BetaInvalidMetadataError);

function keys(n, prefix = 'k') {
  const m = {};
  for (let i = 0; i < n; i++) m[`${prefix}${i}`] = `v${i}`;
  return m;
}

describe('metadata limits', () => {
  test('16 keys, 64-char keys and 512-char values are accepted', async () => {
    const e = await ok({ metadata: keys(16) });
    assert.equal(Object.keys(e.metadata).length, 16);
    const long = await ok({ metadata: { ['k'.repeat(64)]: 'v'.repeat(512) } });
    assert.deepEqual(long.metadata, { ['k'.repeat(64)]: 'v'.repeat(512) });
  });

  test('limits count characters, not bytes', async () => {
    // SPEC says "chars"; a demanding user counts what they typed, not UTF-8 bytes.
    const e = await ok({ metadata: { ['é'.repeat(64)]: '環'.repeat(512) } });
    assert.deepEqual(e.metadata, { ['é'.repeat(64)]: '環'.repeat(512) });
  });

  test('17 keys', async () => {
    await badMeta(keys(17), ['16']);
  });

  test('a key of 65 characters', async () => {
    await badMeta({ ['k'.repeat(65)]: 'v' }, ['64']);
  });

  test('an empty key', async () => {
    await badMeta({ '': 'v' });
  });

  test('a value of 513 characters', async () => {
    await badMeta({ k: 'v'.repeat(513) }, ['512']);
  });

  test('every problem is named in one message', async () => {
    const m = keys(15);
    m['x'.repeat(65)] = 'v';
    m.long = 'v'.repeat(513);
    // 17 keys, one too long, one value too long.
    await badMeta(m, ['16', '64', '512']);
  });

  test('update: the patched result is re-validated', async () => {
    const e = await ok({ metadata: keys(16) });
    await expectError(client.beta.environments.update(e.id, { metadata: { extra: '1' } }), {
      cls: Env.BetaInvalidMetadataError,
      status: 400,
      code: 'invalid_metadata',
      fields: ['metadata', '16'],
    });
    // Adding one and deleting one in the same patch stays at 16.
    const u = await client.beta.environments.update(e.id, { metadata: { extra: '1', k0: null } });
    assert.equal(Object.keys(u.metadata).length, 16);
    assert.equal(u.metadata.extra, '1');
    assert.equal('k0' in u.metadata, false);
    for (const [m, f] of [
      [{ ['k'.repeat(65)]: 'v' }, '64'],
      [{ k1: 'v'.repeat(513) }, '512'],
      [{ '': 'v' }, 'metadata'],
    ]) {
      await expectError(client.beta.environments.update(e.id, { metadata: m }), {
        cls: Env.BetaInvalidMetadataError,
        status: 400,
        code: 'invalid_metadata',
        fields: ['metadata', f],
      });
    }
    assert.deepEqual(await client.beta.environments.retrieve(e.id), u);
  });

  test('non-string values are 400 naming metadata', async () => {
    for (const metadata of [{ k: 5 }, { k: true }, { k: {} }, { k: ['a'] }]) await bad({ metadata }, ['metadata']);
    // On update only null (delete) and strings are allowed.
    const e = await ok({});
    await expectError(client.beta.environments.update(e.id, { metadata: { k: 5 } }), {
      cls: SDK.BadRequestError,
      status: 400,
      fields: ['metadata'],
      exact: false,
    });
  });
});

describe('name and description', () => {
  test('name of 1 and 256 characters is accepted', async () => {
    assert.equal((await ok({ name: 'x' })).name, 'x');
    assert.equal((await ok({ name: 'n'.repeat(256) })).name, 'n'.repeat(256));
    // Characters, not bytes.
    assert.equal((await ok({ name: 'ñ'.repeat(256) })).name, 'ñ'.repeat(256));
  });

  test('name missing, null, empty or 257 characters', async () => {
    await expectError(client.beta.environments.create({}), { cls: SDK.BadRequestError, status: 400, fields: ['name'] });
    await expectError(client.beta.environments.create({ name: null }), {
      cls: SDK.BadRequestError,
      status: 400,
      fields: ['name'],
    });
    await bad({ name: '' }, ['name']);
    await bad({ name: 'n'.repeat(257) }, ['name', '256']);
  });

  test('update: name "" or 257 characters is 400, not "keep"', async () => {
    const e = await ok({});
    for (const name of ['', 'n'.repeat(257)]) {
      await expectError(client.beta.environments.update(e.id, { name }), {
        cls: SDK.BadRequestError,
        status: 400,
        fields: ['name'],
      });
    }
    assert.deepEqual(await client.beta.environments.retrieve(e.id), e);
  });

  test('description of 2048 characters is accepted, 2049 is not', async () => {
    assert.equal((await ok({ description: 'd'.repeat(2048) })).description, 'd'.repeat(2048));
    await bad({ description: 'd'.repeat(2049) }, ['description', '2048']);
    const e = await ok({});
    await expectError(client.beta.environments.update(e.id, { description: 'd'.repeat(2049) }), {
      cls: SDK.BadRequestError,
      status: 400,
      fields: ['description'],
    });
  });
});

describe('allowed_hosts', () => {
  const net = (hosts, extra = {}) => ({ config: { type: 'cloud', networking: { type: 'limited', allowed_hosts: hosts, ...extra } } });

  test('bare hosts and *.wildcards are accepted and echoed', async () => {
    const hosts = ['example.com', '*.example.com', 'a-b.c-d.example.org', 'xn--bcher-kva.example', 'localhost'];
    const e = await ok(net(hosts));
    assert.deepEqual(e.config.networking, limited({ allowed_hosts: hosts }));
  });

  test('a host of 253 characters is accepted, 254 is not', async () => {
    const h253 = ['a'.repeat(63), 'b'.repeat(63), 'c'.repeat(63), 'd'.repeat(61)].join('.');
    assert.equal(h253.length, 253);
    await ok(net([h253]));
    const h254 = ['a'.repeat(63), 'b'.repeat(63), 'c'.repeat(63), 'd'.repeat(62)].join('.');
    await bad(net([h254]), ['allowed_hosts']);
  });

  test('256 entries are accepted, 257 are not', async () => {
    const hosts = Array.from({ length: 257 }, (_, i) => `h${i}.example.com`);
    const e = await ok(net(hosts.slice(0, 256)));
    assert.deepEqual(e.config.networking.allowed_hosts, hosts.slice(0, 256));
    await bad(net(hosts), ['allowed_hosts', '256']);
  });

  for (const h of [
    'https://example.com',
    'http://example.com',
    'example.com/',
    'example.com/path',
    'example.com:443',
    'example.com?q=1',
    'user@example.com',
    '',
    ' example.com',
    'exa mple.com',
    'foo.*.example.com',
    '*',
  ]) {
    test(`rejects ${JSON.stringify(h)}`, async () => {
      await bad(net(['ok.example.com', h]), ['allowed_hosts']);
    });
  }

  test('update validates hosts too, and changes nothing on failure', async () => {
    const e = await ok(net(['a.example.com']));
    await expectError(
      client.beta.environments.update(e.id, {
        config: { type: 'cloud', networking: { type: 'limited', allowed_hosts: ['https://a.example.com'] } },
      }),
      { cls: SDK.BadRequestError, status: 400, fields: ['allowed_hosts'] },
    );
    assert.deepEqual(await client.beta.environments.retrieve(e.id), e);
  });
});

describe('packages', () => {
  const LISTS = ['apt', 'cargo', 'gem', 'go', 'npm', 'pip'];
  const pk = (p) => ({ config: { type: 'cloud', packages: p } });

  test('versions are not checked; entries are echoed verbatim', async () => {
    const p = {
      apt: ['curl=7.*', 'git'],
      cargo: ['serde@1.0.0', 'tokio'],
      gem: ['rails -v 7.1', 'rake'],
      go: ['github.com/x/y@v1.2.3'],
      npm: ['left-pad@^1.3.0', '@scope/pkg@latest'],
      pip: ['numpy==1.26.4', 'requests>=2,<3', 'torch[cuda]'],
    };
    const e = await ok(pk(p));
    assert.deepEqual(e.config.packages, packages(p));
  });

  test('256 entries of 256 characters are accepted', async () => {
    const list = Array.from({ length: 256 }, (_, i) => `${i}-`.padEnd(256, 'p'));
    const e = await ok(pk({ pip: list }));
    assert.deepEqual(e.config.packages.pip, list);
  });

  for (const l of LISTS) {
    test(`${l}: 257 entries, an empty entry, a 257-character entry, a non-string`, async () => {
      await bad(pk({ [l]: Array.from({ length: 257 }, (_, i) => `p${i}`) }), [l, '256']);
      await bad(pk({ [l]: ['ok', ''] }), [l]);
      await bad(pk({ [l]: ['ok', 'p'.repeat(257)] }), [l]);
      await bad(pk({ [l]: ['ok', 5] }), [l]);
      await bad(pk({ [l]: 'ok' }), [l]);
    });
  }

  test('packages under limited networking need allow_package_managers: true', async () => {
    const cfg = (nw) => ({ config: { type: 'cloud', networking: { type: 'limited', ...nw }, packages: { pip: ['numpy'] } } });
    await bad(cfg({}), [/packages|package_managers/]);
    await bad(cfg({ allow_package_managers: false }), [/packages|package_managers/]);
    const e = await ok(cfg({ allow_package_managers: true }));
    assert.deepEqual(e.config.networking, limited({ allow_package_managers: true }));
    assert.deepEqual(e.config.packages, packages({ pip: ['numpy'] }));
  });

  test('empty package lists under limited networking are not packages', async () => {
    // SPEC is silent; lists that are all empty install nothing, so nothing needs the
    // package managers.
    const e = await ok({
      config: { type: 'cloud', networking: { type: 'limited' }, packages: { type: 'packages', pip: [], npm: [] } },
    });
    assert.deepEqual(e.config.packages, packages());
  });
});

describe('unknown fields', () => {
  test('top level', async () => {
    await bad({ foo: 1 }, ['foo']);
    await bad({ id: 'env_000000000000000000000000' }, ['id']);
  });

  test('inside config, networking and packages', async () => {
    await bad({ config: { type: 'cloud', foo: 1 } }, ['foo']);
    await bad({ config: { type: 'self_hosted', networking: { type: 'unrestricted' } } }, ['networking']);
    await bad({ config: { type: 'cloud', networking: { type: 'unrestricted', allowed_hosts: ['a.com'] } } }, ['allowed_hosts']);
    await bad({ config: { type: 'cloud', networking: { type: 'limited', bar: true } } }, ['bar']);
    await bad({ config: { type: 'cloud', packages: { type: 'packages', yarn: ['x'] } } }, ['yarn']);
  });

  test('on update', async () => {
    const e = await ok({});
    for (const [p, f] of [
      [{ foo: 1 }, 'foo'],
      [{ config: { type: 'cloud', baz: 1 } }, 'baz'],
      [{ config: { type: 'cloud', packages: { yarn: ['x'] } } }, 'yarn'],
      [{ created_at: '2026-01-01T00:00:00.000000Z' }, 'created_at'],
    ]) {
      await expectError(client.beta.environments.update(e.id, p), { cls: SDK.BadRequestError, status: 400, fields: [f] });
    }
    assert.deepEqual(await client.beta.environments.retrieve(e.id), e);
  });
});

describe('wrong types', () => {
  const cases = [
    [{ name: 123 }, 'name'],
    [{ name: true }, 'name'],
    [{ name: ['a'] }, 'name'],
    [{ name: { a: 1 } }, 'name'],
    [{ description: 5 }, 'description'],
    [{ description: {} }, 'description'],
    [{ metadata: [] }, 'metadata'],
    [{ metadata: 'x' }, 'metadata'],
    [{ metadata: 5 }, 'metadata'],
    [{ scope: 'global' }, 'scope'],
    [{ scope: 5 }, 'scope'],
    [{ config: 'cloud' }, 'config'],
    [{ config: [] }, 'config'],
    [{ config: {} }, 'config'],
    [{ config: { type: 'docker' } }, 'config'],
    [{ config: { type: 5 } }, 'config'],
    [{ config: { type: 'cloud', networking: 'limited' } }, 'networking'],
    [{ config: { type: 'cloud', networking: {} } }, 'networking'],
    [{ config: { type: 'cloud', networking: { type: 'open' } } }, 'networking'],
    [{ config: { type: 'cloud', networking: { type: 'limited', allow_mcp_servers: 'yes' } } }, 'allow_mcp_servers'],
    [{ config: { type: 'cloud', networking: { type: 'limited', allow_mcp_servers: 1 } } }, 'allow_mcp_servers'],
    [{ config: { type: 'cloud', networking: { type: 'limited', allow_package_managers: 'true' } } }, 'allow_package_managers'],
    [{ config: { type: 'cloud', networking: { type: 'limited', allowed_hosts: 'a.com' } } }, 'allowed_hosts'],
    [{ config: { type: 'cloud', networking: { type: 'limited', allowed_hosts: [1] } } }, 'allowed_hosts'],
    [{ config: { type: 'cloud', networking: { type: 'limited', allowed_hosts: [null] } } }, 'allowed_hosts'],
    [{ config: { type: 'cloud', packages: [] } }, 'packages'],
    [{ config: { type: 'cloud', packages: 'pip' } }, 'packages'],
    [{ config: { type: 'cloud', packages: { type: 'pkgs' } } }, 'packages'],
    [{ config: { type: 'cloud', packages: { pip: [null] } } }, 'pip'],
  ];
  for (const [p, f] of cases) {
    test(`${JSON.stringify(p)} is 400 naming ${f}`, async () => {
      await bad(p, [f]);
    });
  }

  test('nulls inside a create mean the defaults', async () => {
    // The SDK documents every optional param as "defaults to null".
    const e = await ok({
      config: {
        type: 'cloud',
        networking: { type: 'limited', allowed_hosts: null, allow_mcp_servers: null, allow_package_managers: null },
      },
    });
    assert.deepEqual(e.config, { type: 'cloud', networking: limited(), packages: packages() });
    const f = await ok({ config: { type: 'cloud', networking: null, packages: { pip: null, apt: ['curl'] } } });
    assert.deepEqual(f.config, { type: 'cloud', networking: { type: 'unrestricted' }, packages: packages({ apt: ['curl'] }) });
  });
});

test('no rejected request created anything', async () => {
  const all = await listAll(client, { include_archived: true, limit: 100 });
  assert.deepEqual(new Set(all.map((e) => e.id)), accepted);
});

// Wire conventions (SPEC §1, §4 credentials, §5 health endpoints) with raw requests:
// everything the SDK would never send, and the server's answers to it.
'use strict';
const { test, describe, before, after } = require('node:test');
const assert = require('node:assert/strict');
const net = require('node:net');
const { execFileSync } = require('node:child_process');
const { Server, BETA, BIN } = require('./lib/server');
const {
  SDK,
  REQ_ID_RE,
  CURSOR_RE,
  expectError,
  expectRawError,
  assertEnvironmentShape,
  listAll,
  httpRequest,
} = require('./lib/helpers');

let server;
let key; // org "wire", default account, any workspace
let client;
let snapshot; // every environment of the org, include_archived, newest first
const responses = []; // every raw response, for the request-id and content-type checks

const BASE = '/v1/environments';
const NO_ID = 'env_000000000000000000000000';

// server.raw (adds anthropic-beta, and x-api-key when `key` is given), recorded.
async function raw(method, path, opts = {}) {
  const r = await server.raw(method, path, opts);
  responses.push({ what: `${method} ${path}`, ...r });
  return r;
}

// A fetch that adds nothing at all.
async function bare(method, path, { headers = {}, body } = {}) {
  const res = await fetch(server.url + path, { method, headers, body });
  const text = await res.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {}
  const r = { status: res.status, headers: res.headers, text, json };
  responses.push({ what: `${method} ${path}`, ...r });
  return r;
}

async function nodeReq(method, path, opts = {}) {
  const r = await httpRequest(server.url + path, opts);
  responses.push({ what: `${method} ${path}`, ...r });
  return r;
}

const jsonHeaders = { 'content-type': 'application/json' };
const post = (body, path = BASE) => raw('POST', path, { key, headers: jsonHeaders, body });

before(async () => {
  server = new Server();
  await server.start();
  key = server.createKey({ org: 'wire' });
  client = server.client(key);
  const a = await client.beta.environments.create({ name: 'wire-secret-a', metadata: { color: 'blue' } });
  await client.beta.environments.create({ name: 'wire-secret-b', config: { type: 'self_hosted' }, description: 'b' });
  await client.beta.environments.create({
    name: 'wire-secret-c',
    config: { type: 'cloud', networking: { type: 'limited', allowed_hosts: ['x.example.com'] } },
  });
  await client.beta.environments.archive(a.id);
  await client.beta.environments.create({ name: 'wire-secret-d', scope: 'account' });
  snapshot = await listAll(client, { include_archived: true });
  assert.equal(snapshot.length, 4);
});

after(async () => {
  if (server) {
    await server.stop();
    server.cleanup();
  }
});

describe('credentials', () => {
  test('missing credentials are 401 authentication_error', async () => {
    expectRawError(await raw('GET', BASE), 401);
    expectRawError(await raw('POST', BASE, { headers: jsonHeaders, body: { name: 'wire-unauth' } }), 401);
    expectRawError(await raw('GET', `${BASE}/${snapshot[0].id}`), 401);
    expectRawError(await raw('DELETE', `${BASE}/${snapshot[0].id}`), 401);
  });

  test('unknown credentials are 401, by header and by Bearer', async () => {
    for (const k of ['envd_api_' + 'A'.repeat(43), 'garbage', key + 'x', key.slice(0, -1)]) {
      expectRawError(await raw('GET', BASE, { headers: { 'x-api-key': k } }), 401);
      expectRawError(await raw('GET', BASE, { headers: { authorization: `Bearer ${k}` } }), 401);
    }
    expectRawError(await raw('GET', BASE, { headers: { authorization: 'Bearer ' } }), 401);
    expectRawError(await raw('GET', BASE, { headers: { authorization: `Basic ${key}` } }), 401);
    expectRawError(await raw('GET', BASE, { headers: { authorization: key } }), 401);
  });

  test('the SDK sees AuthenticationError', async () => {
    await expectError(server.client('envd_api_' + 'B'.repeat(43)).beta.environments.list(), {
      cls: SDK.AuthenticationError,
      status: 401,
    });
    await expectError(server.client('nope').beta.environments.create({ name: 'wire-unauth-sdk' }), {
      cls: SDK.AuthenticationError,
      status: 401,
    });
  });

  test('x-api-key and Authorization: Bearer both work', async () => {
    const a = await raw('GET', BASE, { headers: { 'x-api-key': key } });
    assert.equal(a.status, 200, a.text);
    const b = await raw('GET', BASE, { headers: { authorization: `Bearer ${key}` } });
    assert.equal(b.status, 200, b.text);
    assert.deepEqual(a.json, b.json);
    // RFC 9110 §11.1: the auth scheme is case-insensitive.
    const c = await raw('GET', BASE, { headers: { authorization: `bearer ${key}` } });
    assert.equal(c.status, 200, c.text);
  });

  test('an environment key is 403 on environment routes; revoked, it is 401', async () => {
    const env = await client.beta.environments.create({ name: 'wire-keys', config: { type: 'self_hosted' } });
    const created = await post({ name: 'wire-env-key' }, `${BASE}/${env.id}/keys`);
    assert.ok([200, 201].includes(created.status), created.text);
    assert.match(created.json.key, /^envd_env_/);
    assert.match(created.json.id, /^envkey_[0-9A-Za-z]{24}$/);
    const envKey = created.json.key;

    expectRawError(await raw('GET', BASE, { headers: { authorization: `Bearer ${envKey}` } }), 403);
    await expectError(server.client(envKey).beta.environments.retrieve(env.id), {
      cls: SDK.PermissionDeniedError,
      status: 403,
    });

    const del = await raw('DELETE', `${BASE}/${env.id}/keys/${created.json.id}`, { key });
    assert.equal(del.status, 200, del.text);
    assert.deepEqual(del.json, { id: created.json.id, type: 'environment_key_deleted' });

    expectRawError(await raw('GET', BASE, { headers: { authorization: `Bearer ${envKey}` } }), 401);
    await expectError(server.client(envKey).beta.environments.retrieve(env.id), {
      cls: SDK.AuthenticationError,
      status: 401,
    });
    await client.beta.environments.delete(env.id);
  });
});

test('a revoked API key is 401 at once', async () => {
  const name = `wire-revoke-${process.pid}`;
  const k = server.createKey({ org: 'wire', name });
  const before = await raw('GET', BASE, { key: k });
  assert.equal(before.status, 200, before.text);
  // `environd key list`/`revoke` are outside SPEC: take the id from the row that shows
  // the key's unique name (the ID is the first column).
  const out = execFileSync(BIN, ['key', 'list', '--db', server.db], { encoding: 'utf8' });
  const row = out.split('\n').find((l) => l.includes(name));
  assert.ok(row, `key list shows no row named ${name}:\n${out}`);
  execFileSync(BIN, ['key', 'revoke', row.trim().split(/\s+/)[0], '--db', server.db]);
  expectRawError(await raw('GET', BASE, { key: k }), 401);
  await expectError(server.client(k).beta.environments.list(), { cls: SDK.AuthenticationError, status: 401 });
  // The other keys are unaffected.
  assert.equal((await raw('GET', BASE, { key })).status, 200);
});

describe('anthropic-beta and anthropic-version', () => {
  test('missing anthropic-beta is 400 naming the header', async () => {
    expectRawError(await bare('GET', BASE, { headers: { 'x-api-key': key } }), 400, { fields: ['anthropic-beta'] });
    expectRawError(
      await bare('POST', BASE, { headers: { 'x-api-key': key, ...jsonHeaders }, body: '{"name":"wire-nobeta"}' }),
      400,
      { fields: ['anthropic-beta'] },
    );
  });

  test('anthropic-beta without managed-agents-2026-04-01 is 400 naming the header', async () => {
    for (const v of ['', 'files-api-2025-04-14', 'managed-agents-2026-04-02', 'managed-agents-2026-04-01x', 'xmanaged-agents-2026-04-01']) {
      expectRawError(await raw('GET', BASE, { key, headers: { 'anthropic-beta': v } }), 400, { fields: ['anthropic-beta'] });
    }
  });

  test('a comma-separated list containing it works', async () => {
    for (const v of [
      `files-api-2025-04-14,${BETA}`,
      `files-api-2025-04-14, ${BETA}`,
      `${BETA} , other-2025-01-01`,
    ]) {
      const r = await raw('GET', BASE, { key, headers: { 'anthropic-beta': v } });
      assert.equal(r.status, 200, `${v}: ${r.text}`);
    }
  });

  test('anthropic-version is optional and any value is accepted', async () => {
    for (const v of ['2023-06-01', 'banana']) {
      const r = await raw('GET', BASE, { key, headers: { 'anthropic-version': v } });
      assert.equal(r.status, 200, r.text);
    }
    assert.equal((await raw('GET', BASE, { key })).status, 200);
  });
});

describe('request bodies', () => {
  const cases = [
    ['broken JSON', '{"name":'],
    ['an empty body', ''],
    ['bare whitespace', '  \n'],
    ['single quotes', "{'name':'wire-x'}"],
    ['a comment', '{"name":"wire-x" /* c */}'],
    ['an unescaped control character', '{"name":"wire-\u0001x"}'],
    ['a lone surrogate escape', '{"name":"wire-\\ud800x"}'],
    ['duplicate keys', '{"name":"wire-dup-a","name":"wire-dup-b"}'],
    ['duplicate nested keys', '{"name":"wire-dup-meta","metadata":{"k":"1","k":"2"}}'],
    ['trailing garbage', '{"name":"wire-tg1"} x'],
    ['a second document', '{"name":"wire-tg2"}{}'],
    ['a trailing comma', '{"name":"wire-tg3",}'],
    ['an array', '[]'],
    ['an array of an object', '[{"name":"wire-arr"}]'],
    ['a string', '"wire-str"'],
    ['a number', '42'],
    ['null', 'null'],
    ['true', 'true'],
    ['deep nesting', '{"name":"wire-deep","metadata":' + '['.repeat(100000) + ']'.repeat(100000) + '}'],
  ];
  for (const [what, body] of cases) {
    test(`${what} is 400 invalid_request_error`, async () => {
      expectRawError(await post(body), 400);
    });
  }

  test('invalid UTF-8 is 400', async () => {
    const prefix = Buffer.from('{"name":"wire-');
    const suffix = Buffer.from('"}');
    for (const bytes of [[0xff, 0xfe], [0xc0, 0xaf], [0xe2, 0x82], [0xed, 0xa0, 0x80], [0x80]]) {
      const r = await post(Buffer.concat([prefix, Buffer.from(bytes), suffix]));
      expectRawError(r, 400);
    }
  });

  test('update bodies get the same treatment', async () => {
    const id = snapshot[1].id;
    for (const body of ['{"description":', '{"description":"a","description":"b"}', '{"description":"x"} y', '[]', '"s"']) {
      expectRawError(await post(body, `${BASE}/${id}`), 400);
    }
  });

  test('trailing whitespace is not garbage', async () => {
    // SPEC is silent; JSON allows whitespace after the value.
    const r = await post('{"name":"wire-ws"}\r\n \t');
    assert.equal(r.status, 200, r.text);
    await client.beta.environments.delete(r.json.id);
  });

  // A JSON body of exactly n bytes whose description is too long (so it is a 400 when
  // the size is accepted).
  function bodyOfSize(n) {
    const head = '{"name":"wire-big","description":"';
    const tail = '"}';
    return head + 'x'.repeat(n - head.length - tail.length) + tail;
  }

  test('a body of exactly 1 MiB is read (400 for its content, not 413)', async () => {
    const body = bodyOfSize(1024 * 1024);
    assert.equal(Buffer.byteLength(body), 1048576);
    const r = await nodeReq('POST', BASE, { method: 'POST', headers: { ...jsonHeaders, 'anthropic-beta': BETA, 'x-api-key': key }, body });
    expectRawError(r, 400, { fields: ['description'] });
  });

  test('a body of 1 MiB + 1 is 413 request_too_large', async () => {
    const body = bodyOfSize(1024 * 1024 + 1);
    const h = { ...jsonHeaders, 'anthropic-beta': BETA, 'x-api-key': key };
    expectRawError(await nodeReq('POST', BASE, { method: 'POST', headers: h, body }), 413);
    expectRawError(await nodeReq('POST', `${BASE}/${snapshot[1].id}`, { method: 'POST', headers: h, body }), 413);
  });

  test('a chunked body over 1 MiB is 413 too', async () => {
    const body = bodyOfSize(2 * 1024 * 1024);
    const h = { ...jsonHeaders, 'anthropic-beta': BETA, 'x-api-key': key };
    expectRawError(await nodeReq('POST', BASE, { method: 'POST', headers: h, body, chunked: true }), 413);
  });

  test('a chunked body that goes on far past the limit is cut off; the server stays up', async () => {
    // 40 MiB without a Content-Length: the server stops reading after about 17 MiB.
    const body = Buffer.alloc(40 * 1024 * 1024, 'x');
    const h = { ...jsonHeaders, 'anthropic-beta': BETA, 'x-api-key': key };
    await assert.rejects(nodeReq('POST', BASE, { method: 'POST', headers: h, body, chunked: true }), /ECONNRESET|EPIPE|socket hang up/);
    const r = await nodeReq('GET', `${BASE}/${snapshot[1].id}`, { headers: { 'anthropic-beta': BETA, 'x-api-key': key } });
    assert.equal(r.status, 200);
  });
});

test('ambiguous framing (two different Content-Lengths) is refused, nothing is created', async () => {
  // RFC 9112 §6.3: differing Content-Length values are an unrecoverable framing error.
  const body = '{"name":"wire-smuggle"}';
  const req =
    'POST /v1/environments HTTP/1.1\r\nHost: 127.0.0.1\r\n' +
    `x-api-key: ${key}\r\nanthropic-beta: ${BETA}\r\ncontent-type: application/json\r\n` +
    `Content-Length: ${body.length}\r\nContent-Length: ${body.length + 20}\r\nConnection: close\r\n\r\n` +
    body;
  const answer = await new Promise((resolve, reject) => {
    let buf = '';
    const sock = net.connect(server.port, '127.0.0.1', () => sock.write(req));
    sock.on('data', (d) => (buf += d));
    sock.on('end', () => resolve(buf));
    sock.on('close', () => resolve(buf));
    sock.on('error', (e) => (buf ? resolve(buf) : reject(e)));
  });
  assert.match(answer, /^HTTP\/1\.[01] 400 /, `answer: ${answer.slice(0, 200)}`);
  const all = await listAll(client, { include_archived: true });
  assert.ok(!all.some((e) => e.name === 'wire-smuggle'));
});

describe('routes and methods', () => {
  test('unknown routes are 404 not_found_error', async () => {
    for (const p of ['/v1/nope', '/v2/environments', '/', '/v1', `${BASE}/${snapshot[0].id}/nope`, `${BASE}/${snapshot[0].id}/archive/x`]) {
      expectRawError(await raw('GET', p, { key }), 404);
    }
  });

  test('odd ids are 404, never a crash', async () => {
    for (const id of [NO_ID, '%00', 'env_%2F..%2F..', 'x'.repeat(2000), '%F0%9F%9A%80', '%ff']) {
      expectRawError(await raw('GET', `${BASE}/${id}`, { key }), 404);
    }
  });

  test('path segments are percent-decoded', async () => {
    const e = snapshot[1];
    const encoded = [...e.id].map((ch) => '%' + ch.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')).join('');
    const r = await raw('GET', `${BASE}/${encoded}`, { key });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json, e);
  });

  const allowOf = (r) =>
    new Set(
      (r.headers.get('allow') || '')
        .split(',')
        .map((s) => s.trim().toUpperCase())
        .filter(Boolean),
    );

  for (const [method, path, must] of [
    ['PUT', BASE, ['GET', 'POST']],
    ['DELETE', BASE, ['GET', 'POST']],
    ['PATCH', `${BASE}/${NO_ID}`, ['GET', 'POST', 'DELETE']],
    ['PUT', `${BASE}/ID`, ['GET', 'POST', 'DELETE']],
    ['GET', `${BASE}/ID/archive`, ['POST']],
    ['DELETE', `${BASE}/ID/archive`, ['POST']],
  ]) {
    test(`${method} ${path} is 405 with Allow: ${must.join(', ')}`, async () => {
      const p = path.replace('ID', snapshot[0].id);
      const r = await raw(method, p, { key, headers: jsonHeaders, body: method === 'GET' ? undefined : '{}' });
      expectRawError(r, 405);
      const allow = allowOf(r);
      for (const m of must) assert.ok(allow.has(m), `Allow ${r.headers.get('allow')} lacks ${m}`);
      assert.ok(!allow.has(method), `Allow ${r.headers.get('allow')} lists ${method}`);
    });
  }
});

describe('query parameters', () => {
  for (const v of ['0', '101', '-1', 'abc', '99999999999999999999', '1.5', '0x10', '5abc']) {
    test(`limit=${v} is 400 naming limit`, async () => {
      expectRawError(await raw('GET', `${BASE}?limit=${v}`, { key }), 400, { fields: ['limit'] });
    });
  }

  test('limit 1 and 100 are fine', async () => {
    const a = await raw('GET', `${BASE}?limit=1`, { key });
    assert.equal(a.status, 200, a.text);
    assert.equal(a.json.data.length, 1);
    assert.match(a.json.next_page, CURSOR_RE);
    const b = await raw('GET', `${BASE}?limit=100&include_archived=true`, { key });
    assert.equal(b.status, 200, b.text);
    assert.deepEqual(b.json, { data: snapshot, next_page: null });
  });

  test('include_archived other than true/false is 400', async () => {
    // SPEC is silent; a boolean that is neither is a client bug worth reporting.
    expectRawError(await raw('GET', `${BASE}?include_archived=maybe`, { key }), 400, { fields: ['include_archived'] });
  });

  test('unknown query parameters are ignored', async () => {
    const plain = await raw('GET', `${BASE}?include_archived=true`, { key });
    for (const q of ['beta=true&include_archived=true', 'include_archived=true&foo=bar&x', 'include_archived=true&beta=true&beta=false']) {
      const r = await raw('GET', `${BASE}?${q}`, { key });
      assert.equal(r.status, 200, `${q}: ${r.text}`);
      assert.deepEqual(r.json, plain.json);
    }
    const one = await raw('GET', `${BASE}/${snapshot[0].id}?beta=true`, { key });
    assert.deepEqual(one.json, snapshot[0]);
  });

  test('empty page= means absent', async () => {
    const a = await raw('GET', `${BASE}?limit=2&include_archived=true`, { key });
    const b = await raw('GET', `${BASE}?limit=2&include_archived=true&page=`, { key });
    assert.equal(b.status, 200, b.text);
    assert.deepEqual(b.json, a.json);
    assert.deepEqual(a.json.data, snapshot.slice(0, 2));
  });

  test('a real cursor works', async () => {
    const a = await raw('GET', `${BASE}?limit=2&include_archived=true`, { key });
    const b = await raw('GET', `${BASE}?limit=2&include_archived=true&page=${encodeURIComponent(a.json.next_page)}`, { key });
    assert.equal(b.status, 200, b.text);
    assert.deepEqual(b.json, { data: snapshot.slice(2, 4), next_page: null });
  });

  test('forged cursors are 400 naming page', async () => {
    const a = await raw('GET', `${BASE}?limit=1&include_archived=true`, { key });
    const cur = a.json.next_page;
    assert.match(cur, CURSOR_RE);
    const forged = ['page_garbage', 'garbage', 'page_', 'page_!!!!', cur.slice(0, -4), cur + 'A', cur.slice(5), 'page_' + 'A'.repeat(4096)];
    // Flip each character of the body (toggling the top bit of its 6-bit value always
    // changes the decoded bytes).
    const ALPHA = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    for (let i = 5; i < cur.length; i++) {
      const idx = ALPHA.indexOf(cur[i]);
      assert.ok(idx >= 0);
      forged.push(cur.slice(0, i) + ALPHA[idx ^ 32] + cur.slice(i + 1));
    }
    for (const f of forged) {
      const r = await raw('GET', `${BASE}?limit=1&include_archived=true&page=${encodeURIComponent(f)}`, { key });
      expectRawError(r, 400, { fields: ['page'] });
    }
  });

  test('a cursor from another workspace or organization is 400', async () => {
    const side = server.createKey({ org: 'wire', workspace: 'side' });
    const sideClient = server.client(side);
    await sideClient.beta.environments.create({ name: 'side-1' });
    await sideClient.beta.environments.create({ name: 'side-2' });
    const sideCursor = (await sideClient.beta.environments.list({ limit: 1 })).next_page;
    assert.match(sideCursor, CURSOR_RE);

    const other = server.client(server.createKey({ org: 'wire-other' }));
    await other.beta.environments.create({ name: 'other-1' });
    await other.beta.environments.create({ name: 'other-2' });
    const otherCursor = (await other.beta.environments.list({ limit: 1 })).next_page;
    assert.match(otherCursor, CURSOR_RE);

    for (const c of [sideCursor, otherCursor]) {
      const r = await raw('GET', `${BASE}?limit=1&page=${encodeURIComponent(c)}`, { key });
      expectRawError(r, 400, { fields: ['page'] });
    }
    // Through the SDK too.
    await expectError(client.beta.environments.list({ page: otherCursor }), { cls: SDK.BadRequestError, status: 400 });
  });
});

describe('health endpoints', () => {
  test('/healthz and /readyz are 200 without credentials or beta header', async () => {
    for (const p of ['/healthz', '/readyz']) {
      const r = await bare('GET', p);
      assert.equal(r.status, 200, `${p}: ${r.text}`);
    }
  });

  test('/metrics is Prometheus text without credentials and reveals no tenant data', async () => {
    const r = await bare('GET', '/metrics');
    assert.equal(r.status, 200, r.text);
    assert.match(r.headers.get('content-type') || '', /^text\/plain/);
    assert.match(r.text, /^# (HELP|TYPE) /m);
    for (const e of snapshot) {
      assert.ok(!r.text.includes(e.id), `metrics reveal ${e.id}`);
      assert.ok(!r.text.includes(e.name), `metrics reveal ${e.name}`);
    }
    assert.ok(!r.text.includes(key));
    assert.ok(!r.text.includes('wire-other'));
  });
});

describe('after the abuse', () => {
  test('every response carried a unique request-id', async () => {
    assert.ok(responses.length > 100);
    const seen = new Set();
    for (const r of responses) {
      const id = r.headers.get('request-id');
      assert.match(id || '', REQ_ID_RE, `${r.what} → ${r.status} has request-id ${id}`);
      assert.ok(!seen.has(id), `request-id ${id} repeated (${r.what})`);
      seen.add(id);
    }
  });

  test('every JSON body came with Content-Type: application/json', async () => {
    for (const r of responses) {
      if (r.json !== undefined && r.json !== null && typeof r.json === 'object')
        assert.match(r.headers.get('content-type') || '', /^application\/json/, `${r.what} → ${r.status}`);
    }
  });

  test('the server is alive and every stored environment is intact', async () => {
    assert.equal(server.proc.exitCode, null);
    assert.equal(server.proc.signalCode, null);
    const now = await listAll(client, { include_archived: true });
    assert.deepEqual(now, snapshot);
    for (const e of snapshot) {
      assertEnvironmentShape(e);
      assert.deepEqual(await client.beta.environments.retrieve(e.id), e);
    }
    const r = await raw('GET', '/healthz');
    assert.equal(r.status, 200);
  });
});

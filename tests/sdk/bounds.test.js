// What a hostile or careless client cannot do to the server: make it parse a body into
// gigabytes, make a list unreadable, read the store's files, start it on a store it cannot
// write, take work through a revoked key, slip fields or odd integers past validation,
// push another tenant's workers out of workers_polling, or switch on the fault seam.
'use strict';
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const { Server, BETA } = require('./lib/server');
const { httpRequest, expectRawError, listAll } = require('./lib/helpers');
const { selfHosted, enqueueOk, decodeSecret, waitFor } = require('./lib/work');
const { sqliteOnly } = require('./lib/pg');

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

// Peak and current resident set of a process, in MiB (Linux).
function rss(pid) {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (name) => Number((status.match(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm')) || [])[1]);
  return { peak: kib('VmHWM') / 1024, now: kib('VmRSS') / 1024 };
}

// 1 MiB of `[{},{},…]`: a few bytes per value, tens of bytes each once parsed.
function amplifier() {
  const n = Math.floor((1024 * 1024 - 2) / 3);
  return '[' + '{},'.repeat(n - 1) + '{}]';
}

// A work item delivered to a poller, with its session token.
async function delivered(name) {
  const { envId, envKey, worker } = await selfHosted(server, key, name);
  const item = await enqueueOk(server, key, envId, `sesn_${name}`);
  const polled = await worker.beta.environments.work.poll(envId);
  assert.equal(polled.id, item.id);
  return { envId, envKey, workId: item.id, token: decodeSecret(polled.secret).sessions_token };
}

test('32 concurrent 1 MiB bodies of [{},{},…] are refused unparsed; the heap stays bounded', async () => {
  const { envId, workId, token } = await delivered('amp');
  const body = amplifier();
  const post = (p, credential) =>
    httpRequest(server.url + p, {
      method: 'POST',
      headers: { 'anthropic-beta': BETA, 'content-type': 'application/json', 'x-api-key': credential },
      body,
    });
  const heartbeat = `/v1/environments/${envId}/work/${workId}/heartbeat`;
  const replies = await Promise.all([
    // The weakest credential on a route that takes no body.
    ...Array.from({ length: 16 }, () => post(heartbeat, token)),
    // The strongest one on a route that takes a body: bounded by values, not only bytes.
    ...Array.from({ length: 12 }, () => post('/v1/environments', key)),
    // No valid credential: refused before the body is looked at.
    ...Array.from({ length: 4 }, () => post('/v1/environments', 'envd_api_nope')),
  ]);
  const m = rss(server.proc.pid);
  // Before the bound this took the server past 2 GB; the figure itself is for bench/.
  assert.ok(m.peak < 600, `peak RSS ${m.peak.toFixed(0)} MiB`);
  for (const r of replies.slice(0, 16)) expectRawError(r, 400, { fields: ['body'] });
  for (const r of replies.slice(16, 28)) expectRawError(r, 400, { fields: ['body', '10000', 'limit'] });
  for (const r of replies.slice(28)) expectRawError(r, 401);
  // The server still works, and the item is untouched.
  const get = await server.raw('GET', `/v1/environments/${envId}/work/${workId}`, { key });
  assert.equal(get.status, 200);
  assert.equal(get.json.state, 'queued');
});

test('a body that is too deep names the limit; bodies the SDK sends still pass', async () => {
  const deep = '{"name":' + '['.repeat(40) + ']'.repeat(40) + '}';
  const r = await server.raw('POST', '/v1/environments', { key, body: Buffer.from(deep), headers: { 'content-type': 'application/json' } });
  expectRawError(r, 400, { fields: ['body', 'nested', '32'] });
  const env = await server.client(key).beta.environments.create({ name: 'sdk-body', config: { type: 'self_hosted' } });
  assert.equal((await server.client(key).beta.environments.archive(env.id)).id, env.id);
});

test('ack, heartbeat and archive take no fields: {} passes, any field is a 400 naming it; GET takes no body', async () => {
  const { envId, workId, token } = await delivered('fields');
  const h = { headers: { authorization: `Bearer ${token}` } };
  const base = `/v1/environments/${envId}/work/${workId}`;
  for (const route of ['ack', 'heartbeat']) {
    const r = await server.raw('POST', `${base}/${route}`, { ...h, body: { surprise: 1 } });
    expectRawError(r, 400, { fields: ['surprise', 'unknown field'] });
  }
  const env = await server.client(key).beta.environments.create({ name: 'fields-archive', config: { type: 'cloud' } });
  const ar = await server.raw('POST', `/v1/environments/${env.id}/archive`, { key, body: { reason: 'x' } });
  expectRawError(ar, 400, { fields: ['reason', 'unknown field'] });
  // Nothing happened through the refused requests.
  assert.equal((await server.raw('GET', base, { key })).json.state, 'queued');
  assert.equal((await server.raw('GET', `/v1/environments/${env.id}`, { key })).json.archived_at, null);
  // An empty object is no field at all.
  assert.equal((await server.raw('POST', `${base}/ack`, { ...h, body: {} })).status, 200);
  assert.equal((await server.raw('POST', `${base}/heartbeat`, { ...h, body: {} })).status, 200);
  assert.equal((await server.raw('POST', `/v1/environments/${env.id}/archive`, { key, body: {} })).status, 200);
  // The SDK's own calls (no body) keep working.
  const w = server.client(token).beta.environments.work;
  assert.equal((await w.heartbeat(workId, { environment_id: envId })).state, 'active');
  // A GET with a body is refused, naming the body.
  const g = await httpRequest(`${server.url}/v1/environments`, {
    method: 'GET',
    headers: { 'anthropic-beta': BETA, 'x-api-key': key, 'content-type': 'application/json' },
    body: '{}',
  });
  expectRawError(g, 400, { fields: ['body', 'takes no body'] });
});

test('limit and the other integer parameters take digits only', async () => {
  const { envId, envKey } = await selfHosted(server, key, 'ints');
  for (const v of ['+5', '%205', '5%20', '5%00', '%005', '-5', '5.0', '1e1', '0x5', '', '0', '101', '99999999999999999999']) {
    const r = await server.raw('GET', `/v1/environments?limit=${v}`, { key });
    expectRawError(r, 400, { fields: ['limit'] });
    const w = await server.raw('GET', `/v1/environments/${envId}/work?limit=${v}`, { headers: { authorization: `Bearer ${envKey}` } });
    expectRawError(w, 400, { fields: ['limit'] });
  }
  for (const v of ['5%00', '+5', '%205']) {
    const r = await server.raw('GET', `/v1/environments/${envId}/work/poll?block_ms=${v}`, { headers: { authorization: `Bearer ${envKey}` } });
    expectRawError(r, 400, { fields: ['block_ms'] });
  }
  for (const v of ['5', '05', '100']) assert.equal((await server.raw('GET', `/v1/environments?limit=${v}`, { key })).status, 200, v);
});

// Environments of about 1 MB each: seven package lists of 256-character names made of
// 4-byte characters, just under the 1 MiB body limit.
function bigConfig(i) {
  const name = (k) => String(i).padStart(3, '0') + String(k).padStart(4, '0') + '\u{1F600}'.repeat(249);
  const list = (p) => Array.from({ length: 140 }, (_, k) => name(p * 1000 + k));
  return { type: 'cloud', networking: { type: 'unrestricted' }, packages: { type: 'packages', apt: list(0), cargo: list(1), gem: list(2), go: list(3), npm: list(4), pip: list(5) } };
}

test('a list of ~1 MB environments pages instead of failing; the SDK reads all of them', async () => {
  const ws = 'big';
  const big = server.client(key, { defaultHeaders: { 'anthropic-workspace-id': ws } });
  const created = [];
  for (let i = 0; i < 10; i++) {
    const body = JSON.stringify({ name: `big-${i}`, config: bigConfig(i) });
    assert.ok(body.length < 1024 * 1024, `body ${body.length}`);
    const r = await server.raw('POST', '/v1/environments', { key, headers: { 'anthropic-workspace-id': ws, 'content-type': 'application/json' }, body });
    assert.equal(r.status, 200, r.text.slice(0, 300));
    created.push(r.json.id);
  }
  // One raw page: fewer than the limit, a valid cursor, a reply well under 10 MB.
  const first = await server.raw('GET', '/v1/environments?limit=100', { key, headers: { 'anthropic-workspace-id': ws } });
  assert.equal(first.status, 200, first.text.slice(0, 300));
  // A page holds at most STORE_PAGE_BYTES (2 MiB) of stored environments: two of these.
  assert.ok(first.json.data.length >= 1 && first.json.data.length <= 2, `page of ${first.json.data.length}`);
  assert.match(first.json.next_page, /^page_/);
  assert.ok(first.text.length < 6 * 1024 * 1024, `reply of ${first.text.length} bytes`);
  // The SDK's auto-pagination sees every one exactly once, newest first.
  const seen = (await listAll(big, { limit: 20 })).map((e) => e.id);
  assert.deepEqual(seen, [...created].reverse());
  // Concurrent lists all answer.
  const lists = await Promise.all(Array.from({ length: 8 }, () => server.raw('GET', '/v1/environments', { key, headers: { 'anthropic-workspace-id': ws } })));
  for (const l of lists) assert.equal(l.status, 200);
});

test('the store files are 0600, also when they were not before a restart', {
  skip: sqliteOnly('the modes of the database, -wal and -shm files'),
}, async () => {
  const s = new Server();
  await s.start();
  try {
    s.createKey();
    const files = ['', '-wal', '-shm'].map((x) => s.db + x);
    await waitFor(() => files.every((f) => fs.existsSync(f)), { what: 'the store files' });
    for (const f of files) assert.equal(fs.statSync(f).mode & 0o777, 0o600, f);
    await s.stop();
    for (const f of files) if (fs.existsSync(f)) fs.chmodSync(f, 0o644);
    await s.start();
    for (const f of files) if (fs.existsSync(f)) assert.equal(fs.statSync(f).mode & 0o777, 0o600, `${f} after restart`);
  } finally {
    await s.stop();
    s.cleanup();
  }
});

// chattr needs root (CAP_LINUX_IMMUTABLE) and a file system that keeps the flag.
function chattr(flag, file) {
  try {
    execFileSync('chattr', [flag, file], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

for (const which of ['', '-shm']) {
  test(`a store whose ${which ? '-shm' : 'database'} cannot be written is refused at start, naming it`, {
    skip: sqliteOnly(`an immutable ${which ? '-shm' : 'database'} file`),
  }, async (t) => {
    const s = new Server();
    await s.start();
    s.createKey();
    await s.stop();
    const file = s.db + which;
    if (!fs.existsSync(file)) fs.writeFileSync(file, '');
    if (!chattr('+i', file)) {
      s.cleanup();
      return t.skip('chattr +i is not available here');
    }
    try {
      await assert.rejects(s.start(), /did not start/);
      const exit = await s.exited;
      assert.equal(exit.sig, null, `killed by ${exit.sig}: ${s.stderr}`);
      assert.equal(exit.code, 1);
      assert.match(s.stderr, new RegExp(`${path.basename(file)}.*cannot be opened for writing`));
    } finally {
      chattr('-i', file);
      s.cleanup();
    }
  });
}

test('a poll held across the revocation of its key gets no item', async () => {
  const { envId } = await selfHosted(server, key, 'revoke');
  for (let attempt = 0; attempt < 5; attempt++) {
    const k = await server.raw('POST', `/v1/environments/${envId}/keys`, { key, body: { name: `r${attempt}` } });
    const held = server.raw('GET', `/v1/environments/${envId}/work/poll?block_ms=999`, { headers: { authorization: `Bearer ${k.json.key}` } });
    const heldNow = async () => /environd_polls_held [1-9]/.test((await server.raw('GET', '/metrics')).text);
    await waitFor(heldNow, { timeoutMs: 900, intervalMs: 5, what: 'the poll to be held' }).catch(() => null);
    await server.raw('DELETE', `/v1/environments/${envId}/keys/${k.json.id}`, { key });
    const item = await enqueueOk(server, key, envId, `sesn_revoke_${attempt}`);
    const r = await held;
    if (r.status === 200 && r.json === null) continue; // answered at its deadline before the revoke: try again
    expectRawError(r, 401, { fields: ['revoked'] });
    assert.equal((await server.raw('GET', `/v1/environments/${envId}/work/${item.id}`, { key })).json.state, 'queued');
    return;
  }
  assert.fail('the held poll never overlapped the revocation');
});

// The table of worker ids is small here (32), so that flooding it takes ~200 polls, a second
// or two even on a loaded machine: every id stays inside the 30 s `workers_polling` horizon,
// which is what the counts below rely on. Own server with the test clock, to show the
// horizon is what ends a count (not the flood), without sleeping 30 s.
test("one tenant's worker ids do not push another tenant's out of workers_polling", async () => {
  const TABLE = 32;
  const srv = new Server({ args: ['--max-workers-tracked', String(TABLE), '--test-clock'] });
  await srv.start();
  try {
    const mine = srv.createKey();
    const other = srv.createKey({ org: 'other-org' });
    const poll = (envId, envKey, id) =>
      srv.raw('GET', `/v1/environments/${envId}/work/poll`, { headers: { authorization: `Bearer ${envKey}`, 'anthropic-worker-id': id } });
    const stats = async (c, envId) => {
      const r = await srv.raw('GET', `/v1/environments/${envId}/work/stats`, { key: c });
      assert.equal(r.status, 200);
      return r.json.workers_polling;
    };
    const b = await selfHosted(srv, other, 'victim');
    for (const id of ['b-1', 'b-2', 'b-3']) assert.equal((await poll(b.envId, b.envKey, id)).status, 200);
    assert.equal(await stats(other, b.envId), 3);
    // Tenant A sends random ids to three environments: each alone twice what the whole
    // table holds, so the table is full and must make room over and over.
    const a = await Promise.all([0, 1, 2].map((i) => selfHosted(srv, mine, `flood-${i}`)));
    for (const e of a) {
      for (let i = 0; i < 2 * TABLE; i += 16)
        await Promise.all(Array.from({ length: 16 }, (_, j) => poll(e.envId, e.envKey, `a-${Math.random()}-${i + j}`)));
    }
    // Room was made from the environment holding the most: B keeps all of its ids, A's
    // environments share the rest, none of them grows past the table.
    assert.equal(await stats(other, b.envId), 3);
    const counts = [];
    for (const e of a) counts.push(await stats(mine, e.envId));
    for (const n of counts) assert.ok(n >= 1 && n <= TABLE - 3, `A's environment counts ${n} of a table of ${TABLE}`);
    assert.ok(counts.reduce((x, y) => x + y, 0) <= TABLE - 3, `A counts ${counts} next to B's 3 in a table of ${TABLE}`);
    // A new worker of B is still counted, though the table is full.
    assert.equal((await poll(b.envId, b.envKey, 'b-4')).status, 200);
    assert.equal(await stats(other, b.envId), 4);
    // 30 s later nobody has polled: every count is 0, and the stale ids hold no room.
    const moved = await srv.raw('POST', '/v1/environd/test/clock', { key: mine, body: { advance_ms: 30000 } });
    assert.equal(moved.status, 200, moved.text);
    assert.equal(await stats(other, b.envId), 0);
    for (const e of a) assert.equal(await stats(mine, e.envId), 0);
    for (let i = 0; i < TABLE - 1; i++) assert.equal((await poll(b.envId, b.envKey, `b-late-${i}`)).status, 200);
    assert.equal(await stats(other, b.envId), TABLE - 1);
  } finally {
    await srv.stop();
    srv.cleanup();
  }
});

test('the fault seam is off unless the flag asks for it: its old environment variable does nothing', async () => {
  const s = new Server({ env: { ENVIROND_TEST_STORE_FAULT_EVERY: '1' } });
  await s.start();
  try {
    const k = s.createKey();
    for (let i = 0; i < 5; i++) assert.equal((await s.raw('GET', '/v1/environments', { key: k })).status, 200);
    assert.doesNotMatch(s.stderr, /store_fault_injection/);
  } finally {
    await s.stop();
    s.cleanup();
  }
});

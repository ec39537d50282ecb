// The HTTP edge under attack, with raw sockets where fetch or the SDK would normalise the
// request: smuggling (CL.CL, CL.TE, TE.CL, whitespace, NUL, duplicates, unknown codings),
// encoded slashes, HEAD on a poll, 413 read by the client, the body budget, the request-head
// deadline (slowloris), the per-address share and the descriptor limit.
'use strict';
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const net = require('node:net');
const fs = require('node:fs');
const { spawn } = require('node:child_process');
const path = require('node:path');
const { Server, BETA, BIN, sleep } = require('./lib/server');
const { SDK, listAll } = require('./lib/helpers');
const { selfHosted, enqueueOk, waitFor } = require('./lib/work');

let server;
let key;
let client;

before(async () => {
  server = new Server();
  await server.start();
  key = server.createKey({ org: 'edge' });
  client = server.client(key);
});

after(async () => {
  await server.stop();
  server.cleanup();
});

// Sends raw bytes, reads until the server closes (or guardMs passes). Resolves with what was
// read and whether the server closed the connection.
function rawExchange(port, bytes, { guardMs = 8000, localAddress } = {}) {
  return new Promise((resolve) => {
    const chunks = [];
    let done = false;
    const sock = net.connect({ port, host: '127.0.0.1', localAddress }, () => sock.write(bytes));
    const finish = (closed) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      resolve({ text: Buffer.concat(chunks).toString('latin1'), closed });
    };
    const timer = setTimeout(() => finish(false), guardMs);
    sock.on('data', (d) => chunks.push(d));
    sock.on('end', () => finish(true));
    sock.on('close', () => finish(true));
    sock.on('error', () => finish(true));
  });
}

function statuses(text) {
  return [...text.matchAll(/HTTP\/1\.[01] (\d{3}) /g)].map((m) => Number(m[1]));
}

// A complete request that would create an environment named `name` if it ever ran.
function hiddenCreate(name) {
  const body = JSON.stringify({ name });
  return (
    'POST /v1/environments HTTP/1.1\r\nHost: 127.0.0.1\r\n' +
    `x-api-key: ${key}\r\nanthropic-beta: ${BETA}\r\ncontent-type: application/json\r\n` +
    `Content-Length: ${body.length}\r\n\r\n${body}`
  );
}

function auth(k = key) {
  return `x-api-key: ${k}\r\nanthropic-beta: ${BETA}\r\n`;
}

// Each case: a request head (and body) that smuggles `hidden` after a framing trick.
const smuggles = {
  'CL.CL (0 then the real length)': (hidden) =>
    `GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: ${hidden.length}\r\n\r\n${hidden}`,
  'CL.CL (equal lengths)': (hidden) =>
    `GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n${hidden}`,
  'CL.TE': (hidden) =>
    `POST /v1/environments HTTP/1.1\r\nHost: x\r\n${auth()}Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${hidden}`,
  'TE.CL': (hidden) =>
    `POST /v1/environments HTTP/1.1\r\nHost: x\r\n${auth()}Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n` +
    `${hidden.length.toString(16)}\r\n${hidden}\r\n0\r\n\r\n`,
  'Transfer-Encoding with a space before the colon': (hidden) =>
    `GET /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\nContent-Length: 0\r\n\r\n${hidden}`,
  'a tab inside a header name': (hidden) =>
    `GET /healthz HTTP/1.1\r\nHost: x\r\nContent\tLength: 3\r\n\r\n${hidden}`,
  'Transfer-Encoding: gzip': (hidden) => `GET /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n${hidden}`,
  'Transfer-Encoding: chunked, identity': (hidden) =>
    `GET /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n${hidden}`,
  'two Transfer-Encoding headers': (hidden) =>
    `GET /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${hidden}`,
  'NUL inside the credential': (hidden) =>
    `GET /v1/environments HTTP/1.1\r\nHost: x\r\nx-api-key: ${key}\0junk\r\nanthropic-beta: ${BETA}\r\n\r\n${hidden}`,
  'NUL inside the last header': (hidden) =>
    `GET /v1/environments HTTP/1.1\r\nHost: x\r\nanthropic-beta: ${BETA}\r\nx-api-key: ${key}\0\0\0\0junk\r\n\r\n${hidden}`,
  'a bare CR inside a header': (hidden) =>
    `GET /healthz HTTP/1.1\r\nHost: x\r\nX-a: b\rContent-Length: ${hidden.length}\r\n\r\n${hidden}`,
  'two Host headers': (hidden) => `GET /healthz HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n${hidden}`,
  'two x-api-key headers': (hidden) =>
    `GET /v1/environments HTTP/1.1\r\nHost: x\r\n${auth()}x-api-key: other\r\n\r\n${hidden}`,
  'two Authorization headers': (hidden) =>
    `GET /v1/environments HTTP/1.1\r\nHost: x\r\nanthropic-beta: ${BETA}\r\nAuthorization: Bearer ${key}\r\n` +
    `Authorization: Bearer ${key}\r\n\r\n${hidden}`,
};

test('every framing trick gets one 400, the connection closes, and the hidden request never runs', async () => {
  const names = [];
  let i = 0;
  for (const [what, build] of Object.entries(smuggles)) {
    const name = `smuggled-${i++}`;
    names.push(name);
    const r = await rawExchange(server.port, Buffer.from(build(hiddenCreate(name)), 'latin1'));
    assert.ok(r.closed, `${what}: the connection stayed open after: ${r.text.slice(0, 300)}`);
    assert.deepEqual(statuses(r.text), [400], `${what}: ${r.text.slice(0, 400)}`);
    assert.match(r.text, /\r\nConnection: close\r\n/i, what);
    assert.match(r.text, /"type":"invalid_request_error"/, what);
    assert.match(r.text, /request framing: /, what);
  }
  const all = await listAll(client, { include_archived: true });
  const created = all.filter((e) => names.includes(e.name)).map((e) => e.name);
  assert.deepEqual(created, [], 'hidden requests ran');
});

test('a clean pipelined request still runs (the checks do not break keep-alive)', async () => {
  const name = 'pipelined-ok';
  const first = `GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n`;
  const second = hiddenCreate(name).replace('HTTP/1.1\r\n', 'HTTP/1.1\r\nConnection: close\r\n');
  const r = await rawExchange(server.port, Buffer.from(first + second));
  assert.deepEqual(statuses(r.text), [200, 200], r.text.slice(0, 600));
  const all = await listAll(client, { include_archived: true });
  assert.ok(all.some((e) => e.name === name));
});

test('an encoded slash is never a path separator', async () => {
  const { env } = await selfHosted(server, key, 'slash');
  const ok = await server.raw('GET', `/v1/environments/${env.id}/keys`, { key });
  assert.equal(ok.status, 200, ok.text);
  for (const p of [`/v1/environments/${env.id}%2Fkeys`, `/v1/environments/${env.id}%2fkeys`, `/v1%2Fenvironments`]) {
    const r = await server.raw('GET', p, { key });
    assert.equal(r.status, 404, `${p}: ${r.status} ${r.text}`);
    assert.equal(r.json.error.type, 'not_found_error');
  }
});

test('HEAD on a poll is 405 and claims nothing; HEAD on a read is allowed', async () => {
  const { envId, envKey, worker } = await selfHosted(server, key, 'head-poll');
  const item = await enqueueOk(server, key, envId, 'sesn_head');
  for (let i = 0; i < 3; i++) {
    const r = await rawExchange(
      server.port,
      `HEAD /v1/environments/${envId}/work/poll HTTP/1.1\r\nHost: x\r\nx-api-key: ${envKey}\r\n` +
        `anthropic-beta: ${BETA}\r\nConnection: close\r\n\r\n`,
    );
    assert.deepEqual(statuses(r.text), [405], r.text);
    assert.match(r.text, /\r\nAllow: GET\r\n/, r.text);
  }
  const stats = await client.beta.environments.work.stats(envId);
  assert.equal(stats.depth, 1, JSON.stringify(stats));
  const polled = await worker.beta.environments.work.poll(envId, { 'Anthropic-Worker-ID': 'head-1' });
  assert.equal(polled.id, item.id);
  const head = await fetch(`${server.url}/v1/environments/${envId}`, {
    method: 'HEAD',
    headers: { 'x-api-key': key, 'anthropic-beta': BETA },
  });
  assert.equal(head.status, 200);
});

test('the SDK creating an environment with a 2 MiB description reads request_too_large, 20 of 20', async () => {
  const description = 'd'.repeat(2 * 1024 * 1024);
  const sdk = server.client(key, { maxRetries: 0, timeout: 30000 });
  const seen = [];
  for (let i = 0; i < 20; i++) {
    try {
      await sdk.beta.environments.create({ name: `big-${i}`, description });
      seen.push('created');
    } catch (e) {
      if (e instanceof SDK.APIError && e.status === 413 && e.error && e.error.error.type === 'request_too_large')
        seen.push('413');
      else seen.push(`${e.constructor.name}: ${e.message}`);
    }
  }
  assert.deepEqual(seen, Array(20).fill('413'));
});

test('a plain fetch of 1.5 MiB reads its 413, 20 of 20', async () => {
  const body = Buffer.alloc(1536 * 1024, 'x');
  const seen = [];
  for (let i = 0; i < 20; i++) {
    try {
      const res = await fetch(`${server.url}/v1/environments`, {
        method: 'POST',
        headers: { 'x-api-key': key, 'anthropic-beta': BETA, 'content-type': 'application/json' },
        body,
      });
      const json = await res.json();
      seen.push(`${res.status} ${json.error && json.error.type}`);
    } catch (e) {
      seen.push(`${e.name}: ${e.message} ${e.cause && e.cause.code}`);
    }
  }
  assert.deepEqual(seen, Array(20).fill('413 request_too_large'));
});

// A server of its own with the given options; stopped and removed by the caller.
async function ownServer(args, env) {
  const s = new Server({ args, env });
  await s.start();
  return s;
}

// Opens a socket and resolves once connected (or with null when refused or reset).
function open(port, localAddress) {
  return new Promise((resolve) => {
    const sock = net.connect({ port, host: '127.0.0.1', localAddress });
    sock.closedAt = null;
    sock.on('close', () => (sock.closedAt = Date.now()));
    sock.on('error', () => {});
    sock.once('connect', () => resolve(sock));
    sock.once('error', () => resolve(sock));
  });
}

async function healthz(port, guardMs = 15000) {
  const r = await rawExchange(port, 'GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', { guardMs });
  return statuses(r.text)[0] || 0;
}

test('bodies past the global budget get 503 with retry-after while the first is still arriving', async () => {
  const s = await ownServer(['--max-body-memory', '1']);
  try {
    const k = s.createKey({ org: 'budget' });
    const len = 900 * 1024;
    const head = (n) =>
      `POST /v1/environments HTTP/1.1\r\nHost: x\r\n${auth(k)}content-type: application/json\r\nContent-Length: ${n}\r\n\r\n`;
    // The first request announces 900 KiB and sends only part of it: its budget is held.
    const a = await open(s.port);
    const aData = [];
    a.on('data', (d) => aData.push(d));
    a.write(head(len) + '{"name":"' + 'a'.repeat(1000));
    await sleep(200);
    const b = await rawExchange(s.port, head(len) + '{"name":"b"}', { guardMs: 10000 });
    assert.deepEqual(statuses(b.text), [503], b.text.slice(0, 300));
    assert.match(b.text, /\r\nretry-after: \d+\r\n/i);
    assert.match(b.text, /"type":"overloaded_error"/);
    assert.ok(b.closed);
    // The first completes (its body is not valid JSON of that length: 400, not 503).
    a.write('a'.repeat(len - 1000 - 9));
    await waitFor(() => Buffer.concat(aData).toString().includes('HTTP/1.1'), { timeoutMs: 10000, what: 'first answer' });
    assert.deepEqual(statuses(Buffer.concat(aData).toString()), [400]);
    a.destroy();
    // With the budget free again, a body fits.
    const c = await s.raw('POST', '/v1/environments', { key: k, body: { name: 'after-budget' } });
    assert.equal(c.status, 200, c.text);
  } finally {
    await s.stop();
    s.cleanup();
  }
});

test('a request head that trickles in is cut at the header deadline', async () => {
  const s = await ownServer(['--header-timeout', '2']);
  try {
    const sock = await open(s.port);
    const started = Date.now();
    sock.write('GET /healthz HTTP/1.1\r\n');
    const ticker = setInterval(() => sock.writable && sock.write('X-Slow: 1\r\n'), 500);
    await waitFor(() => sock.closedAt, { timeoutMs: 15000, what: 'the slow connection to be closed' });
    clearInterval(ticker);
    const lived = sock.closedAt - started;
    assert.ok(lived >= 1500, `closed after ${lived} ms, before the deadline`);
    // A keep-alive connection idle between requests is not cut by the head deadline.
    const ka = await open(s.port);
    const got = [];
    ka.on('data', (d) => got.push(d));
    ka.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
    await waitFor(() => Buffer.concat(got).toString().includes('"ok"'), { timeoutMs: 10000, what: 'first answer' });
    await sleep(3500);
    assert.equal(ka.closedAt, null, 'an idle keep-alive connection was cut by the head deadline');
    ka.write('GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    await waitFor(() => ka.closedAt, { timeoutMs: 10000, what: 'second answer' });
    assert.deepEqual(statuses(Buffer.concat(got).toString()), [200, 200]);
  } finally {
    await s.stop();
    s.cleanup();
  }
});

test('slowloris on every connection slot: a legitimate client is still answered', async () => {
  const s = await ownServer(['--max-connections', '16', '--threads', '4', '--header-timeout', '2']);
  const socks = new Set();
  let attacking = true;
  // The attacker keeps every slot busy: 16 connections, each sending a header line every
  // second, reconnecting whenever one is closed.
  async function attacker() {
    while (attacking) {
      const sock = await open(s.port);
      socks.add(sock);
      sock.write('GET /healthz HTTP/1.1\r\n');
      const t = setInterval(() => sock.writable && sock.write('X-Slow: 1\r\n'), 1000);
      await waitFor(() => sock.closedAt || !attacking, { timeoutMs: 60000, intervalMs: 50 });
      clearInterval(t);
      sock.destroy();
      socks.delete(sock);
    }
  }
  const lanes = Array.from({ length: 24 }, attacker);
  try {
    await sleep(500);
    const answers = [];
    for (let i = 0; i < 3; i++) answers.push(await healthz(s.port, 15000));
    assert.deepEqual(answers, [200, 200, 200]);
  } finally {
    attacking = false;
    for (const sock of socks) sock.destroy();
    await Promise.all(lanes);
    await s.stop();
    s.cleanup();
  }
});

test('one address holds at most its share of the connections', async () => {
  const s = await ownServer(['--max-connections', '64', '--threads', '4', '--max-connections-per-ip', '8']);
  const socks = [];
  try {
    // 40 idle connections from 127.0.0.2: all but 8 are refused at once.
    for (let i = 0; i < 40; i++) socks.push(await open(s.port, '127.0.0.2'));
    await waitFor(() => socks.filter((x) => x.closedAt).length >= 32, { timeoutMs: 10000, what: 'refusals' });
    await sleep(300);
    assert.equal(socks.filter((x) => !x.closedAt).length, 8);
    assert.equal(await healthz(s.port), 200);
  } finally {
    for (const sock of socks) sock.destroy();
    await s.stop();
    s.cleanup();
  }
});

// CPU seconds the process has used (user + system), from /proc.
function cpuSeconds(pid) {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

test('with a low descriptor limit, 400 idle clients neither spin the server nor lock out /healthz', async () => {
  const dir = fs.mkdtempSync(path.join(require('node:os').tmpdir(), 'environd-fd-'));
  const portFile = path.join(dir, 'port');
  const proc = spawn(
    '/bin/sh',
    ['-c', 'ulimit -n 256 && exec "$0" "$@"', BIN, 'serve', '--listen', '127.0.0.1:0', '--port-file', portFile,
      '--db', path.join(dir, 'db'), '--log-level', 'warn', '--header-timeout', '60'],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  proc.stderr.on('data', (d) => (stderr += d));
  const socks = [];
  try {
    await waitFor(() => fs.existsSync(portFile) && fs.readFileSync(portFile, 'utf8').trim(), {
      timeoutMs: 10000,
      what: 'the server to listen',
    });
    const port = Number(fs.readFileSync(portFile, 'utf8').trim());
    // The warning is written before the port file; its pipe may deliver it a little later.
    await waitFor(() => /connection_limit_lowered/.test(stderr), { timeoutMs: 10000, what: 'the lowered-limit warning' });
    for (let i = 0; i < 400; i++) socks.push(await open(port, '127.0.0.2'));
    const cpu0 = cpuSeconds(proc.pid);
    const t0 = Date.now();
    const answers = [];
    for (let i = 0; i < 3; i++) answers.push(await healthz(port, 5000));
    await sleep(Math.max(0, 3000 - (Date.now() - t0)));
    const cpu = cpuSeconds(proc.pid) - cpu0;
    const wall = (Date.now() - t0) / 1000;
    assert.deepEqual(answers, [200, 200, 200]);
    // A spinning accept loop burns a whole core; an idle server next to nothing.
    assert.ok(cpu < 0.5 * wall, `the server used ${cpu.toFixed(2)} s of CPU in ${wall.toFixed(1)} s`);
  } finally {
    for (const sock of socks) sock.destroy();
    proc.kill('SIGTERM');
    await new Promise((r) => (proc.exitCode !== null ? r() : proc.once('exit', r)));
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a descriptor limit too low for any connections is refused at start, clearly', async () => {
  const r = require('node:child_process').spawnSync(
    '/bin/sh',
    ['-c', 'ulimit -n 100 && exec "$0" "$@"', BIN, 'serve', '--listen', '127.0.0.1:0', '--db', '/nonexistent/x.db'],
    { encoding: 'utf8', timeout: 10000 },
  );
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /descriptor limit \(ulimit -n 100\)/);
});

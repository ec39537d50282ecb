// TLS end to end: `environd serve --tls-cert --tls-key` with a CA and certificates made by
// openssl for this run; the official SDK over HTTPS (held polls included); `environd
// worker` and the HTTP commands verifying the server with --ca-file, and refusing a
// certificate they cannot verify; plain HTTP to the TLS port; startup errors.
'use strict';
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { execFile, execFileSync, spawn } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const https = require('node:https');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const tls = require('node:tls');
const { Server, BIN, BETA } = require('./lib/server');
const { waitFor, decodeSecret } = require('./lib/work');
const { Worker, workers } = require('./lib/worker_proc');

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'environd-tls-'));
fs.chmodSync(dir, 0o755); // another user must reach the files here (the unreadable-key case)
const file = (name) => path.join(dir, name);
let server, apiKey, caPem;

function openssl(...args) {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

// A CA, a server certificate it signs for 127.0.0.1 and localhost, a second CA that signs
// nothing we serve, and a self-signed certificate made the way the README says.
function makeCertificates() {
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  openssl('req', '-x509', ...ec, '-days', '2', '-keyout', 'ca.key', '-out', 'ca.pem', '-subj', '/CN=environd test CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
  openssl('req', '-x509', ...ec, '-days', '2', '-keyout', 'other-ca.key', '-out', 'other-ca.pem', '-subj',
    '/CN=some other CA');
  openssl('req', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost');
  fs.writeFileSync(file('ext.cnf'),
    'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n');
  openssl('x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2',
    '-out', 'server.pem', '-extfile', 'ext.cnf');
  openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-keyout', 'selfsigned.key', '-out',
    'selfsigned.pem', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost');
  for (const k of ['ca.key', 'other-ca.key', 'server.key', 'selfsigned.key']) fs.chmodSync(file(k), 0o600);
}

// A fetch for the SDK that trusts only `ca`: node:https underneath, so the test process
// needs no NODE_EXTRA_CA_CERTS. Bodies are buffered (the API's replies are small).
function tlsFetch(ca) {
  const agent = new https.Agent({ ca, keepAlive: true });
  return (input, init = {}) =>
    new Promise((resolve, reject) => {
      const url = new URL(typeof input === 'string' || input instanceof URL ? input : input.url);
      const headers = {};
      new Headers(init.headers || {}).forEach((v, k) => (headers[k] = v));
      const req = https.request(url, { method: init.method || 'GET', headers, agent }, (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const h = new Headers();
          for (const [k, v] of Object.entries(res.headers)) h.set(k, Array.isArray(v) ? v.join(', ') : v);
          const body = [204, 304].includes(res.statusCode) ? null : Buffer.concat(chunks);
          resolve(new Response(body, { status: res.statusCode, headers: h }));
        });
      });
      req.on('error', reject);
      if (init.signal) {
        const abort = () => req.destroy(new DOMException('The operation was aborted.', 'AbortError'));
        if (init.signal.aborted) abort();
        else init.signal.addEventListener('abort', abort, { once: true });
      }
      req.end(init.body == null ? undefined : init.body);
    });
}

// A raw request over TLS trusting our CA; resolves { status, json, text }.
async function raw(method, pathname, { key, body, headers = {} } = {}) {
  const h = { 'anthropic-beta': BETA, ...headers };
  if (key) h.authorization = `Bearer ${key}`;
  if (body !== undefined) h['content-type'] = 'application/json';
  const res = await tlsFetch(caPem)(server.url + pathname, {
    method,
    headers: h,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {}
  return { status: res.status, json, text };
}

async function heldPolls() {
  const r = await raw('GET', '/metrics');
  return Number(/^environd_polls_held (\d+)$/m.exec(r.text)[1]);
}

async function selfHostedEnv(name) {
  const sdk = server.client(apiKey, { fetch: tlsFetch(caPem) });
  const env = await sdk.beta.environments.create({ name, config: { type: 'self_hosted' } });
  const k = await raw('POST', `/v1/environments/${env.id}/keys`, { key: apiKey, body: { name: 'w' } });
  assert.equal(k.status, 200, k.text);
  return { envId: env.id, envKey: k.json.key };
}

// Runs an environd subcommand; resolves { code, stdout, stderr }.
function run(args, env = {}, opts = {}) {
  return new Promise((resolve) => {
    execFile(BIN, args, { env: { ...process.env, ...env }, timeout: 20000, ...opts }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr }),
    );
  });
}

before(async () => {
  makeCertificates();
  caPem = fs.readFileSync(file('ca.pem'));
  server = new Server({ scheme: 'https', args: ['--tls-cert', file('server.pem'), '--tls-key', file('server.key')] });
  apiKey = server.createKey();
  await server.start();
});

after(async () => {
  for (const w of workers) w.kill('SIGKILL');
  if (server) {
    await server.stop();
    server.cleanup();
  }
  fs.rmSync(dir, { recursive: true, force: true });
});

test('the server says https:// and work secrets carry the https:// base URL', async () => {
  assert.match(server.stdout, new RegExp(`serving the Environments API on https://127\\.0\\.0\\.1:${server.port} `));
  const { envId, envKey } = await selfHostedEnv('secret-url');
  const enq = await raw('POST', `/v1/environments/${envId}/work`, { key: apiKey, body: { data: { type: 'session', id: 'sess_url' } } });
  assert.equal(enq.status, 201, enq.text);
  const worker = server.client(envKey, { fetch: tlsFetch(caPem) });
  const item = await worker.beta.environments.work.poll(envId, { block_ms: 999 });
  assert.equal(item.id, enq.json.id);
  const secret = decodeSecret(item.secret);
  assert.ok(JSON.stringify(secret).includes(`"https://127.0.0.1:${server.port}`), JSON.stringify(secret));
});

test('the SDK over TLS: create, enqueue, and a held poll woken by the enqueue', async () => {
  const { envId, envKey } = await selfHostedEnv('sdk-tls');
  const worker = server.client(envKey, { fetch: tlsFetch(caPem) });
  const before = await heldPolls();
  const poll = worker.beta.environments.work.poll(envId, { block_ms: 999, 'Anthropic-Worker-ID': 'tls-w1' });
  // Enqueue only once the poll is held, so it is the wake-up that answers it. A loaded
  // machine may see the hold end (null) first: then poll again, boundedly.
  let item = null;
  let pending = poll;
  for (let i = 0; i < 20 && !item; i++) {
    const held = await waitFor(async () => (await heldPolls()) > before, { timeoutMs: 5000, what: 'a held poll' }).catch(() => false);
    if (held) {
      const cli = await run(['enqueue', envId, '--session', `sess_held_${i}`, '--base-url', server.url, '--ca-file', file('ca.pem')], {
        ENVIROND_API_KEY: apiKey,
      });
      assert.equal(cli.code, 0, cli.stderr);
      item = await pending;
      if (item) {
        assert.equal(item.id, cli.stdout.trim());
        break;
      }
    } else {
      assert.equal(await pending, null);
    }
    pending = worker.beta.environments.work.poll(envId, { block_ms: 999 });
  }
  assert.ok(item, 'no held poll was woken with the item');
  assert.equal(item.data.type, 'session');
  await worker.beta.environments.work.ack(item.id, { environment_id: envId });
});

test('the SDK with NODE_EXTRA_CA_CERTS (the README set-up, a self-signed certificate)', async () => {
  const srv = new Server({ scheme: 'https', args: ['--tls-cert', file('selfsigned.pem'), '--tls-key', file('selfsigned.key')] });
  const key = srv.createKey();
  await srv.start();
  try {
    const script = `
      const Anthropic = require('@anthropic-ai/sdk').default;
      const c = new Anthropic({ apiKey: process.env.K, baseURL: process.env.U, maxRetries: 0 });
      c.beta.environments.create({ name: 'child', config: { type: 'self_hosted' } })
        .then((e) => console.log(e.id), (e) => { console.error(String(e), String(e.cause && e.cause.cause || e.cause)); process.exit(3); });`;
    const runNode = (extra) =>
      new Promise((resolve) => {
        execFile(process.execPath, ['-e', script], { cwd: __dirname, env: { ...process.env, K: key, U: srv.url, ...extra }, timeout: 20000 },
          (err, stdout, stderr) => resolve({ code: err ? err.code : 0, stdout, stderr }));
      });
    const trusted = await runNode({ NODE_EXTRA_CA_CERTS: file('selfsigned.pem') });
    assert.equal(trusted.code, 0, trusted.stderr);
    assert.match(trusted.stdout, /^env_/);
    const untrusted = await runNode({ NODE_EXTRA_CA_CERTS: '' });
    assert.equal(untrusted.code, 3, untrusted.stdout);
    assert.match(untrusted.stderr, /self[- ]signed certificate/i);
  } finally {
    await srv.stop();
    srv.cleanup();
  }
});

test('a poller that closes its TLS connection while held does not take the next item', async () => {
  const { envId, envKey } = await selfHostedEnv('gone-poller');
  const worker = server.client(envKey, { fetch: tlsFetch(caPem) });
  // The race (the item's reply written before the close is seen) is lost only some of the
  // time when the check is broken: five rounds make a miss unlikely.
  for (let round = 0; round < 5; round++) {
    const before = await heldPolls();
    // A clean TLS close (close_notify, then FIN), as a client that ends the connection does.
    const sock = tls.connect({ host: '127.0.0.1', port: server.port, ca: caPem });
    await new Promise((resolve, reject) => sock.once('secureConnect', resolve).once('error', reject));
    sock.on('error', () => {});
    sock.write(`GET /v1/environments/${envId}/work/poll?block_ms=999 HTTP/1.1\r\nHost: 127.0.0.1\r\n` +
      `anthropic-beta: ${BETA}\r\nAuthorization: Bearer ${envKey}\r\n\r\n`);
    const held = await waitFor(async () => (await heldPolls()) > before, { timeoutMs: 5000, what: 'a held poll' }).catch(() => false);
    sock.end();
    const enq = await raw('POST', `/v1/environments/${envId}/work`, { key: apiKey, body: { data: { type: 'session', id: `sess_gone_${round}` } } });
    assert.equal(enq.status, 201, enq.text);
    // Whether the held poll was still there or not, the item must be there for a live poller.
    const item = await worker.beta.environments.work.poll(envId, { block_ms: 999 });
    assert.ok(item, `round ${round}: the item went to the poller that left (held: ${held})`);
    assert.equal(item.id, enq.json.id);
    await worker.beta.environments.work.ack(item.id, { environment_id: envId });
    sock.destroy();
  }
});

test('environd worker --ca-file completes an item over TLS', async () => {
  const { envId, envKey } = await selfHostedEnv('worker-tls');
  const wdir = fs.mkdtempSync(path.join(dir, 'w-'));
  fs.writeFileSync(path.join(wdir, 'item.sh'), '#!/bin/sh\necho "$ANTHROPIC_BASE_URL" > "$ANTHROPIC_WORK_ID.url"\n', { mode: 0o755 });
  const enq = await raw('POST', `/v1/environments/${envId}/work`, { key: apiKey, body: { data: { type: 'session', id: 'sess_w' } } });
  assert.equal(enq.status, 201, enq.text);
  const w = new Worker(server, { envId, envKey, dir: wdir, args: ['--once', '--ca-file', file('ca.pem')] });
  assert.equal(await w.exitCode(), 0, w.stderr);
  assert.equal(fs.readFileSync(path.join(wdir, `${enq.json.id}.url`), 'utf8').trim(), server.url);
  const got = await raw('GET', `/v1/environments/${envId}/work/${enq.json.id}`, { key: apiKey });
  assert.equal(got.json.state, 'stopped', got.text);
});

test('a certificate the worker cannot verify is fatal at start: exit 1, naming the cause', async () => {
  const { envId, envKey } = await selfHostedEnv('worker-wrong-ca');
  const enq = await raw('POST', `/v1/environments/${envId}/work`, { key: apiKey, body: { data: { type: 'session', id: 'sess_wrong' } } });
  const wdir = fs.mkdtempSync(path.join(dir, 'w-'));
  for (const args of [['--ca-file', file('other-ca.pem')], []]) {
    // [] = the system's trust store, which does not hold this run's CA.
    const w = new Worker(server, { envId, envKey, dir: wdir, args: ['--on-work', 'true', ...args], env: { ENVIROND_CA_FILE: '' } });
    assert.equal(await w.exitCode(), 1, w.stderr);
    const refused = w.events.find((e) => e.event === 'poll_refused');
    assert.ok(refused, w.stderr);
    assert.match(refused.error, /TLS verification of the server failed: SSL certificate problem: /);
    assert.match(refused.error, /--ca-file/);
    assert.equal(w.events.filter((e) => e.event === 'poll_failed').length, 0, 'retried a verification failure');
  }
  const got = await raw('GET', `/v1/environments/${envId}/work/${enq.json.id}`, { key: apiKey });
  assert.equal(got.json.state, 'queued', 'nothing was claimed');
});

test('the HTTP commands verify the server too: a wrong CA fails clearly, the right one works', async () => {
  const { envId } = await selfHostedEnv('cli-tls');
  const env = { ENVIROND_API_KEY: apiKey };
  for (const args of [['enqueue', envId, '--session', 'sess_cli'], ['env-key', 'list', envId]]) {
    const wrong = await run([...args, '--base-url', server.url, '--ca-file', file('other-ca.pem')], env);
    assert.equal(wrong.code, 1, wrong.stderr);
    assert.match(wrong.stderr, /TLS verification of the server failed: SSL certificate problem: /);
    const right = await run([...args, '--base-url', server.url], { ...env, ENVIROND_CA_FILE: file('ca.pem') });
    assert.equal(right.code, 0, right.stderr);
  }
  // A CA file that is no CA file is a startup error naming it, before any request.
  for (const [bad, why] of [[file('nope.pem'), /No such file/], [file('server.key'), /holds no PEM certificate/]]) {
    const r = await run(['enqueue', envId, '--session', 's', '--base-url', server.url, '--ca-file', bad], env);
    assert.equal(r.code, 2, r.stderr);
    assert.ok(r.stderr.includes(`--ca-file ${bad}: `), r.stderr);
    assert.match(r.stderr, why);
  }
});

test('plain HTTP and garbage sent to the TLS port do not hurt the server', async () => {
  const plain = await new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port: server.port, path: '/healthz', agent: false, timeout: 10000 }, (res) => {
      res.resume();
      resolve(`answered ${res.statusCode}`);
    });
    req.on('error', (e) => resolve(e.code));
    req.on('timeout', () => req.destroy(new Error('timeout')));
  });
  assert.ok(['ECONNRESET', 'EPIPE', 'HPE_INVALID_CONSTANT'].includes(plain) || /^answered 4/.test(plain), plain);
  for (const bytes of [Buffer.alloc(4096, 0x16), Buffer.from('\x16\x03\x01\xff\xff' + 'x'.repeat(100)), Buffer.from('GET / HTTP/1.0\r\n\r\n')]) {
    await new Promise((resolve) => {
      const s = net.connect(server.port, '127.0.0.1', () => s.end(bytes));
      s.on('error', resolve);
      s.on('close', resolve);
      s.resume();
      s.setTimeout(10000, () => s.destroy());
    });
  }
  assert.equal(server.proc.exitCode, null, server.stderr);
  const r = await raw('GET', '/healthz');
  assert.equal(r.status, 200, r.text);
});

test('many held polls over TLS: each enqueued item goes to exactly one poller', async () => {
  const { envId, envKey } = await selfHostedEnv('many-held');
  const POLLERS = 100;
  const agent = new https.Agent({ ca: caPem, keepAlive: true, maxSockets: Infinity });
  const pollOnce = () =>
    new Promise((resolve, reject) => {
      const req = https.request(
        {
          host: '127.0.0.1', port: server.port, agent, method: 'GET',
          path: `/v1/environments/${envId}/work/poll?block_ms=999&reclaim_older_than_ms=86400000`,
          headers: { 'anthropic-beta': BETA, authorization: `Bearer ${envKey}` },
        },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (d) => (text += d));
          res.on('end', () => (res.statusCode === 200 ? resolve(JSON.parse(text)) : reject(new Error(`${res.statusCode} ${text}`))));
        },
      );
      req.on('error', reject);
      req.end();
    });
  // Each poller polls until it gets an item (bounded); nulls at the deadline are fine.
  const pollers = Array.from({ length: POLLERS }, async () => {
    for (let i = 0; i < 60; i++) {
      const item = await pollOnce();
      if (item) return item.id;
    }
    return null;
  });
  await waitFor(async () => (await heldPolls()) >= POLLERS / 2, { timeoutMs: 30000, what: 'held polls' });
  const ids = [];
  for (let i = 0; i < POLLERS; i++) {
    const r = await raw('POST', `/v1/environments/${envId}/work`, { key: apiKey, body: { data: { type: 'session', id: `sess_many_${i}` } } });
    assert.equal(r.status, 201, r.text);
    ids.push(r.json.id);
  }
  const got = await Promise.all(pollers);
  agent.destroy();
  assert.deepEqual([...got].sort(), [...ids].sort(), 'every item to exactly one poller');
});

test('startup errors: one TLS file without the other, unreadable or loose key, mismatched pair', async () => {
  const serve = (args, env = {}, opts = {}) => {
    const d = fs.mkdtempSync(path.join(dir, 's-'));
    fs.chmodSync(d, 0o755);
    const db = path.join(d, 'x.db');
    return run(['serve', '--listen', '127.0.0.1:0', '--db', db, ...args], env, opts).then((r) => ({ ...r, dbMade: fs.existsSync(db) }));
  };
  const cert = file('server.pem');
  const key = file('server.key');
  const cases = [
    [['--tls-cert', cert], {}, /--tls-cert \(ENVIROND_TLS_CERT\) is set but --tls-key \(ENVIROND_TLS_KEY\) is not/],
    [['--tls-key', key], {}, /--tls-key \(ENVIROND_TLS_KEY\) is set but --tls-cert/],
    [[], { ENVIROND_TLS_CERT: cert }, /--tls-cert \(ENVIROND_TLS_CERT\) is set but --tls-key/],
    [['--tls-cert', cert, '--tls-key', file('missing.key')], {}, new RegExp(`--tls-key ${file('missing.key')}: cannot open: No such file`)],
    [['--tls-cert', cert, '--tls-key', dir], {}, /--tls-key .*: not a regular file/],
    [['--tls-cert', key, '--tls-key', key], {}, /--tls-cert .*server\.key: holds no PEM certificate/],
    [['--tls-cert', cert, '--tls-key', file('ca.key')], {}, /--tls-key .*ca\.key does not hold the private key of the certificate in --tls-cert/],
  ];
  const loose = file('loose.key');
  fs.copyFileSync(key, loose);
  fs.chmodSync(loose, 0o644);
  cases.push([['--tls-cert', cert, '--tls-key', loose], {}, /--tls-key .*loose\.key: mode 0644 lets other users read it; run chmod 600/]);
  const encrypted = file('encrypted.key');
  openssl('pkey', '-in', 'server.key', '-out', 'encrypted.key', '-aes256', '-passout', 'pass:secret');
  fs.chmodSync(encrypted, 0o600);
  cases.push([['--tls-cert', cert, '--tls-key', encrypted], {}, /the private key is encrypted/]);
  for (const [args, env, re] of cases) {
    const r = await serve(args, env);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, re);
    assert.equal(r.dbMade, false, 'a refused start leaves no database behind');
  }
  // Unreadable: as root, file modes do not stop us, so read as another user.
  const unreadable = file('unreadable.key');
  fs.copyFileSync(key, unreadable);
  fs.chmodSync(unreadable, 0o600);
  const asOther = process.getuid() === 0 ? { uid: 65534, gid: 65534 } : {};
  if (process.getuid() !== 0) fs.chmodSync(unreadable, 0o000);
  const r = await serve(['--tls-cert', cert, '--tls-key', unreadable], {}, asOther);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /--tls-key .*unreadable\.key: cannot open: Permission denied/);
  // A group-readable key starts, with a warning.
  const group = file('group.key');
  fs.copyFileSync(key, group);
  fs.chmodSync(group, 0o640);
  const srv = new Server({ scheme: 'https', args: ['--tls-cert', cert, '--tls-key', group] });
  await srv.start();
  try {
    assert.match(srv.stderr, /tls_key_group_readable/);
  } finally {
    await srv.stop();
    srv.cleanup();
  }
});

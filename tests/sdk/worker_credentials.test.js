// What a command run by `environd worker` can reach of the worker's credentials, and the
// `--lease command` contract of the official CLI's `--on-work`: the command heartbeats and
// stops its own item (here the SDK's own EnvironmentWorker.handleItem()), and the worker
// leaves the lease alone. The workers run real commands; what a command found is read
// back from its output lines in the worker's log.
'use strict';
const { test, describe, before } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { selfHosted, enqueueOk, waitFor } = require('./lib/work');
const { Worker, workerSuite } = require('./lib/worker_proc');

const IS_ROOT = process.getuid() === 0;
const NOBODY = 65534;

// Walks up from its parent to the test runner (SCAN_STOP_AT, not part of what the worker
// started) and, in every process on the way, looks for anything shaped like a credential
// in /proc/PID/environ, cmdline and the readable memory (maps + mem). The shapes are
// built here rather than passed in, so the command's own environment does not hold them.
// First it checks itself: a canary in its own environment and memory must be found, or
// the search proves nothing.
const SCAN_JS = `'use strict';
const fs = require('fs');
const shape = new RegExp('(' + ['envd', '[a-z]+', '[A-Za-z0-9_-]{16,}'].join('_') + '|' + ['sk', 'ant', '[A-Za-z0-9_-]{16,}'].join('-') + ')');
const canary = new RegExp(['canary', 'x'.repeat(3), '[0-9]{6}'].join('_'));
const REGION_MAX = 256 << 20;
function scanBuf(buf, re) { const m = buf.toString('latin1').match(re); return m ? m[0].slice(0, 14) : null; }
function scanMem(pid, re) {
  const maps = fs.readFileSync('/proc/' + pid + '/maps', 'utf8');
  const fd = fs.openSync('/proc/' + pid + '/mem', 'r');
  const chunk = Buffer.alloc(1 << 20);
  let hit = null, bytes = 0;
  try {
    for (const line of maps.split('\\n')) {
      const m = /^([0-9a-f]+)-([0-9a-f]+) (r)/.exec(line);
      if (!m || hit) continue;
      const lo = parseInt(m[1], 16), hi = parseInt(m[2], 16);
      if (hi - lo > REGION_MAX) continue;
      // Chunks overlap by 256 bytes, so a token across a boundary is still seen whole.
      for (let at = lo; at < hi && !hit; at += chunk.length - 256) {
        let n = 0;
        try { n = fs.readSync(fd, chunk, 0, Math.min(chunk.length, hi - at), at); } catch { break; }
        if (n <= 0) break;
        bytes += n;
        hit = scanBuf(chunk.subarray(0, n), re);
        if (n < chunk.length) break;
      }
    }
  } finally { fs.closeSync(fd); }
  return { hit, bytes };
}
function parentOf(pid) {
  const st = fs.readFileSync('/proc/' + pid + '/stat', 'utf8');
  return Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[1]);
}
const report = { uid: process.getuid(), cwd: process.cwd(), self: {}, ancestors: [], found: [],
  own: Object.keys(process.env).filter((k) => /KEY|TOKEN|SECRET/.test(k)).sort() };
report.self.environ = !!scanBuf(fs.readFileSync('/proc/self/environ'), canary);
report.self.mem = !!scanMem(process.pid, canary).hit;
const stopAt = Number(process.env.SCAN_STOP_AT);
for (let pid = process.ppid; pid > 1 && pid !== stopAt; pid = parentOf(pid)) {
  const a = { pid, comm: fs.readFileSync('/proc/' + pid + '/comm', 'utf8').trim() };
  for (const what of ['environ', 'cmdline']) {
    try {
      const hit = scanBuf(fs.readFileSync('/proc/' + pid + '/' + what), shape);
      a[what] = 'read';
      if (hit) report.found.push({ pid, comm: a.comm, where: what, starts: hit });
    } catch (e) { a[what] = e.code; }
  }
  try {
    const { hit, bytes } = scanMem(pid, shape);
    a.mem = 'read ' + bytes;
    if (hit) report.found.push({ pid, comm: a.comm, where: 'mem', starts: hit });
  } catch (e) { a.mem = e.code; }
  report.ancestors.push(a);
}
console.log('SCAN ' + JSON.stringify(report));
`;

// A command for --lease command: the official SDK's handleItem(), exactly as a command
// written for the official CLI would call it, with a fetch that records every call.
// Sessions do not exist on this server yet, so the session lookup of a healthcheck item
// fails; it is held until the first heartbeat has been answered, so the lease is used
// before the handler gives up, force-stops the item and returns.
function handleJs(sdkDir) {
  return `'use strict';
const Anthropic = require(${JSON.stringify(sdkDir)}).default;
const { EnvironmentWorker } = require(${JSON.stringify(path.join(sdkDir, 'helpers/beta/environments'))});
const calls = [];
let beaten;
const firstBeat = new Promise((r) => (beaten = r));
async function recordingFetch(url, init) {
  const u = new URL(url);
  if (u.pathname.startsWith('/v1/sessions/')) await Promise.race([firstBeat, new Promise((r) => setTimeout(r, 20000).unref())]);
  const res = await fetch(url, init);
  calls.push({ method: (init && init.method) || 'GET', path: u.pathname, status: res.status });
  if (u.pathname.endsWith('/heartbeat')) beaten();
  return res;
}
(async () => {
  let stdin = '';
  for await (const chunk of process.stdin) stdin += chunk;
  const work = JSON.parse(stdin);
  const client = new Anthropic({ baseURL: process.env.ANTHROPIC_BASE_URL, authToken: 'unused', maxRetries: 0, fetch: recordingFetch });
  let error = null;
  try {
    await new EnvironmentWorker({ client, workdir: process.cwd() }).handleItem();
  } catch (e) {
    error = String(e && e.status ? e.status : e);
  }
  console.log('HANDLED ' + JSON.stringify({ stdinId: work.id, stdinType: work.data.type, hasKey: !!process.env.ANTHROPIC_ENVIRONMENT_KEY, calls, error }));
})();
`;
}

// A command for --lease command drain and stop tests: it owns the lease but does
// nothing with it; it waits for a file, or for SIGTERM.
const HOLD_SH = `#!/bin/sh
w="$ANTHROPIC_WORK_ID"
cat > "$w.stdin"
trap 'date +%s%3N > "$w.term"; exit 0' TERM
: > "$w.ready"
i=0
while [ ! -e release ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
date +%s%3N > "$w.done"
`;

const suite = workerSuite();
const { tmpDirs, getWork } = suite;
let server;
let apiKey;
let envSeq = 0;

function tmpDir(mode = 0o700) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'environd-wcred-'));
  fs.chmodSync(dir, mode);
  fs.writeFileSync(path.join(dir, 'scan.js'), SCAN_JS, { mode: 0o644 });
  fs.writeFileSync(path.join(dir, 'hold.sh'), HOLD_SH, { mode: 0o755 });
  fs.writeFileSync(path.join(dir, 'handle.js'), handleJs(path.dirname(require.resolve('@anthropic-ai/sdk'))), { mode: 0o644 });
  tmpDirs.push(dir);
  return dir;
}

const newEnv = (tag) => selfHosted(server, apiKey, `wcred-${tag}-${++envSeq}`);

// The one output line of a command that starts with tag, parsed.
function outputJson(w, workId, tag) {
  const line = w.named('output', workId).find((e) => e.stream === 'stdout' && e.line.startsWith(tag + ' '));
  assert.ok(line, `${tag} line from ${workId} in\n${w.stderr}`);
  return JSON.parse(line.line.slice(tag.length + 1));
}

// Fake credentials of the shapes the real ones have, besides the real environment key.
const API_KEY = 'envd_api_' + 'A1b2C3d4E5f6G7h8I9j0K1l2M3n4';
const ANTHROPIC_KEY = 'sk-ant-api03-' + 'Zz9Yy8Xx7Ww6Vv5Uu4Tt3Ss2Rr1Qq0';
const CANARY = 'canary_xxx_123456';

// Runs scan.js under a worker started with all three credential variables; returns the
// report and the worker.
async function scanUnder({ workerUid, runAs, extraArgs = [] }) {
  const { envId, envKey } = await newEnv(runAs ? 'runas' : 'same');
  const dir = tmpDir(0o755);
  if (workerUid !== undefined) fs.chownSync(dir, workerUid, workerUid);
  const it = await enqueueOk(server, apiKey, envId, 'scan_1');
  const args = ['--once', '--on-work', `exec node ${path.join(dir, 'scan.js')}`];
  if (runAs) args.push('--run-as', runAs);
  args.push(...extraArgs);
  const w = new Worker(server, {
    envId,
    envKey,
    dir,
    args,
    env: { ENVIROND_API_KEY: API_KEY, ANTHROPIC_API_KEY: ANTHROPIC_KEY, SCAN_STOP_AT: String(process.pid), SCAN_CANARY: CANARY },
    spawnOpts: workerUid !== undefined ? { uid: workerUid, gid: workerUid } : {},
  });
  // The worker is there to be looked at from outside while it runs.
  await w.waitEvent('worker_start');
  const outside = readOutside(w.proc.pid);
  assert.equal(await w.exitCode(), 0, w.stderr);
  const report = outputJson(w, it.id, 'SCAN');
  assert.ok(report.self.environ && report.self.mem, `the search finds a canary in its own process: ${JSON.stringify(report.self)}`);
  assert.ok(report.ancestors.some((a) => a.pid === w.proc.pid), `the search reached the worker: ${JSON.stringify(report.ancestors)}`);
  assert.deepEqual(report.found, [], `no credential within the command's reach: ${JSON.stringify(report)}`);
  for (const secret of [envKey, API_KEY, ANTHROPIC_KEY]) assert.ok(!w.stderr.includes(secret), 'never logged');
  return { report, w, it, envKey, outside };
}

// What someone allowed to read the worker's /proc entries (root) sees in its environment
// and command line: the credentials were wiped once read. null when we may not look.
function readOutside(pid) {
  try {
    return {
      environ: fs.readFileSync(`/proc/${pid}/environ`, 'latin1'),
      cmdline: fs.readFileSync(`/proc/${pid}/cmdline`, 'latin1'),
    };
  } catch {
    return null;
  }
}

function assertScrubbed(outside, envKey) {
  if (!outside) return;
  for (const secret of [envKey, API_KEY, ANTHROPIC_KEY]) {
    assert.ok(!outside.environ.includes(secret), "the worker's own environment no longer holds its credentials");
    assert.ok(!outside.cmdline.includes(secret));
  }
  assert.ok(outside.environ.includes(CANARY), 'the rest of the environment is still there');
}

before(() => {
  ({ server, apiKey } = suite);
});

describe('environd worker: credentials out of reach', { concurrency: 2 }, () => {
  test('a command running as the worker\'s own user finds no credential in any ancestor', async () => {
    // As root every process is readable whatever it does, so the worker runs as nobody
    // there; as anyone else it runs as that user.
    const { report, outside, envKey } = await scanUnder({ workerUid: IS_ROOT ? NOBODY : undefined });
    assert.equal(report.uid, IS_ROOT ? NOBODY : process.getuid());
    assert.deepEqual(report.own, ['ANTHROPIC_WORK_SECRET'], 'its own item\'s secret, nothing more');
    const worker = report.ancestors.find((a) => a.comm === 'environd');
    assert.ok(worker && worker.environ !== 'read' && !String(worker.mem).startsWith('read'), `worker unreadable: ${JSON.stringify(report.ancestors)}`);
    const keeper = report.ancestors.find((a) => a.comm === 'environd-keeper');
    assert.ok(keeper && keeper.environ !== 'read' && !String(keeper.mem).startsWith('read'), `keeper unreadable: ${JSON.stringify(report.ancestors)}`);
    assertScrubbed(outside, envKey);
  });

  test('with --lease command the command holds the environment key, and no other credential', async () => {
    const { report, outside, envKey } = await scanUnder({ workerUid: IS_ROOT ? NOBODY : undefined, extraArgs: ['--lease', 'command'] });
    assert.deepEqual(report.own, ['ANTHROPIC_ENVIRONMENT_KEY', 'ANTHROPIC_WORK_SECRET']);
    assertScrubbed(outside, envKey);
  });

  test('--run-as runs the command as another user, in its own directory, with no credential in reach', async (t) => {
    if (!IS_ROOT) return t.skip('--run-as needs the worker to run as root');
    const { report, outside, envKey, it } = await scanUnder({ runAs: 'nobody' });
    assert.equal(report.uid, NOBODY);
    assert.equal(path.basename(report.cwd), it.id);
    const st = fs.statSync(report.cwd);
    assert.equal(st.uid, NOBODY);
    assert.equal(st.mode & 0o777, 0o700);
    assertScrubbed(outside, envKey);
  });

  test('--run-as is refused clearly when it cannot work', async (t) => {
    const { envId, envKey } = await newEnv('runas-bad');
    const dir = tmpDir();
    const w = new Worker(server, { envId, envKey, dir, args: ['--once', '--run-as', 'no-such-user-here'] });
    assert.equal(await w.exitCode(), 2);
    assert.match(w.stderr, /--run-as no-such-user-here: no such user/);
    if (!IS_ROOT) return;
    const w2 = new Worker(server, { envId, envKey, dir, args: ['--once', '--run-as', 'root'] });
    assert.equal(await w2.exitCode(), 2);
    assert.match(w2.stderr, /that is root/);
    const w3 = new Worker(server, { envId, envKey, dir, args: ['--once', '--lease', 'sometimes'] });
    assert.equal(await w3.exitCode(), 2);
    assert.match(w3.stderr, /--lease is worker or command/);
  });
});

describe('environd worker --lease command', { concurrency: 2 }, () => {
  test("the SDK's handleItem() heartbeats and stops its own item, with no 412", async () => {
    const { envId, envKey } = await newEnv('cmd-sdk');
    const dir = tmpDir();
    const hc = await enqueueOk(server, apiKey, envId, 'hc_1', { type: 'healthcheck' });
    const w = new Worker(server, {
      envId,
      envKey,
      dir,
      args: ['--once', '--lease', 'command', '--on-work', 'exec node ./handle.js'],
      env: { ENVIROND_API_KEY: API_KEY },
    });
    assert.equal(await w.exitCode(), 0, w.stderr);
    const got = outputJson(w, hc.id, 'HANDLED');
    assert.equal(got.stdinId, hc.id, 'the work item JSON is on stdin');
    assert.equal(got.stdinType, 'healthcheck');
    assert.ok(got.hasKey, 'the command holds the environment key, as under the official CLI');
    const beats = got.calls.filter((c) => c.path.endsWith('/heartbeat'));
    assert.ok(beats.length >= 1 && beats.every((c) => c.status === 200), `heartbeats: ${JSON.stringify(got.calls)}`);
    assert.ok(!got.calls.some((c) => c.status === 412), `no 412: ${JSON.stringify(got.calls)}`);
    const stops = got.calls.filter((c) => c.path.endsWith('/stop'));
    assert.deepEqual(stops.map((c) => c.status), [200], `the command stopped its item: ${JSON.stringify(got.calls)}`);
    assert.equal((await getWork(envId, hc.id)).state, 'stopped');
    assert.equal(w.named('item_left', hc.id).length, 1, 'the worker left the lease to the command');
    assert.equal(w.named('item_stopped', hc.id).length, 0, 'the worker did not stop it');
    assert.ok(!w.stderr.includes(envKey));
  });

  test('SIGTERM drains: the running command finishes, the worker leaves its item to it', async () => {
    const { envId, envKey } = await newEnv('cmd-drain');
    const dir = tmpDir();
    const it = await enqueueOk(server, apiKey, envId, 'hold_1');
    const w = new Worker(server, { envId, envKey, dir, args: ['--lease', 'command', '--on-work', './hold.sh'] });
    await w.waitEvent('child_start', it.id);
    await waitFor(() => fs.existsSync(path.join(dir, `${it.id}.ready`)), { timeoutMs: 10000, what: 'ready' });
    w.kill('SIGTERM');
    await w.waitEvent('draining');
    const later = await enqueueOk(server, apiKey, envId, 'hold_2');
    fs.writeFileSync(path.join(dir, 'release'), '');
    assert.equal(await w.exitCode(), 0, w.stderr);
    assert.ok(fs.existsSync(path.join(dir, `${it.id}.done`)), 'the command ran to its end');
    assert.ok(!fs.existsSync(path.join(dir, `${it.id}.term`)), 'a drain does not signal it');
    assert.equal(JSON.parse(fs.readFileSync(path.join(dir, `${it.id}.stdin`), 'utf8')).id, it.id);
    assert.equal(w.named('claim', later.id).length, 0, 'no new claims while draining');
    // The command never heartbeat or stopped it, and neither did the worker.
    assert.notEqual((await getWork(envId, it.id)).state, 'stopped');
    assert.equal(w.named('item_left', it.id).length, 1);
  });

  test('a second signal stops the running command now; the item is still left to its lease', async () => {
    const { envId, envKey } = await newEnv('cmd-abort');
    const dir = tmpDir();
    const it = await enqueueOk(server, apiKey, envId, 'hold_3');
    const w = new Worker(server, { envId, envKey, dir, args: ['--lease', 'command', '--grace', '2', '--on-work', './hold.sh'] });
    await w.waitEvent('child_start', it.id);
    await waitFor(() => fs.existsSync(path.join(dir, `${it.id}.ready`)), { timeoutMs: 10000, what: 'ready' });
    w.kill('SIGTERM');
    await w.waitEvent('draining');
    w.kill('SIGTERM');
    assert.equal(await w.exitCode(), 0, w.stderr);
    assert.ok(fs.existsSync(path.join(dir, `${it.id}.term`)), 'the command got SIGTERM');
    assert.equal(w.named('child_signal', it.id)[0].reason, 'worker_stopping');
    assert.notEqual((await getWork(envId, it.id)).state, 'stopped');
  });
});

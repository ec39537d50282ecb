// `environd worker`, `environd enqueue` and `environd env-key` end to end against a real
// `environd serve`: items run exactly once with the right variables, stops through the
// API reach the child, leases that were lost are let go, signals drain or stop, and bad
// input gets a clear message. The workers run real /bin/sh children (item.sh below);
// what a child saw and when is read back from the files it writes.
'use strict';
const { test, describe, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { execFile } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');
const { Server, BIN, sleep } = require('./lib/server');
const { selfHosted, enqueueOk, waitFor, decodeSecret } = require('./lib/work');
const { Worker, workerSuite } = require('./lib/worker_proc');

// The command every test worker runs. What it does depends on the session id's prefix, so
// one worker can be handed items that behave differently. A command that traps SIGTERM
// writes WORK_ID.ready once the trap is set: tests signal it only after that.
const ITEM_SH = `#!/bin/sh
w="$ANTHROPIC_WORK_ID"
env > "$w.env"
echo $$ > "$w.pid"
echo "hello from $w"
case "$ANTHROPIC_SESSION_ID" in
fail_*) echo "failing on purpose" >&2; exit 3 ;;
span_*) date +%s%3N > "$w.start"; sleep 1.5; date +%s%3N > "$w.end" ;;
slow_*) trap 'date +%s%3N > "$w.term"; exit 0' TERM; : > "$w.ready"
	n=\${ANTHROPIC_SESSION_ID#slow_}; n=\${n%%_*}; i=0
	while [ $i -lt $((n * 10)) ]; do sleep 0.1; i=$((i + 1)); done
	date +%s%3N > "$w.done" ;;
term_*) trap 'date +%s%3N > "$w.term"; exit 0' TERM; : > "$w.ready"
	while :; do sleep 0.1; done ;;
ignore_*) trap 'date +%s%3N >> "$w.term"' TERM; : > "$w.ready"
	while :; do sleep 0.1; done ;;
hold_*) trap 'date +%s%3N > "$w.term"; exit 0' TERM; : > "$w.ready"
	i=0
	while [ ! -e release ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
	date +%s%3N > "$w.done" ;;
esac
exit 0
`;

const suite = workerSuite();
const { tmpDirs, getWork } = suite;
let server;
let apiKey;
let envSeq = 0;

function tmpDir() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'environd-worker-'));
  fs.writeFileSync(path.join(dir, 'item.sh'), ITEM_SH, { mode: 0o755 });
  tmpDirs.push(dir);
  return dir;
}

// Runs an environd subcommand; resolves { code, stdout, stderr }.
function run(args, env = {}) {
  return new Promise((resolve) => {
    execFile(BIN, args, { env: { ...process.env, ...env }, timeout: 20000 }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr }),
    );
  });
}

const newEnv = (tag) => selfHosted(server, apiKey, `worker-${tag}-${++envSeq}`);

function readEnvFile(dir, workId) {
  const text = fs.readFileSync(path.join(dir, `${workId}.env`), 'utf8');
  const vars = {};
  for (const line of text.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) vars[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return { text, vars };
}

const fileIn = (dir, name) => path.join(dir, name);
const readNumber = (file) => Number(fs.readFileSync(file, 'utf8').trim().split('\n')[0]);

// A command that traps SIGTERM has set its trap.
const waitReady = (dir, workId) =>
  waitFor(() => fs.existsSync(fileIn(dir, `${workId}.ready`)), { timeoutMs: 10000, intervalMs: 20, what: `${workId} ready` });

// Running, that is: a zombie waiting for init to reap it counts as gone.
function alive(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

before(() => {
  ({ server, apiKey } = suite);
});

describe('environd worker', { concurrency: 4 }, () => {
  test('runs each item exactly once, with its variables and without the environment key', async () => {
    const { envId, envKey } = await newEnv('once');
    const dir = tmpDir();
    const sessions = ['run_a', 'run_b', 'run_c', 'run_d', 'run_e'];
    const items = [];
    // Half through the CLI (which prints only the work id), half through the API.
    for (const [i, s] of sessions.entries()) {
      if (i % 2) {
        items.push(await enqueueOk(server, apiKey, envId, s));
      } else {
        const r = await run(['enqueue', envId, '--session', s, '--metadata', `n=${i}`], { ENVIROND_URL: server.url, ENVIROND_API_KEY: apiKey });
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, /^work_[0-9A-Za-z]{24}\n$/);
        items.push({ id: r.stdout.trim(), data: { id: s } });
      }
    }
    const hc = await run(['enqueue', envId, '--healthcheck'], { ENVIROND_URL: server.url, ENVIROND_API_KEY: apiKey });
    assert.equal(hc.code, 0, hc.stderr);
    const hcId = hc.stdout.trim();

    const w = new Worker(server, { envId, envKey, dir, args: ['--once', '--concurrency', '2'] });
    assert.equal(await w.exitCode(), 0, w.stderr);

    for (const it of items) {
      assert.equal(w.named('child_start', it.id).length, 1, `${it.id} ran once`);
      const { text, vars } = readEnvFile(dir, it.id);
      assert.equal(vars.ANTHROPIC_WORK_ID, it.id);
      assert.equal(vars.ANTHROPIC_ENVIRONMENT_ID, envId);
      assert.equal(vars.ANTHROPIC_SESSION_ID, it.data.id);
      assert.equal(vars.ANTHROPIC_BASE_URL, server.url);
      const secret = decodeSecret(vars.ANTHROPIC_WORK_SECRET);
      assert.match(secret.sessions_token, /^envd_req_/);
      assert.equal(vars.ANTHROPIC_ENVIRONMENT_KEY, undefined, 'the key is not passed by default');
      assert.ok(!text.includes(envKey), 'the key appears nowhere in the environment');
      assert.equal(vars.PWD, fs.realpathSync(dir));
      assert.ok(w.named('output', it.id).some((e) => e.stream === 'stdout' && e.line === `hello from ${it.id}`));
      const got = await getWork(envId, it.id);
      assert.equal(got.state, 'stopped', `${it.id} stopped after its command`);
      assert.ok(got.acknowledged_at && got.started_at, `${it.id} was acked and heartbeat`);
    }
    assert.equal(w.named('child_start', hcId).length, 0, 'a healthcheck runs no command');
    assert.equal((await getWork(envId, hcId)).state, 'stopped');
    assert.equal(w.named('claim').length, 6);
    assert.ok(!w.stderr.includes(envKey), 'the log never shows the key');
  });

  test('--pass-environment-key hands the key to the command', async () => {
    const { envId, envKey } = await newEnv('pass');
    const dir = tmpDir();
    const it = await enqueueOk(server, apiKey, envId, 'run_pass');
    const keyFile = fileIn(dir, 'key');
    fs.writeFileSync(keyFile, `${envKey}\n`);
    const w = new Worker(server, { envId, dir, args: ['--once', '--pass-environment-key', '--environment-key-file', keyFile] });
    assert.equal(await w.exitCode(), 0, w.stderr);
    assert.equal(readEnvFile(dir, it.id).vars.ANTHROPIC_ENVIRONMENT_KEY, envKey);
    assert.ok(!w.stderr.includes(envKey));
  });

  test('a failing or missing command still gets its item stopped', async () => {
    const { envId, envKey } = await newEnv('fail');
    const dir = tmpDir();
    const failing = await enqueueOk(server, apiKey, envId, 'fail_1');
    const w = new Worker(server, { envId, envKey, dir, args: ['--once'] });
    assert.equal(await w.exitCode(), 0, w.stderr);
    assert.equal(w.named('child_exit', failing.id)[0].status, 'exit 3');
    assert.ok(w.named('output', failing.id).some((e) => e.stream === 'stderr' && e.line === 'failing on purpose'));
    assert.equal((await getWork(envId, failing.id)).state, 'stopped');

    const missing = await enqueueOk(server, apiKey, envId, 'run_missing');
    const w2 = new Worker(server, { envId, envKey, dir, args: ['--once', '--on-work', './no-such-command --flag'] });
    assert.equal(await w2.exitCode(), 0, w2.stderr);
    assert.equal(w2.named('child_exit', missing.id)[0].status, 'exit 127');
    assert.equal((await getWork(envId, missing.id)).state, 'stopped');
  });

  test('--concurrency N never runs more than N children at once', async () => {
    const { envId, envKey } = await newEnv('conc');
    const dir = tmpDir();
    const items = [];
    for (let i = 0; i < 9; i++) items.push(await enqueueOk(server, apiKey, envId, `span_${i}`));
    const w = new Worker(server, { envId, envKey, dir, args: ['--once', '--concurrency', '3'] });
    assert.equal(await w.exitCode(), 0, w.stderr);
    // Each child wrote when it started and ended; count the overlap at every start.
    const spans = items.map((it) => [readNumber(fileIn(dir, `${it.id}.start`)), readNumber(fileIn(dir, `${it.id}.end`))]);
    let most = 0;
    for (const [start] of spans) most = Math.max(most, spans.filter(([s, e]) => s <= start && start < e).length);
    assert.ok(most <= 3, `at most 3 children at once, saw ${most}`);
    assert.ok(most >= 2, `the slots ran in parallel (saw ${most})`);
    for (const it of items) assert.equal((await getWork(envId, it.id)).state, 'stopped');
  });

  test('a graceful stop through the API reaches the child as SIGTERM within 15 s', async (t) => {
    const { envId, envKey } = await newEnv('stop');
    const dir = tmpDir();
    const it = await enqueueOk(server, apiKey, envId, 'term_1');
    // Default heartbeat interval: this is the latency an operator gets.
    const w = new Worker(server, { envId, envKey, dir });
    await w.waitEvent('child_start', it.id);
    await waitReady(dir, it.id);
    const stopAt = Date.now();
    const r = await server.raw('POST', `/v1/environments/${envId}/work/${it.id}/stop`, { key: apiKey, body: { force: false } });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.state, 'stopping');
    const termFile = fileIn(dir, `${it.id}.term`);
    await waitFor(() => fs.existsSync(termFile) && fs.readFileSync(termFile, 'utf8').trim(), { timeoutMs: 16000, intervalMs: 50, what: 'SIGTERM in the child' });
    const latency = readNumber(termFile) - stopAt;
    t.diagnostic(`stop-to-SIGTERM latency: ${latency} ms`);
    assert.ok(latency < 15000, `SIGTERM ${latency} ms after the stop`);
    // The item is stopped once the child has exited, well after the signal was logged.
    await waitFor(async () => (await getWork(envId, it.id)).state === 'stopped', { what: 'item stopped' });
    assert.equal(w.named('child_signal', it.id)[0].reason, 'stop_requested');
    w.kill('SIGTERM');
    assert.equal(await w.exitCode(), 0, w.stderr);
  });

  test('a child that ignores SIGTERM is killed after --grace', async () => {
    const { envId, envKey } = await newEnv('grace');
    const dir = tmpDir();
    const it = await enqueueOk(server, apiKey, envId, 'ignore_1');
    const w = new Worker(server, { envId, envKey, dir, args: ['--grace', '1', '--heartbeat-interval', '1'] });
    await w.waitEvent('child_start', it.id);
    // The script's own pid: /bin/sh -c may run it as a child of its own, and that shell
    // dies of the SIGTERM the script traps.
    await waitReady(dir, it.id);
    const pid = readNumber(fileIn(dir, `${it.id}.pid`));
    const r = await server.raw('POST', `/v1/environments/${envId}/work/${it.id}/stop`, { key: apiKey, body: { force: false } });
    assert.equal(r.status, 200, r.text);
    const termFile = fileIn(dir, `${it.id}.term`);
    await waitFor(() => fs.existsSync(termFile) && fs.readFileSync(termFile, 'utf8').trim(), { timeoutMs: 8000, what: 'SIGTERM' });
    await waitFor(() => !alive(pid), { timeoutMs: 8000, intervalMs: 20, what: 'the child gone' });
    await w.waitEvent('child_exit', it.id);
    // The grace period, as the worker timed it: from its SIGTERM to its SIGKILL (each
    // logged just after it was sent, so the KILL line may trail the command's death).
    await waitFor(() => w.named('child_signal', it.id).length >= 2, { timeoutMs: 5000, what: 'the KILL logged' });
    const signals = w.named('child_signal', it.id);
    assert.deepEqual(signals.map((e) => e.signal), ['TERM', 'KILL'], w.stderr);
    const grace = Date.parse(signals[1].ts) - Date.parse(signals[0].ts);
    assert.ok(grace >= 950, `SIGKILL came after the 1 s grace period (${grace} ms)`);
    assert.ok(grace < 6000, `SIGKILL came soon after the grace period (${grace} ms)`);
    await waitFor(async () => (await getWork(envId, it.id)).state === 'stopped', { what: 'item stopped' });
    w.kill('SIGTERM');
    assert.equal(await w.exitCode(), 0);
  });

  test('SIGTERM drains: no new claims, the running child finishes, exit 0', async () => {
    const { envId, envKey } = await newEnv('drain');
    const dir = tmpDir();
    const it = await enqueueOk(server, apiKey, envId, 'slow_2');
    const w = new Worker(server, { envId, envKey, dir });
    await w.waitEvent('child_start', it.id);
    w.kill('SIGTERM');
    await w.waitEvent('draining');
    const later = await enqueueOk(server, apiKey, envId, 'run_later');
    assert.equal(await w.exitCode(), 0, w.stderr);
    assert.ok(fs.existsSync(fileIn(dir, `${it.id}.done`)), 'the child ran to its end');
    assert.ok(!fs.existsSync(fileIn(dir, `${it.id}.term`)), 'the child got no SIGTERM');
    assert.equal((await getWork(envId, it.id)).state, 'stopped');
    const l = await getWork(envId, later.id);
    assert.equal(l.state, 'queued', 'nothing new was claimed');
    assert.equal(l.acknowledged_at, null);
    assert.equal(w.named('claim', later.id).length, 0);
  });

  test('SIGHUP drains like SIGTERM', async () => {
    const { envId, envKey } = await newEnv('hup');
    const dir = tmpDir();
    const it = await enqueueOk(server, apiKey, envId, 'slow_2');
    const w = new Worker(server, { envId, envKey, dir });
    await w.waitEvent('child_start', it.id);
    w.kill('SIGHUP');
    assert.equal((await w.waitEvent('draining')).signal, 'HUP');
    assert.equal(await w.exitCode(), 0, w.stderr);
    assert.ok(fs.existsSync(fileIn(dir, `${it.id}.done`)), 'the child ran to its end');
    assert.ok(!fs.existsSync(fileIn(dir, `${it.id}.term`)), 'the child got no SIGTERM');
    assert.equal((await getWork(envId, it.id)).state, 'stopped');
  });

  test('the command never sees the worker\'s API keys', async () => {
    const { envId, envKey } = await newEnv('apikey');
    const dir = tmpDir();
    const it = await enqueueOk(server, apiKey, envId, 'run_apikey');
    const w = new Worker(server, {
      envId,
      envKey,
      dir,
      args: ['--once'],
      env: { ENVIROND_API_KEY: apiKey, ANTHROPIC_API_KEY: 'sk-ant-test', ANTHROPIC_AUTH_TOKEN: 'auth-test' },
    });
    assert.equal(await w.exitCode(), 0, w.stderr);
    const { text, vars } = readEnvFile(dir, it.id);
    assert.equal(vars.ENVIROND_API_KEY, undefined);
    assert.equal(vars.ANTHROPIC_API_KEY, undefined);
    assert.equal(vars.ANTHROPIC_AUTH_TOKEN, undefined);
    assert.ok(!text.includes(apiKey), 'the API key appears nowhere in the environment');
    assert.ok(vars.ANTHROPIC_WORK_SECRET, 'the item\'s own secret is there');
    assert.equal((await getWork(envId, it.id)).state, 'stopped');
  });

  test('a stale worker cannot stop the item of its new holder', async () => {
    const { envId, envKey } = await newEnv('stale');
    const dirA = tmpDir();
    const dirB = tmpDir();
    // A's command ends once A is stopped (the test releases it); B's runs on.
    const it = await enqueueOk(server, apiKey, envId, 'hold_1');
    const args = ['--lease-ttl', '10', '--heartbeat-interval', '2', '--grace', '2'];
    const a = new Worker(server, { envId, envKey, dir: dirA, args });
    await a.waitEvent('child_start', it.id);
    await waitFor(async () => (await getWork(envId, it.id)).state === 'active', { what: 'active' });
    await sleep(2500); // at least one beat that asked for the short lease
    a.kill('SIGSTOP');
    fs.writeFileSync(fileIn(dirA, 'release'), '');
    let b;
    try {
      await waitFor(() => fs.existsSync(fileIn(dirA, `${it.id}.done`)), { timeoutMs: 8000, what: 'A\'s command done' });
      // Once the lease runs out the item is queued again and B takes it.
      b = new Worker(server, { envId, envKey, dir: dirB, args });
      await b.waitEvent('child_start', it.id, 25000);
    } finally {
      a.kill('SIGCONT');
    }
    await a.waitEvent('item_released', it.id, 10000);
    await sleep(2000); // room for any stop A might still send
    assert.equal(a.named('item_stopped', it.id).length, 0, 'A did not stop the item');
    const now = await getWork(envId, it.id);
    assert.equal(now.state, 'active', 'B still has it');
    assert.equal(now.stop_requested_at, null);
    const pidFile = fileIn(dirB, `${it.id}.pid`);
    assert.ok(alive(readNumber(pidFile)), 'B\'s command still runs');
    assert.ok(!fs.existsSync(fileIn(dirB, `${it.id}.term`)), 'B\'s command got no signal');
    assert.equal(b.named('child_signal', it.id).length, 0);
    a.kill('SIGTERM');
    assert.equal(await a.exitCode(), 0, a.stderr);
    b.kill('SIGTERM');
    await b.waitEvent('draining');
    b.kill('SIGTERM');
    assert.equal(await b.exitCode(), 0, b.stderr);
    assert.equal((await getWork(envId, it.id)).state, 'stopped');
  });

  test('a second signal stops running children now and stops their items', async () => {
    const { envId, envKey } = await newEnv('abort');
    const dir = tmpDir();
    const it = await enqueueOk(server, apiKey, envId, 'slow_60');
    const w = new Worker(server, { envId, envKey, dir, args: ['--grace', '2'] });
    await w.waitEvent('child_start', it.id);
    await waitReady(dir, it.id);
    const started = Date.now();
    w.kill('SIGTERM');
    await w.waitEvent('draining');
    w.kill('SIGTERM');
    assert.equal(await w.exitCode(), 0, w.stderr);
    assert.ok(Date.now() - started < 8000, 'exited without waiting out the 60 s child');
    assert.ok(fs.existsSync(fileIn(dir, `${it.id}.term`)), 'the child got SIGTERM');
    assert.equal(w.named('child_signal', it.id)[0].reason, 'worker_stopping');
    assert.equal((await getWork(envId, it.id)).state, 'stopped');
  });

  test('kill -9 of the worker leaves no command running', async () => {
    const { envId, envKey } = await newEnv('kill9');
    const dir = tmpDir();
    const it = await enqueueOk(server, apiKey, envId, 'slow_60');
    const w = new Worker(server, { envId, envKey, dir });
    await w.waitEvent('child_start', it.id);
    const pidFile = fileIn(dir, `${it.id}.pid`);
    await waitFor(() => fs.existsSync(pidFile) && fs.readFileSync(pidFile, 'utf8').trim(), { what: 'the command running' });
    const pid = readNumber(pidFile);
    assert.ok(alive(pid));
    w.kill('SIGKILL');
    await w.exited;
    await waitFor(() => !alive(pid), { timeoutMs: 3000, intervalMs: 20, what: 'the command gone with its worker' });
    // Its lease runs out on the server and the item goes back to the queue (not tested:
    // that is the server's T18, 90 s away).
    assert.equal((await getWork(envId, it.id)).state, 'active');
  });

  test('a lost lease kills the child and leaves the item to its new holder', async () => {
    const { envId, envKey, worker: sdk } = await newEnv('lost');
    const dir = tmpDir();
    const it = await enqueueOk(server, apiKey, envId, 'slow_60');
    // The shortest lease the server grants (10 s), beat every 2 s.
    const w = new Worker(server, { envId, envKey, dir, args: ['--lease-ttl', '10', '--heartbeat-interval', '2', '--grace', '2'] });
    await w.waitEvent('child_start', it.id);
    await waitFor(async () => (await getWork(envId, it.id)).state === 'active', { what: 'active' });
    await sleep(2500); // at least one beat that asked for the short lease
    // Cut the worker off: it cannot beat, its child keeps running.
    w.kill('SIGSTOP');
    try {
      // Once the lease runs out the item is queued again and another worker takes it.
      let claimed = null;
      await waitFor(
        async () => {
          const got = await sdk.beta.environments.work.poll(envId, { block_ms: 999 });
          if (got && got.id === it.id) claimed = got;
          return claimed;
        },
        { timeoutMs: 20000, intervalMs: 100, what: 'the item back in the queue' },
      );
      const work = sdk.beta.environments.work;
      await work.ack(it.id, { environment_id: envId });
      await work.heartbeat(it.id, { environment_id: envId, expected_last_heartbeat: 'NO_HEARTBEAT' });
    } finally {
      w.kill('SIGCONT');
    }
    await w.waitEvent('item_released', it.id, 10000);
    assert.ok(w.named('lease_lost', it.id).length >= 1);
    // Past the deadline someone else may run it already: SIGKILL at once, no grace.
    assert.deepEqual(w.named('child_signal', it.id).map((e) => [e.signal, e.reason]), [['KILL', 'lease_lost']], w.stderr);
    assert.ok(!fs.existsSync(fileIn(dir, `${it.id}.term`)), 'the child got no SIGTERM and no grace period');
    assert.equal(w.named('item_stopped', it.id).length, 0, 'the worker did not stop the item');
    const now = await getWork(envId, it.id);
    assert.equal(now.state, 'active', 'the new holder still has it');
    assert.equal(now.stop_requested_at, null);
    await sdk.beta.environments.work.stop(it.id, { environment_id: envId, force: true });
    w.kill('SIGTERM');
    assert.equal(await w.exitCode(), 0, w.stderr);
  });

  test('refusals and bad input end with a clear message and no crash', async () => {
    const { envId, envKey } = await newEnv('bad');
    const dir = tmpDir();

    const noFile = await run(['worker', '--environment', envId, '--on-work', 'true', '--environment-key-file', fileIn(dir, 'missing')], { ANTHROPIC_ENVIRONMENT_KEY: '' });
    assert.equal(noFile.code, 2);
    assert.match(noFile.stderr, /cannot read key file .*missing: No such file/);
    const noKey = await run(['worker', '--environment', envId, '--on-work', 'true'], { ANTHROPIC_ENVIRONMENT_KEY: '' });
    assert.equal(noKey.code, 2);
    assert.match(noKey.stderr, /set ANTHROPIC_ENVIRONMENT_KEY or pass --environment-key-file/);
    const flag = await run(['worker', '--environment', envId, '--on-work', 'true', '--environment-key', envKey]);
    assert.equal(flag.code, 2);
    assert.ok(!flag.stderr.includes(envKey), 'the refused key is not echoed');

    const unknown = new Worker(server, { envId: 'env_000000000000000000000000', envKey, dir });
    assert.equal(await unknown.exitCode(), 1);
    // Another environment's key: 404 if the server hides the id, 403 if it names the key.
    assert.ok(['403', '404'].includes(unknown.named('poll_refused')[0].status), unknown.stderr);
    assert.match(unknown.named('poll_refused')[0].error, /env_000000000000000000000000/);

    const bogus = new Worker(server, { envId, envKey: 'envd_env_not_a_real_key', dir });
    assert.equal(await bogus.exitCode(), 1);
    assert.equal(bogus.named('poll_refused')[0].status, '401');
    assert.match(bogus.named('poll_refused')[0].error, /environment key was not accepted/);

    // A cloud environment has no keys of its own, so this is the 403 of a foreign key; a
    // 400 (SPEC: work routes on cloud environments) ends the worker the same way.
    const cloud = await server.client(apiKey).beta.environments.create({ name: `worker-cloud-${++envSeq}` });
    const onCloud = new Worker(server, { envId: cloud.id, envKey, dir });
    assert.equal(await onCloud.exitCode(), 1);
    assert.ok(['400', '403'].includes(onCloud.named('poll_refused')[0].status), onCloud.stderr);
  });

  test('an unreachable or garbage-answering server is retried with backoff until told to stop', async () => {
    const { envId, envKey } = await newEnv('down');
    const dir = tmpDir();
    // Nothing listens on port 1 (a port a parallel test could never be handed).
    const down = new Worker(server, { envId, envKey, dir, baseUrl: 'http://127.0.0.1:1' });
    // A server that answers every request with a page that is not JSON.
    const garbage = http.createServer((req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end('<html>hi'));
    await new Promise((resolve) => garbage.listen(0, '127.0.0.1', resolve));
    const junk = new Worker(server, { envId, envKey, dir, baseUrl: `http://127.0.0.1:${garbage.address().port}` });
    try {
      for (const w of [down, junk]) {
        await waitFor(() => w.named('poll_failed').length >= 2, { timeoutMs: 8000, what: `two failed polls in\n${w.stderr}` });
        const waits = w.named('poll_failed').map((e) => Number(e.backoff_ms));
        assert.ok(waits[1] > waits[0], `backoff grows: ${waits}`);
        assert.ok(waits.every((ms) => ms <= 60000));
        w.kill('SIGTERM');
        assert.equal(await w.exitCode(5000), 0, w.stderr);
      }
      assert.match(down.named('poll_failed')[0].error, /connect/i);
      assert.match(junk.named('poll_failed')[0].error, /not JSON/);
    } finally {
      garbage.close();
    }
  });

  test('env-key create prints only the key; list shows it; revoke locks the worker out', async () => {
    const { envId } = await newEnv('keys');
    const dir = tmpDir();
    const env = { ENVIROND_URL: server.url, ENVIROND_API_KEY: apiKey };
    const created = await run(['env-key', 'create', envId, '--name', 'host-1'], env);
    assert.equal(created.code, 0, created.stderr);
    assert.match(created.stdout, /^envd_env_\S+\n$/);
    const key = created.stdout.trim();
    const listed = await run(['env-key', 'list', envId, '--json'], env);
    assert.equal(listed.code, 0, listed.stderr);
    const mine = JSON.parse(listed.stdout).find((k) => k.name === 'host-1');
    assert.ok(mine && /^envkey_/.test(mine.id), listed.stdout);
    assert.ok(!listed.stdout.includes(key), 'list never shows a key');

    // The API key from a file works as well as from the variable.
    fs.writeFileSync(fileIn(dir, 'api'), apiKey);
    const revoked = await run(['env-key', 'revoke', envId, mine.id, '--api-key-file', fileIn(dir, 'api')], { ENVIROND_URL: server.url, ENVIROND_API_KEY: '' });
    assert.equal(revoked.code, 0, revoked.stderr);
    const w = new Worker(server, { envId, envKey: key, dir });
    assert.equal(await w.exitCode(), 1);
    assert.equal(w.named('poll_refused')[0].status, '401');

    const again = await run(['env-key', 'revoke', envId, mine.id], env);
    assert.notEqual(again.code, 0);
    assert.match(again.stderr, /HTTP 404/);
    const noKey = await run(['env-key', 'list', envId], { ENVIROND_URL: server.url, ENVIROND_API_KEY: '' });
    assert.equal(noKey.code, 2);
    assert.match(noKey.stderr, /ENVIROND_API_KEY/);
  });

  test('enqueue prints the work id, returns the live item for a busy session, and reports errors', async () => {
    const { envId } = await newEnv('enq');
    const env = { ENVIROND_URL: server.url, ENVIROND_API_KEY: apiKey };
    const first = await run(['enqueue', envId, '--session', 'sesn_x', '--metadata', 'k=v', '--metadata=a=b=c'], env);
    assert.equal(first.code, 0, first.stderr);
    const id = first.stdout.trim();
    const item = await getWork(envId, id);
    assert.deepEqual(item.data, { type: 'session', id: 'sesn_x' });
    assert.deepEqual(item.metadata, { k: 'v', a: 'b=c' });
    const second = await run(['enqueue', envId, '--session', 'sesn_x'], env);
    assert.equal(second.code, 0);
    assert.equal(second.stdout.trim(), id);
    assert.match(second.stderr, /already has a live work item/);
    const missing = await run(['enqueue', 'env_000000000000000000000000', '--session', 's'], env);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /HTTP 404/);
    const down = await run(['enqueue', envId, '--session', 's', '--base-url', 'http://127.0.0.1:1'], env);
    assert.equal(down.code, 1);
    assert.match(down.stderr, /cannot reach/);
    const usage = await run(['enqueue', envId], env);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /--session ID is required/);
  });
});

describe('environd worker across a server restart', () => {
  let own;
  let ownKey;
  before(async () => {
    own = new Server();
    ownKey = own.createKey();
    await own.start();
  });
  after(async () => {
    if (own) {
      await own.stop();
      own.cleanup();
    }
  });

  test('running children survive a server restart and their items are stopped afterwards', async () => {
    const { envId, envKey } = await selfHosted(own, ownKey, 'restart');
    const dir = tmpDir();
    const it = await enqueueOk(own, ownKey, envId, 'slow_5');
    const w = new Worker(own, { envId, envKey, dir, args: ['--heartbeat-interval', '1'] });
    await w.waitEvent('child_start', it.id);
    await sleep(1200);
    // Same port, so the worker's base URL still points at it.
    own.extraArgs = ['--listen', `127.0.0.1:${own.port}`];
    await own.stop();
    await sleep(1500);
    await own.start();
    await waitFor(() => fs.existsSync(fileIn(dir, `${it.id}.done`)), { timeoutMs: 15000, what: 'the child to finish' });
    assert.ok(!fs.existsSync(fileIn(dir, `${it.id}.term`)), 'the child was not signalled');
    assert.equal(w.named('child_signal', it.id).length, 0);
    assert.ok(w.named('heartbeat_failed', it.id).length >= 1, 'the worker noticed the outage');
    await waitFor(async () => (await getWork(envId, it.id, own, ownKey)).state === 'stopped', { timeoutMs: 15000, what: 'item stopped' });
    w.kill('SIGTERM');
    assert.equal(await w.exitCode(), 0, w.stderr);
  });
});

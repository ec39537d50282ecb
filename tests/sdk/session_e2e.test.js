// The whole loop end to end: the official SDK's EnvironmentWorker.run(), unchanged,
// against `environd serve`, with `environd agent echo` as the agent and the session CLI
// as the producer. A session's message is a shell command; the worker runs it (a file
// appears in its workdir) and posts the result; the transcript is tool use -> tool result
// -> agent message -> idle end_turn; the work item ends stopped; a second turn runs too;
// `session watch --until-idle` prints the events; an echo runner SIGKILLed while it holds
// a turn is replaced by another that completes it.
'use strict';
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawn, execFile, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');
const { Server, BIN } = require('./lib/server');
const { selfHosted, waitFor, sleep } = require('./lib/work');

// The server hands a turn out again this soon after its runner stops beating it.
const TURN_LEASE_MS = 2000;


let server, apiKey, agentKey, client, env, agent, workdir;
const abort = new AbortController();
let workerDone;
const runners = new Set();

function echoRunner(baseUrl, tag) {
  const p = spawn(BIN, ['agent', 'echo', '--base-url', baseUrl, '--log-format', 'json', '--concurrency', '2'], {
    env: { ...process.env, ENVIROND_AGENT_KEY: agentKey },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  p.tag = tag;
  p.text = '';
  p.stderr.on('data', (d) => (p.text += d));
  p.done = new Promise((resolve) => p.once('close', (code, signal) => resolve({ code, signal })));
  runners.add(p);
  p.done.then(() => runners.delete(p));
  return p;
}

function cli(args, extraEnv = {}) {
  return new Promise((resolve) =>
    execFile(BIN, args, { env: { ...process.env, ENVIROND_URL: server.url, ENVIROND_API_KEY: apiKey, ...extraEnv }, timeout: 60000 },
      (err, stdout, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr })),
  );
}

async function transcript(sessionId) {
  const out = [];
  for await (const ev of client.beta.sessions.events.list(sessionId, { limit: 100, order: 'asc' })) out.push(ev);
  return out;
}

// Resolves the transcript once it holds `n` idle end_turn events.
function endTurns(sessionId, n, timeoutMs = 60000) {
  return waitFor(
    async () => {
      const evs = await transcript(sessionId);
      return evs.filter((e) => e.type === 'session.status_idle' && e.stop_reason?.type === 'end_turn').length >= n && evs;
    },
    { timeoutMs, intervalMs: 100, what: `${n} end_turn idles on ${sessionId}` },
  );
}

const userMessage = (text) => ({ events: [{ type: 'user.message', content: [{ type: 'text', text }] }] });

before(async () => {
  server = await new Server({ args: ['--agent-turn-lease-ms', String(TURN_LEASE_MS)] }).start();
  apiKey = server.createKey();
  agentKey = execFileSync(BIN, ['key', 'create', '--agent', '--db', server.db], { encoding: 'utf8' }).match(/envd_agt_\w+/)[0];
  client = server.client(apiKey);
  const sh = await selfHosted(server, apiKey, 'session-e2e');
  env = sh;
  agent = await client.beta.agents.create({ name: 'echo', model: 'environd-echo', tools: [{ type: 'agent_toolset_20260401' }] });
  workdir = fs.mkdtempSync(path.join(os.tmpdir(), 'environd-session-e2e-'));
  // The official worker, unchanged: polls the environment, follows each session, runs
  // its bash tool uses in workdir, posts the results, stops the item once idle.
  const workerClient = server.client(sh.envKey, { maxRetries: 2 });
  workerDone = workerClient.beta.environments.work
    .worker({ environmentId: sh.envId, environmentKey: sh.envKey, workdir, maxIdleMs: 1500 })
    .run(abort.signal)
    .catch((e) => {
      if (!abort.signal.aborted) throw e;
    });
  echoRunner(server.url, 'main');
});

after(async () => {
  abort.abort();
  await Promise.race([workerDone, sleep(5000)]);
  for (const r of runners) r.kill('SIGKILL');
  await server.stop();
  server.cleanup();
  fs.rmSync(workdir, { recursive: true, force: true });
});

let session; // shared by the tests that follow, in order

test('a message runs on the worker and the transcript is tool use -> result -> message -> end_turn', async () => {
  session = await client.beta.sessions.create({ agent: agent.id, environment_id: env.envId, title: 'e2e' });
  assert.match(session.id, /^sesn_/);
  await client.beta.sessions.events.send(session.id, userMessage('echo hi > hello.txt && echo written'));
  const evs = await endTurns(session.id, 1);
  assert.equal(fs.readFileSync(path.join(workdir, 'hello.txt'), 'utf8'), 'hi\n');
  // The requires_action idle is left out of the order: the worker may answer the tool use
  // before the agent has posted it (the agent then reports at once, with no idle between).
  const waiting = (e) => e.type === 'session.status_idle' && e.stop_reason?.type === 'requires_action';
  const kinds = evs.filter((e) => e.type !== 'session.status_running' && !waiting(e)).map((e) => e.type);
  assert.deepEqual(kinds, ['user.message', 'agent.tool_use', 'user.tool_result', 'agent.message', 'session.status_idle']);
  const use = evs.find((e) => e.type === 'agent.tool_use');
  assert.equal(use.name, 'bash');
  assert.deepEqual(use.input, { command: 'echo hi > hello.txt && echo written' });
  for (const ra of evs.filter(waiting)) assert.deepEqual(ra.stop_reason, { type: 'requires_action', event_ids: [use.id] });
  assert.deepEqual(evs[evs.length - 1].stop_reason, { type: 'end_turn' });
  const result = evs.find((e) => e.type === 'user.tool_result');
  assert.equal(result.tool_use_id, use.id);
  const msg = evs.find((e) => e.type === 'agent.message');
  assert.match(msg.content[0].text, /^Ran `echo hi > hello.txt && echo written` \(exit status 0\):\nwritten/);
  // The work item of the session ends stopped once the worker is done with it.
  await waitFor(
    async () => {
      const r = await server.raw('GET', `/v1/environments/${env.envId}/work?limit=100`, { key: env.envKey });
      return r.status === 200 && r.json.data.some((w) => w.data.id === session.id) && r.json.data.filter((w) => w.data.id === session.id).every((w) => w.state === 'stopped');
    },
    { timeoutMs: 30000, intervalMs: 200, what: 'the session item stopped' },
  );
});

test('a second turn on the same session runs too, and watch --until-idle prints it', async () => {
  // As a script does it: send, then watch. The watch prints what is there, then follows
  // the stream until the idle that ends this turn (the first turn's is no longer newest).
  const sent = await cli(['session', 'send', session.id, 'cat hello.txt']);
  assert.equal(sent.code, 0, sent.stderr);
  const watchSeen = cli(['session', 'watch', session.id, '--until-idle']);
  const evs = await endTurns(session.id, 2);
  const msgs = evs.filter((e) => e.type === 'agent.message');
  assert.equal(msgs.length, 2);
  assert.equal(msgs[1].content[0].text, 'Ran `cat hello.txt` (exit status 0):\nhi');
  const w = await watchSeen;
  assert.equal(w.code, 0, w.stderr);
  const lines = w.stdout.trim().split('\n');
  // Each event once, in order, the newest an end_turn.
  assert.deepEqual(lines.map((l) => l.split(/\s+/)[0]), evs.map((e) => e.type));
  assert.match(w.stdout, /agent\.tool_use\s+bash: cat hello\.txt\n/);
  assert.match(w.stdout, /user\.tool_result\s+hi\n/);
  assert.match(lines[lines.length - 1], /^session\.status_idle\s+end_turn$/);
});

test('session create --message and watch from the CLI', async () => {
  const agentId = (await cli(['agent', 'create', '--name', 'cli-echo'])).stdout.trim();
  assert.match(agentId, /^agent_/);
  const created = await cli(['session', 'create', env.envId, '--agent', agentId, '--title', 'cli', '--message', 'echo cli > cli.txt']);
  assert.equal(created.code, 0, created.stderr);
  const sid = created.stdout.trim();
  assert.match(sid, /^sesn_/);
  const w = await cli(['session', 'watch', sid, '--until-idle']);
  assert.equal(w.code, 0, w.stderr);
  assert.match(w.stdout, /^user\.message\s+echo cli > cli\.txt$/m);
  assert.match(w.stdout, /^agent\.message\s+Ran `echo cli > cli\.txt` \(exit status 0\):/m);
  assert.equal(fs.readFileSync(path.join(workdir, 'cli.txt'), 'utf8'), 'cli\n');
  // An unknown session is a clear refusal.
  const bad = await cli(['session', 'watch', 'sesn_nope']);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /HTTP 404/);
});

test('an echo runner SIGKILLed while it holds a turn is replaced; the turn completes once', async () => {
  // Only the runner under test may take turns now.
  for (const r of runners) r.kill('SIGTERM');
  await Promise.all([...runners].map((r) => r.done));
  // Its requests go through a proxy that holds the transcript read, so it is certain to be
  // holding the turn when it is killed.
  let stalled = false;
  const target = new URL(server.url);
  const proxy = http.createServer((req, res) => {
    if (req.method === 'GET' && /^\/v1\/sessions\/[^/]+\/events/.test(req.url)) {
      stalled = true;
      return; // never answered
    }
    const up = http.request({ host: target.hostname, port: target.port, path: req.url, method: req.method, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode, r.headers);
      r.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise((r) => proxy.listen(0, '127.0.0.1', r));
  const doomed = echoRunner(`http://127.0.0.1:${proxy.address().port}`, 'doomed');
  const s = await client.beta.sessions.create({ agent: agent.id, environment_id: env.envId });
  await client.beta.sessions.events.send(s.id, userMessage('echo survived > survived.txt'));
  await waitFor(() => stalled, { timeoutMs: 20000, what: 'the doomed runner to hold the turn' });
  doomed.kill('SIGKILL');
  await doomed.done;
  proxy.close();
  echoRunner(server.url, 'second');
  const evs = await endTurns(s.id, 1);
  assert.equal(fs.readFileSync(path.join(workdir, 'survived.txt'), 'utf8'), 'survived\n');
  assert.equal(evs.filter((e) => e.type === 'agent.tool_use').length, 1);
  assert.equal(evs.filter((e) => e.type === 'agent.message').length, 1);
});

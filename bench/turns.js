#!/usr/bin/env node
// bench/turns.js - a session turn's round trip through environd, end to end:
//
//   producer posts user.message ─▶ echo agent turn ─▶ agent.tool_use seen on the worker's
//   stream ─▶ worker posts user.tool_result ─▶ echo agent turn ─▶ agent.message seen on
//   the producer's stream.
//
// It starts `environd serve` and `environd agent echo` in a temp dir, creates the keys, a
// self_hosted environment, an echo agent and --sessions sessions, and drives --turns turns
// one at a time, round robin over the sessions. The worker is a minimal stream-driven
// one: it follows each session's SSE stream with the official SDK and answers each bash
// tool use with a user.tool_result (running the command with /bin/sh when --exec is given,
// else answering at once, so the numbers are environd's and not the shell's).
//
// Anchor: the round trip of one `POST /v1/sessions/{id}/events` (a single API call on
// the same server, measured in the same run), so a turn is stated as a multiple of it.
//
// usage: node bench/turns.js [--turns N] [--sessions S] [--warmup K] [--exec] [--environd PATH] [--json]
'use strict';
const { spawn, execFileSync, execFile } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..');
const Anthropic = require(path.join(ROOT, 'tests/sdk/node_modules/@anthropic-ai/sdk')).default;
const BETA = 'managed-agents-2026-04-01';

const opts = { turns: 200, sessions: 4, warmup: 10, exec: false, environd: path.join(ROOT, 'build/environd'), json: false };
for (let i = 2; i < process.argv.length; i++) {
  const a = process.argv[i];
  if (a === '--turns') opts.turns = Number(process.argv[++i]);
  else if (a === '--sessions') opts.sessions = Number(process.argv[++i]);
  else if (a === '--warmup') opts.warmup = Number(process.argv[++i]);
  else if (a === '--environd') opts.environd = process.argv[++i];
  else if (a === '--exec') opts.exec = true;
  else if (a === '--json') opts.json = true;
  else {
    console.error(`bench/turns.js: unknown option ${a}\n` + fs.readFileSync(__filename, 'utf8').match(/\/\/ usage: .*/)[0]);
    process.exit(2);
  }
}
if (!(opts.turns >= 1 && opts.sessions >= 1 && opts.warmup >= 0)) {
  console.error('bench/turns.js: --turns and --sessions must be at least 1, --warmup at least 0');
  process.exit(2);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const now = () => Number(process.hrtime.bigint()) / 1e6; // ms, monotonic
const children = [];
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'environd-bench-turns-'));
function cleanup() {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  fs.rmSync(dir, { recursive: true, force: true });
}
process.on('exit', cleanup);
process.on('SIGINT', () => process.exit(130));

function pct(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}
function stats(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return { n: s.length, p50: pct(s, 50), p90: pct(s, 90), p99: pct(s, 99), max: s[s.length - 1] };
}

async function main() {
  const db = path.join(dir, 'bench.db');
  const portFile = path.join(dir, 'port');
  const serve = spawn(opts.environd, ['serve', '--listen', '127.0.0.1:0', '--port-file', portFile, '--db', db, '--log-level', 'warn'], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  children.push(serve);
  for (let i = 0; i < 200 && !(fs.existsSync(portFile) && fs.readFileSync(portFile, 'utf8').trim()); i++) await sleep(50);
  const url = `http://127.0.0.1:${fs.readFileSync(portFile, 'utf8').trim()}`;
  const apiKey = execFileSync(opts.environd, ['key', 'create', '--db', db], { encoding: 'utf8' }).match(/envd_api_\w+/)[0];
  const agentKey = execFileSync(opts.environd, ['key', 'create', '--agent', '--db', db], { encoding: 'utf8' }).match(/envd_agt_\w+/)[0];
  const client = new Anthropic({ apiKey, baseURL: url, maxRetries: 2 });

  const env = await client.beta.environments.create({ name: 'bench-turns', config: { type: 'self_hosted' } });
  const agent = await client.beta.agents.create({ name: 'bench-echo', model: 'environd-echo', tools: [{ type: 'agent_toolset_20260401' }] });
  const echo = spawn(opts.environd, ['agent', 'echo', '--base-url', url, '--concurrency', '4', '--log-level', 'warn'], {
    env: { ...process.env, ENVIROND_AGENT_KEY: agentKey },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  children.push(echo);

  // Per session: who is waiting for what.
  const waits = new Map(); // `${session}:${kind}` -> resolve(time)
  const expect = (sid, kind) => new Promise((resolve) => waits.set(`${sid}:${kind}`, resolve));
  const seen = (sid, kind, t) => {
    const w = waits.get(`${sid}:${kind}`);
    if (w) {
      waits.delete(`${sid}:${kind}`);
      w(t);
    }
  };
  const abort = new AbortController();

  // The worker: one stream per session; each bash tool use gets its result.
  async function work(sid) {
    const stream = await client.beta.sessions.events.stream(sid, {}, { signal: abort.signal });
    for await (const ev of stream) {
      if (ev.type === 'agent.tool_use') {
        seen(sid, 'tool_use', now());
        let output = 'ok';
        if (opts.exec) {
          output = await new Promise((resolve) =>
            execFile('/bin/sh', ['-c', ev.input.command], { cwd: dir, timeout: 10000 }, (err, out) => resolve(String(out || err))),
          );
        }
        const t = now();
        await client.beta.sessions.events.send(sid, {
          events: [{ type: 'user.tool_result', tool_use_id: ev.id, is_error: false, content: [{ type: 'text', text: output }] }],
        });
        seen(sid, 'result_posted', t);
      }
    }
  }
  // The producer: one stream per session, watching for the agent's message.
  async function produce(sid) {
    const stream = await client.beta.sessions.events.stream(sid, {}, { signal: abort.signal });
    for await (const ev of stream) if (ev.type === 'agent.message') seen(sid, 'message', now());
  }

  const sessions = [];
  for (let i = 0; i < opts.sessions; i++) {
    const s = await client.beta.sessions.create({ agent: agent.id, environment_id: env.id, title: `bench ${i}` });
    sessions.push(s.id);
    work(s.id).catch((e) => abort.signal.aborted || console.error('worker stream:', e.message));
    produce(s.id).catch((e) => abort.signal.aborted || console.error('producer stream:', e.message));
  }
  await sleep(300); // the streams are open before the first message

  const total = [], toToolUse = [], resultToMessage = [], anchor = [];
  for (let i = 0; i < opts.warmup + opts.turns; i++) {
    const sid = sessions[i % sessions.length];
    const gotUse = expect(sid, 'tool_use');
    const gotPosted = expect(sid, 'result_posted');
    const gotMessage = expect(sid, 'message');
    const t0 = now();
    await client.beta.sessions.events.send(sid, { events: [{ type: 'user.message', content: [{ type: 'text', text: `echo turn ${i}` }] }] });
    const tPosted = now();
    const deadline = sleep(30000).then(() => {
      throw new Error(`turn ${i} on ${sid} did not complete in 30 s`);
    });
    const tUse = await Promise.race([gotUse, deadline]);
    const tResult = await Promise.race([gotPosted, deadline]);
    const tMsg = await Promise.race([gotMessage, deadline]);
    if (i < opts.warmup) continue;
    anchor.push(tPosted - t0);
    total.push(tMsg - t0);
    toToolUse.push(tUse - t0);
    resultToMessage.push(tMsg - tResult);
  }
  abort.abort();
  const out = {
    turns: opts.turns,
    sessions: opts.sessions,
    exec: opts.exec,
    turn_ms: stats(total),
    message_to_tool_use_ms: stats(toToolUse),
    result_to_message_ms: stats(resultToMessage),
    anchor_post_event_ms: stats(anchor),
  };
  out.ratio_p50 = out.turn_ms.p50 / out.anchor_post_event_ms.p50;
  if (opts.json) {
    console.log(JSON.stringify(out));
  } else {
    const row = (name, s) =>
      `${name.padEnd(34)} ${s.p50.toFixed(2).padStart(8)} ${s.p90.toFixed(2).padStart(8)} ${s.p99.toFixed(2).padStart(8)} ${s.max.toFixed(2).padStart(8)}`;
    console.log(`${opts.turns} turns over ${opts.sessions} sessions, worker ${opts.exec ? 'runs /bin/sh' : 'answers at once'}`);
    console.log(`${'ms'.padEnd(34)} ${'p50'.padStart(8)} ${'p90'.padStart(8)} ${'p99'.padStart(8)} ${'max'.padStart(8)}`);
    console.log(row('turn (message -> agent.message)', out.turn_ms));
    console.log(row('  message -> tool use on worker', out.message_to_tool_use_ms));
    console.log(row('  tool result -> agent.message', out.result_to_message_ms));
    console.log(row('anchor: one POST .../events', out.anchor_post_event_ms));
    console.log(`turn p50 / anchor p50 = ${out.ratio_p50.toFixed(1)}`);
  }
  echo.kill('SIGTERM');
  serve.kill('SIGTERM');
  await sleep(200);
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error('bench/turns.js:', e.stack || e.message);
    process.exit(1);
  },
);

// The SDK's own EnvironmentWorker, unchanged, completes real work against environd: a
// session's user message makes the agent runner (tests/sdk/lib/agent_runner.js, over the
// agent extension) ask for a bash tool use; the worker runs it in its workdir and posts
// the result; the runner answers and ends the turn; the worker's item ends stopped. A
// second turn on the same session runs too.
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const Anthropic = require('@anthropic-ai/sdk').default;
const { Server } = require('./lib/server');
const { AgentRunner, createAgentKey, waitFor } = require('./lib/agent_runner');

async function setup() {
  const server = await new Server().start();
  const key = server.createKey();
  const client = server.client(key);
  const agentKey = createAgentKey(server);
  const agent = await client.beta.agents.create({
    name: 'builder',
    model: 'claude-sonnet-4-5',
    tools: [{ type: 'agent_toolset_20260401' }],
  });
  const env = await client.beta.environments.create({ name: 'hosts', config: { type: 'self_hosted' } });
  const envKey = (await server.raw('POST', `/v1/environments/${env.id}/keys`, { key, body: { name: 'w' } })).json.key;
  assert.match(envKey, /^envd_env_/);
  return { server, key, client, agentKey, agent, env, envKey };
}

// The scripted agent: a user message asks for `touch <file>` via bash; a tool result is
// answered with a message and end_turn.
function scriptedAgent(seen) {
  return async (turn, events, runner) => {
    const last = events[events.length - 1];
    seen.push({ turn: turn.id, last: last.type });
    if (last.type === 'user.message') {
      const name = last.content[0].text;
      const [running, use] = await runner.postOk(turn.id, [
        { type: 'session.status_running' },
        { type: 'agent.tool_use', name: 'bash', input: { command: `echo made > ${name}` } },
      ]);
      assert.equal(running.type, 'session.status_running');
      const r = await runner.post(turn.id, [
        { type: 'session.status_idle', stop_reason: { type: 'requires_action', event_ids: [use.id] } },
      ]);
      if (r.status === 400 && /no unanswered tool use/.test(r.text)) {
        // The worker runs a tool use the moment it sees it, so its result may come before
        // this requires_action: then the turn reports at once (as the echo agent does).
        const result = (await runner.events(turn.session_id)).find((e) => e.type === 'user.tool_result');
        await runner.postOk(turn.id, [
          { type: 'agent.message', content: [{ type: 'text', text: `done: ${result && result.is_error ? 'error' : 'ok'}` }] },
          { type: 'session.status_idle', stop_reason: { type: 'end_turn' } },
        ]);
      } else if (r.status !== 200) {
        throw new Error(`turn events: ${r.status} ${r.text}`);
      }
    } else if (last.type === 'user.tool_result') {
      await runner.postOk(turn.id, [
        { type: 'agent.message', content: [{ type: 'text', text: `done: ${last.is_error ? 'error' : 'ok'}` }] },
        { type: 'session.status_idle', stop_reason: { type: 'end_turn' } },
      ]);
    } else {
      await runner.postOk(turn.id, [{ type: 'session.status_idle', stop_reason: { type: 'end_turn' } }]);
    }
  };
}

// A turn as the scripted agent runs it; without its requires_action when the worker's tool
// result came first.
const TURN = ['user.message', 'agent.tool_use', 'idle:requires_action', 'user.tool_result', 'agent.message', 'idle:end_turn'];
function assertTurn(tr) {
  const raced = TURN.filter((x) => x !== 'idle:requires_action');
  assert.ok(
    JSON.stringify(tr) === JSON.stringify(TURN) || JSON.stringify(tr) === JSON.stringify(raced),
    `unexpected turn: ${JSON.stringify(tr)}`,
  );
  return tr.length;
}

function transcript(events) {
  return events
    .filter((e) => e.type !== 'session.status_running')
    .map((e) => (e.type === 'session.status_idle' ? `idle:${e.stop_reason.type}` : e.type));
}

test('the SDK EnvironmentWorker runs a session turn end to end, twice', async (t) => {
  const { server, client, agentKey, agent, env, envKey } = await setup();
  const workdir = fs.mkdtempSync(path.join(os.tmpdir(), 'environd-worker-'));
  const stop = new AbortController();
  t.after(() => {
    stop.abort();
    fs.rmSync(workdir, { recursive: true, force: true });
    return server.stop().then(() => server.cleanup());
  });
  const runner = new AgentRunner(server.url, agentKey);
  const seen = [];
  const runnerDone = runner.serve({ handle: scriptedAgent(seen), signal: stop.signal }).catch((e) => {
    if (!stop.signal.aborted) throw e;
  });
  const workerClient = new Anthropic({ apiKey: 'unused', baseURL: server.url, maxRetries: 2 });
  const worker = workerClient.beta.environments.work.worker({
    environmentId: env.id,
    environmentKey: envKey,
    workdir,
    maxIdleMs: 500,
  });
  const workerDone = worker.run(stop.signal).catch((e) => {
    if (!stop.signal.aborted) throw e;
  });

  const session = await client.beta.sessions.create({
    agent: { type: 'agent', id: agent.id, version: 1 },
    environment_id: env.id,
    initial_events: [{ type: 'user.message', content: [{ type: 'text', text: 'first.txt' }] }],
  });
  assert.equal(session.status, 'idle');
  const list = async () => {
    const out = [];
    for await (const e of client.beta.sessions.events.list(session.id, { limit: 1000 })) out.push(e);
    return out;
  };
  const ended = (n) => async () => {
    const evs = await list();
    return evs.filter((e) => e.type === 'session.status_idle' && e.stop_reason.type === 'end_turn').length >= n && evs;
  };
  let events = await waitFor(ended(1), { what: 'the first turn to end' });
  assert.equal(fs.readFileSync(path.join(workdir, 'first.txt'), 'utf8'), 'made\n');
  const first = assertTurn(transcript(events));
  const use = events.find((e) => e.type === 'agent.tool_use');
  const result = events.find((e) => e.type === 'user.tool_result');
  assert.equal(result.tool_use_id, use.id);
  assert.equal(result.is_error, false);
  assert.equal(events.find((e) => e.type === 'agent.message').content[0].text, 'done: ok');

  // The worker stops its item once the turn ended and the session stayed idle.
  const workList = async () =>
    (await server.raw('GET', `/v1/environments/${env.id}/work`, { headers: { authorization: `Bearer ${envKey}` } }))
      .json.data;
  await waitFor(async () => (await workList()).every((w) => w.state === 'stopped'), { what: 'the item to stop' });
  assert.equal((await workList()).length, 1);
  assert.equal((await client.beta.sessions.retrieve(session.id)).status, 'idle');

  // A second turn on the same session: a new message brings a new item and a new turn.
  await client.beta.sessions.events.send(session.id, {
    events: [{ type: 'user.message', content: [{ type: 'text', text: 'second.txt' }] }],
  });
  events = await waitFor(ended(2), { what: 'the second turn to end' });
  assert.equal(fs.readFileSync(path.join(workdir, 'second.txt'), 'utf8'), 'made\n');
  assertTurn(transcript(events).slice(first));
  await waitFor(async () => {
    const items = await workList();
    return items.length === 2 && items.every((w) => w.state === 'stopped');
  }, { what: 'the second item to stop' });
  assert.ok(seen.length >= 4, JSON.stringify(seen));
  stop.abort();
  await Promise.all([runnerDone, workerDone]);
});

// Agents and sessions through the SDK's own resources (client.beta.agents,
// client.beta.sessions): every field round-trips, versions, archive, delete; what
// environd cannot honour is a 400 naming the field; a session's work item follows it.
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const { Server } = require('./lib/server');
const { SDK, TS_RE, expectBadRequest, expectNotFound, expectError } = require('./lib/helpers');

// Every item of an SDK list, following next_page.
async function listAll(pages) {
  const out = [];
  for await (const x of pages) out.push(x);
  return out;
}

const AGENT_KEYS = [
  'archived_at', 'created_at', 'description', 'execution_identity', 'id', 'mcp_servers', 'metadata', 'model',
  'multiagent', 'name', 'skills', 'system', 'tools', 'type', 'updated_at', 'version',
];
const SESSION_KEYS = [
  'agent', 'archived_at', 'budget', 'created_at', 'deployment_id', 'environment_id', 'id', 'metadata',
  'outcome_evaluations', 'resources', 'stats', 'status', 'title', 'type', 'updated_at', 'usage', 'vault_ids',
];

let server, key, client, env;

test.before(async () => {
  server = await new Server().start();
  key = server.createKey();
  client = server.client(key);
  env = await client.beta.environments.create({ name: 'hosts', config: { type: 'self_hosted' } });
});
test.after(async () => {
  await server.stop();
  server.cleanup();
});

const TOOLSET = { type: 'agent_toolset_20260401' };
const CUSTOM = {
  type: 'custom',
  name: 'lookup',
  description: 'looks things up',
  input_schema: { type: 'object', properties: { q: { type: 'string' } }, required: ['q'] },
};

test('agents: create, get, list, update makes versions, versions, archive', async () => {
  const a = await client.beta.agents.create({
    name: 'helper',
    model: { id: 'claude-opus-4-6', effort: 'low' },
    system: 'be brief',
    tools: [TOOLSET, CUSTOM],
    metadata: { team: 'x' },
  });
  assert.deepEqual(Object.keys(a).sort(), AGENT_KEYS);
  assert.match(a.id, /^agent_[0-9A-Za-z]{24}$/);
  assert.equal(a.type, 'agent');
  assert.equal(a.version, 1);
  assert.deepEqual(a.model, { id: 'claude-opus-4-6', effort: { type: 'low' } });
  assert.deepEqual(a.tools[0], {
    type: 'agent_toolset_20260401',
    configs: [],
    default_config: { enabled: true, permission_policy: { type: 'always_allow' } },
  });
  assert.deepEqual(a.tools[1], CUSTOM);
  assert.deepEqual([a.skills, a.mcp_servers, a.multiagent, a.execution_identity], [[], [], null, null]);
  assert.match(a.created_at, TS_RE);
  assert.equal(a.archived_at, null);
  assert.deepEqual(await client.beta.agents.retrieve(a.id), a);

  // No effective change: no new version.
  const same = await client.beta.agents.update(a.id, { system: 'be brief' });
  assert.equal(same.version, 1);
  const v2 = await client.beta.agents.update(a.id, { version: 1, system: 'be kind', metadata: { team: null, k: 'v' } });
  assert.equal(v2.version, 2);
  assert.equal(v2.system, 'be kind');
  assert.deepEqual(v2.metadata, { k: 'v' });
  // A stale version is a conflict.
  await expectError(client.beta.agents.update(a.id, { version: 1, system: 'x' }), {
    cls: SDK.ConflictError, status: 409, fields: ['version'],
  });
  const old = await client.beta.agents.retrieve(a.id, { version: 1 });
  assert.equal(old.system, 'be brief');
  const versions = await listAll(client.beta.agents.versions.list(a.id));
  assert.deepEqual(versions.map((v) => v.version), [2, 1]);
  const page = await client.beta.agents.versions.list(a.id, { limit: 1 });
  assert.equal(page.data.length, 1);
  assert.ok(page.hasNextPage());

  const listed = await listAll(client.beta.agents.list());
  assert.ok(listed.some((x) => x.id === a.id && x.version === 2));
  const archived = await client.beta.agents.archive(a.id);
  assert.match(archived.archived_at, TS_RE);
  assert.ok(!(await listAll(client.beta.agents.list())).some((x) => x.id === a.id));
  assert.ok((await listAll(client.beta.agents.list({ include_archived: true }))).some((x) => x.id === a.id));
  await expectBadRequest(client.beta.agents.update(a.id, { system: 'y' }), ['archived']);
  await expectBadRequest(
    client.beta.sessions.create({ agent: a.id, environment_id: env.id }),
    ['agent', 'archived'],
  );
  await expectNotFound(client.beta.agents.retrieve('agent_000000000000000000000000'));
  // Another organization sees nothing.
  const other = server.client(server.createKey({ org: 'other' }));
  await expectNotFound(other.beta.agents.retrieve(a.id));
});

test('agents: what environd cannot honour is a 400 naming the field', async () => {
  const base = { name: 'n', model: 'claude-sonnet-4-5' };
  const cases = [
    [{ ...base, skills: [{ type: 'anthropic', skill_id: 'xlsx' }] }, ['skills']],
    [{ ...base, mcp_servers: [{ type: 'url', name: 'm', url: 'https://x' }] }, ['mcp_servers']],
    [{ ...base, multiagent: { type: 'coordinator', agents: [] } }, ['multiagent']],
    [{ ...base, execution_identity: { type: 'aws_role', role_arn: 'arn' } }, ['execution_identity']],
    [{ ...base, tools: [{ type: 'mcp_toolset', mcp_server_name: 'm' }] }, ['tools[0]', 'mcp']],
    [{ ...base, tools: [{ type: 'agent_toolset_20260401', configs: [{ name: 'web_fetch' }] }] }, ['tools[0].configs[0].name']],
    [{ ...base, tools: [{ ...CUSTOM, input_schema: { type: 'string' } }] }, ['tools[0].input_schema.type']],
    [{ name: 'n' }, ['model']],
    [{ ...base, name: '' }, ['name']],
  ];
  for (const [body, fields] of cases) await expectBadRequest(client.beta.agents.create(body), fields);
});

async function newAgent(extra = {}) {
  return client.beta.agents.create({ name: 'a', model: 'claude-sonnet-4-5', tools: [TOOLSET, CUSTOM], ...extra });
}

test('sessions: create, get, list, update, archive, delete; the work item follows', async () => {
  const agent = await newAgent();
  const s = await client.beta.sessions.create({
    agent: agent.id,
    environment_id: env.id,
    title: 'first',
    metadata: { k: 'v' },
    resources: [],
    vault_ids: [],
  });
  assert.deepEqual(Object.keys(s).sort(), SESSION_KEYS);
  assert.match(s.id, /^sesn_[0-9A-Za-z]{24}$/);
  assert.equal(s.status, 'idle');
  assert.deepEqual([s.resources, s.vault_ids, s.outcome_evaluations, s.budget], [[], [], [], null]);
  assert.equal(s.agent.id, agent.id);
  assert.equal(s.agent.version, 1);
  assert.equal(s.agent.type, 'agent');
  assert.ok(!('metadata' in s.agent));
  assert.deepEqual(s.metadata, { k: 'v' });
  assert.equal(s.title, 'first');
  assert.equal(typeof s.usage.input_tokens, 'number');
  assert.deepEqual(await client.beta.sessions.retrieve(s.id).then((x) => ({ ...x, stats: s.stats })), s);

  // No input yet: no worker needed, no work item.
  const work = async () =>
    (await server.raw('GET', `/v1/environments/${env.id}/work/stats`, { key })).json;
  assert.equal((await work()).depth, 0);
  await client.beta.sessions.events.send(s.id, {
    events: [{ type: 'user.message', content: [{ type: 'text', text: 'hello' }] }],
  });
  assert.equal((await work()).depth, 1);
  // A second message while the item is live adds none.
  await client.beta.sessions.events.send(s.id, {
    events: [{ type: 'user.message', content: [{ type: 'text', text: 'again' }] }],
  });
  assert.equal((await work()).depth, 1);

  const u = await client.beta.sessions.update(s.id, { title: 'renamed', metadata: { k: null, n: '1' } });
  assert.equal(u.title, 'renamed');
  assert.deepEqual(u.metadata, { n: '1' });
  const listed = await listAll(client.beta.sessions.list({ agent_id: agent.id }));
  assert.deepEqual(listed.map((x) => x.id), [s.id]);

  const archived = await client.beta.sessions.archive(s.id);
  assert.match(archived.archived_at, TS_RE);
  // Archiving stopped the queued item (T13).
  assert.equal((await work()).depth, 0);
  await expectBadRequest(
    client.beta.sessions.events.send(s.id, { events: [{ type: 'user.message', content: [{ type: 'text', text: 'x' }] }] }),
    ['archived'],
  );
  assert.ok(!(await listAll(client.beta.sessions.list())).some((x) => x.id === s.id));
  assert.ok((await listAll(client.beta.sessions.list({ include_archived: true }))).some((x) => x.id === s.id));
  const del = await client.beta.sessions.delete(s.id);
  assert.deepEqual(del, { id: s.id, type: 'session_deleted' });
  await expectNotFound(client.beta.sessions.retrieve(s.id));
  await expectNotFound(client.beta.sessions.events.list(s.id));
  await expectNotFound(
    client.beta.sessions.events.send(s.id, { events: [{ type: 'user.message', content: [{ type: 'text', text: 'x' }] }] }),
  );
});

test('sessions: what environd cannot honour is a 400 naming the field', async () => {
  const agent = await newAgent();
  const cloud = await client.beta.environments.create({ name: 'cloudy' });
  const base = { agent: agent.id, environment_id: env.id };
  const cases = [
    [{ ...base, environment_id: cloud.id }, ['environment_id', 'cloud']],
    [{ ...base, environment_id: 'env_000000000000000000000000' }, ['environment_id']],
    [{ ...base, resources: [{ type: 'file', file_id: 'f' }] }, ['resources']],
    [{ ...base, vault_ids: ['v'] }, ['vault_ids']],
    [{ ...base, budget: { type: 'usd', limit: 1 } }, ['budget']],
    [{ ...base, agent: { type: 'agent_with_overrides', id: agent.id } }, ['agent.type']],
    [{ ...base, agent: { type: 'agent', id: agent.id, version: 9 } }, ['agent', 'version']],
    [{ ...base, agent: 'agent_000000000000000000000000' }, ['agent']],
    [{ ...base, initial_events: [{ type: 'user.interrupt' }] }, ['initial_events[0].type']],
    [{ ...base, title: 7 }, ['title']],
  ];
  for (const [body, fields] of cases) await expectBadRequest(client.beta.sessions.create(body), fields);
  const s = await client.beta.sessions.create(base);
  await expectBadRequest(client.beta.sessions.update(s.id, { vault_ids: ['v'] }), ['vault_ids']);
});

test('events: list paginates, filters by type, orders both ways', async () => {
  const agent = await newAgent();
  const s = await client.beta.sessions.create({ agent: agent.id, environment_id: env.id });
  for (let i = 0; i < 5; i++) {
    await client.beta.sessions.events.send(s.id, {
      events: [
        { type: 'user.message', content: [{ type: 'text', text: `m${i}` }] },
        { type: 'user.interrupt' },
      ],
    });
  }
  const all = await listAll(client.beta.sessions.events.list(s.id, { limit: 3 }));
  assert.equal(all.length, 10);
  assert.deepEqual(all.filter((e) => e.type === 'user.message').map((e) => e.content[0].text), ['m0', 'm1', 'm2', 'm3', 'm4']);
  for (const e of all) {
    assert.match(e.id, /^sevt_[0-9A-Za-z]{24}$/);
    assert.match(e.processed_at, TS_RE);
  }
  const msgs = await listAll(client.beta.sessions.events.list(s.id, { types: ['user.message'], limit: 2 }));
  assert.equal(msgs.length, 5);
  const desc = await listAll(client.beta.sessions.events.list(s.id, { order: 'desc', limit: 4 }));
  assert.deepEqual(desc.map((e) => e.id), all.map((e) => e.id).reverse());
  const r = await server.raw('GET', `/v1/sessions/${s.id}/events?limit=1001`, { key });
  assert.equal(r.status, 400);
  assert.match(r.json.error.message, /limit/);
  const bad = await server.raw('GET', `/v1/sessions/${s.id}/events?types[]=nope`, { key });
  assert.equal(bad.status, 400);
  assert.match(bad.json.error.message, /types/);
  const forged = await server.raw('GET', `/v1/sessions/${s.id}/events?page=page_AAAA`, { key });
  assert.equal(forged.status, 400);
});

test('events: bad client events are refused whole and change nothing', async () => {
  const agent = await newAgent();
  const s = await client.beta.sessions.create({ agent: agent.id, environment_id: env.id });
  const before = await listAll(client.beta.sessions.events.list(s.id));
  const cases = [
    [[{ type: 'agent.message', content: [] }], ['events[0].type']],
    [[{ type: 'user.tool_result', tool_use_id: 'sevt_000000000000000000000000' }], ['events[0].tool_use_id']],
    [[{ type: 'user.message', content: [{ type: 'text', text: 'ok' }] }, { type: 'user.nonsense' }], ['events[1].type']],
    [[{ type: 'user.message', content: 'text' }], ['events[0].content']],
    [[], ['events']],
  ];
  for (const [events, fields] of cases) await expectBadRequest(client.beta.sessions.events.send(s.id, { events }), fields);
  // The body holds `events` and nothing else: an unknown field is named, and no event is stored.
  const ok = [{ type: 'user.message', content: [{ type: 'text', text: 'ok' }] }];
  await expectBadRequest(client.beta.sessions.events.send(s.id, { events: ok, extra: 1 }), ['extra']);
  await expectBadRequest(client.beta.sessions.events.send(s.id, {}), ['events']);
  assert.deepEqual(await listAll(client.beta.sessions.events.list(s.id)), before);
});

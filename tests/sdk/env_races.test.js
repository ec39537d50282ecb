// An environment's archive or delete and a write in that environment, at the same time:
// the write's environment check happens in the write's own transaction, so it either
// commits before the archive/delete (and the delete takes it along) or sees it.
//
// To make the two overlap on one server, the archive's (or delete's) commit is held in its
// fsync by the test storage layer; the write is sent meanwhile. A check made before the
// write's transaction would read the environment as it was before the held commit (not
// archived, still there) and let the write in; the write's own job runs after the held one
// and must refuse.
'use strict';
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { sqliteOnly } = require('./lib/pg');
const { storageServer } = require('./lib/storage');
const { selfHosted, enqueue, enqueueOk, waitFor, expectStatus, SDK } = require('./lib/work');

let server, key;

before(async () => {
  server = storageServer();
  await server.start();
  key = server.createKey();
});

after(async () => {
  await server.stop();
  server.cleanup();
});

const delayed = () => server.stderr.split('\n').filter((l) => l.includes('test_vfs: delayed sync call on wal')).length;

// Starts `request` with its commit held in the fsync; resolves once it is held, with
// `answered()` telling whether it has been answered since.
async function held(request) {
  const seen = delayed();
  server.setFaults('sync wal delay=6000 count=1'); // long enough for a loaded machine to send the overlapping request
  let done = false;
  const promise = request().finally(() => (done = true));
  await waitFor(() => delayed() > seen, { timeoutMs: 10000, what: 'the held commit' });
  server.setFaults();
  return { promise, answered: () => done };
}

test('an enqueue meets an archive being committed: refused (environment_archived), nothing queued', { skip: sqliteOnly('the archive\'s or delete\'s commit is held in its fsync by the SQLite test VFS') }, async (t) => {
  const { envId, worker } = await selfHosted(server, key, 'race-archive');
  const api = server.client(key);
  const archive = await held(() => api.beta.environments.archive(envId));
  const r = await enqueue(server, key, envId, 'sesn_race_archive');
  if (archive.answered()) t.diagnostic('the archive was answered before the enqueue was: not an overlap');
  assert.ok((await archive.promise).archived_at);
  assert.equal(r.status, 400, r.res.text);
  assert.equal(r.res.json.error.details.error_code, 'environment_archived');
  assert.equal(r.res.json.error.message, `environment ${envId} is archived: no new work may be enqueued`);
  assert.deepEqual((await worker.beta.environments.work.list(envId)).data, []);
  const stats = await api.beta.environments.work.stats(envId);
  assert.equal(stats.depth + stats.pending, 0);
});

test('a session create meets an archive being committed: refused, no session, no work', { skip: sqliteOnly('the archive\'s or delete\'s commit is held in its fsync by the SQLite test VFS') }, async (t) => {
  const { envId, worker } = await selfHosted(server, key, 'race-archive-session');
  const api = server.client(key);
  const agent = await api.beta.agents.create({ name: 'race', model: 'claude-sonnet-4-5' });
  const archive = await held(() => api.beta.environments.archive(envId));
  const s = await server.raw('POST', '/v1/sessions', {
    key,
    body: { agent: agent.id, environment_id: envId, initial_events: [{ type: 'user.message', content: [{ type: 'text', text: 'hi' }] }] },
  });
  if (archive.answered()) t.diagnostic('the archive was answered before the session create was: not an overlap');
  assert.ok((await archive.promise).archived_at);
  assert.equal(s.status, 400, s.text);
  assert.equal(s.json.error.message, `environment_id: environment ${envId} is archived`);
  assert.deepEqual((await worker.beta.environments.work.list(envId)).data, []);
});

test('enqueue and key create meet a delete being committed: 404, and nothing outlives the environment', { skip: sqliteOnly('the archive\'s or delete\'s commit is held in its fsync by the SQLite test VFS') }, async (t) => {
  const { envId, envKey, worker } = await selfHosted(server, key, 'race-delete');
  const queued = await enqueueOk(server, key, envId, 'sesn_race_before');
  const api = server.client(key);
  const del = await held(() => api.beta.environments.delete(envId));
  const [r, k] = await Promise.all([
    enqueue(server, key, envId, 'sesn_race_delete'),
    server.raw('POST', `/v1/environments/${envId}/keys`, { key, body: { name: 'late' } }),
  ]);
  const overlapped = !del.answered();
  assert.deepEqual(await del.promise, { id: envId, type: 'environment_deleted' });
  if (!overlapped) t.diagnostic('the delete was answered before the writes were: not an overlap');
  assert.equal(r.status, 404, r.res.text);
  assert.equal(r.res.json.error.message, `environment ${envId} not found`);
  assert.equal(k.status, 404, k.text);
  assert.equal(k.json.error.message, `environment ${envId} not found`);
  // Its key stopped working; its work and keys are gone with it.
  await expectStatus(worker.beta.environments.work.poll(envId), 401, { where: 'old key: ' });
  await expectStatus(api.beta.environments.work.retrieve(queued.id, { environment_id: envId }), 404, {
    cls: SDK.NotFoundError,
    where: 'work after delete: ',
  });
  // The session ids are free in another environment: no live item of them survived.
  const other = await selfHosted(server, key, 'race-delete-other');
  assert.equal((await enqueue(server, key, other.envId, 'sesn_race_before')).status, 201);
  assert.equal((await enqueue(server, key, other.envId, 'sesn_race_delete')).status, 201);
  assert.ok(envKey);
});

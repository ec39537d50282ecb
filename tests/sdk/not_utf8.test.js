// Bytes that are not UTF-8 in a path or a query string: no id is made of them, and a
// store whose text is UTF-8 (PostgreSQL) would refuse them as text, so they never reach
// the store. An id segment names nothing (404 not_found_error); the agent_id filter of the
// sessions list is a 400 naming it. Well-formed UTF-8 that names nothing is a plain 404.
'use strict';
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { Server } = require('./lib/server');
const { expectRawError } = require('./lib/helpers');
const { selfHosted } = require('./lib/work');

const BAD = ['%ff', 'env_%C0%AF', '%ED%A0%80', '%F4%90%80%80', 'x%E2%82'];
const GOOD_BUT_ABSENT = ['%F0%9F%9A%80', 'caf%C3%A9'];
let server, key, envId;

before(async () => {
  server = new Server();
  await server.start();
  key = server.createKey();
  ({ envId } = await selfHosted(server, key, 'not-utf8'));
});

after(async () => {
  await server.stop();
  server.cleanup();
});

test('an id that is not UTF-8 is a 404 on every kind of object', async () => {
  for (const id of [...BAD, ...GOOD_BUT_ABSENT]) {
    for (const p of [`/v1/environments/${id}`, `/v1/sessions/${id}`, `/v1/agents/${id}`, `/v1/sessions/${id}/events`]) {
      expectRawError(await server.raw('GET', p, { key }), 404);
    }
    expectRawError(await server.raw('GET', `/v1/environments/${envId}/work/${id}`, { key }), 404);
    expectRawError(await server.raw('POST', `/v1/environments/${id}/archive`, { key, body: {} }), 404);
  }
});

test('an agent_id filter that is not UTF-8 is a 400 naming agent_id', async () => {
  for (const id of BAD) {
    expectRawError(await server.raw('GET', `/v1/sessions?agent_id=${id}`, { key }), 400, { fields: ['agent_id'] });
  }
  for (const id of GOOD_BUT_ABSENT) {
    const r = await server.raw('GET', `/v1/sessions?agent_id=${id}`, { key });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json.data, []);
  }
});

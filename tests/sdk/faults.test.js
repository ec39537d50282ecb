// Fault seam: the server runs on a store whose every 7th call fails. Every request must
// still get a well-formed answer (success, or 503 overloaded_error with retry-after), the
// server must stay up, and what it acknowledged must be there after a clean restart.
'use strict';
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { Server } = require('./lib/server');

let server, key;

before(async () => {
  server = new Server({ args: ['--test-store-fault-every', '7'] });
  await server.start();
  key = server.createKey();
});

after(async () => {
  await server.stop();
  server.cleanup();
});

function checkAnswer(r, okStatuses) {
  assert.match(r.headers.get('request-id') || '', /^req_[0-9A-Za-z]{24}$/);
  if (okStatuses.includes(r.status)) return true;
  assert.equal(r.status, 503, `unexpected ${r.status}: ${r.text}`);
  assert.equal(r.json.type, 'error');
  assert.equal(r.json.error.type, 'overloaded_error');
  assert.ok(r.json.error.message.length > 0);
  assert.equal(r.headers.get('retry-after'), '1');
  return false;
}

// Retries a request until the fault lets it through (bounded), checking every answer.
async function until(method, path, opts, okStatuses) {
  for (let i = 0; i < 20; i++) {
    const r = await server.raw(method, path, opts);
    if (checkAnswer(r, okStatuses)) return r;
  }
  throw new Error(`${method} ${path} never succeeded`);
}

test('every request under store faults gets a clean answer, and acknowledged writes survive', async () => {
  const created = [];
  let faults = 0;
  for (let i = 0; i < 60; i++) {
    const r = await server.raw('POST', '/v1/environments', { key, body: { name: `f${i}`, config: { type: 'self_hosted' }, metadata: { i: String(i) } } });
    if (checkAnswer(r, [200])) created.push(r.json);
    else faults++;
    const l = await server.raw('GET', '/v1/environments?limit=5', { key });
    if (!checkAnswer(l, [200])) faults++;
  }
  assert.ok(faults > 5, 'the fault seam did not trip');
  assert.ok(created.length > 10);

  // The work cycle under faults, each step retried until it goes through.
  const env = created[0];
  const envKey = (await until('POST', `/v1/environments/${env.id}/keys`, { key, body: { name: 'w' } }, [200])).json.key;
  const bearer = { authorization: `Bearer ${envKey}` };
  for (let i = 0; i < 10; i++) {
    await until('POST', `/v1/environments/${env.id}/work`, { key, body: { data: { type: 'session', id: `s${i}` } } }, [200, 201]);
    const polled = await until('GET', `/v1/environments/${env.id}/work/poll?reclaim_older_than_ms=0`, { headers: bearer }, [200]);
    assert.notEqual(polled.json, null);
    await until('POST', `/v1/environments/${env.id}/work/${polled.json.id}/ack`, { headers: bearer }, [200]);
    await until('POST', `/v1/environments/${env.id}/work/${polled.json.id}/heartbeat`, { headers: bearer }, [200]);
    await until('POST', `/v1/environments/${env.id}/work/${polled.json.id}/stop`, { headers: bearer, body: { force: true } }, [200, 409]);
    await until('GET', `/v1/environments/${env.id}/work/stats`, { key }, [200]);
  }

  // Restart on a store without faults: everything acknowledged is there, unchanged.
  // A clean exit: also, under LeakSanitizer, no leak on any of the error paths above.
  const exit = await server.stop();
  assert.equal(exit.code, 0, `server exited with ${exit.code}: ${server.stderr.slice(-2000)}`);
  server.extraArgs = [];
  await server.start();
  for (const e of created) {
    const r = await server.raw('GET', `/v1/environments/${e.id}`, { key });
    assert.equal(r.status, 200);
    assert.deepEqual(r.json, e);
  }
  const work = await server.raw('GET', `/v1/environments/${env.id}/work?limit=100`, { headers: { authorization: `Bearer ${envKey}` } });
  assert.equal(work.status, 200);
  assert.equal(work.json.data.length, 10);
  for (const w of work.json.data) assert.equal(w.state, 'stopped');
});

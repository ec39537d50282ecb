// Shared assertions for the SDK suites: formats from SPEC §1, the error envelope, and a
// node:http request helper for what neither the SDK nor fetch sends cleanly.
'use strict';
const assert = require('node:assert/strict');
const http = require('node:http');
const SDK = require('@anthropic-ai/sdk');
const Anthropic = SDK.default;

// The environment error classes the SDK picks from `error.details.error_code`.
const Env = Anthropic.Beta.Environments;

const TS_RE = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/;
const ENV_ID_RE = /^env_[0-9A-Za-z]{24}$/;
const REQ_ID_RE = /^req_[0-9A-Za-z]{24}$/;
const CURSOR_RE = /^page_[A-Za-z0-9_-]+$/;

// SPEC §1: error.type by status.
const TYPE_BY_STATUS = {
  400: 'invalid_request_error',
  401: 'authentication_error',
  403: 'permission_error',
  404: 'not_found_error',
  405: 'invalid_request_error',
  409: 'invalid_request_error',
  412: 'invalid_request_error',
  413: 'request_too_large',
  429: 'rate_limit_error',
  500: 'api_error',
  503: 'overloaded_error',
  529: 'overloaded_error',
};

const EMPTY_PACKAGES = Object.freeze({ type: 'packages', apt: [], cargo: [], gem: [], go: [], npm: [], pip: [] });
const DEFAULT_CONFIG = Object.freeze({ type: 'cloud', networking: { type: 'unrestricted' }, packages: EMPTY_PACKAGES });

function packages(lists = {}) {
  return { ...EMPTY_PACKAGES, ...lists };
}

function limited(fields = {}) {
  return { type: 'limited', allow_mcp_servers: false, allow_package_managers: false, allowed_hosts: [], ...fields };
}

// A body of the error envelope of SPEC §1, checked exactly.
function assertEnvelope(body, status, headers, where = '') {
  assert.ok(body && typeof body === 'object' && !Array.isArray(body), `${where}error body is not a JSON object: ${JSON.stringify(body)}`);
  assert.deepEqual(Object.keys(body).sort(), ['error', 'request_id', 'type'], `${where}envelope keys: ${JSON.stringify(body)}`);
  assert.equal(body.type, 'error');
  assert.match(body.request_id, REQ_ID_RE);
  if (headers) assert.equal(headers.get('request-id'), body.request_id, `${where}request-id header differs from body`);
  const e = body.error;
  assert.ok(e && typeof e === 'object', `${where}error.error missing`);
  for (const k of Object.keys(e)) assert.ok(['type', 'message', 'details'].includes(k), `${where}unexpected key error.${k}`);
  assert.equal(e.type, TYPE_BY_STATUS[status], `${where}error.type for ${status}: ${JSON.stringify(body)}`);
  assert.equal(typeof e.message, 'string');
  assert.ok(e.message.length > 0, `${where}empty error message`);
  // SPEC §1: `details` is present only when there is a code.
  if ('details' in e) {
    assert.ok(e.details && typeof e.details === 'object', `${where}details not an object`);
    assert.equal(typeof e.details.error_code, 'string', `${where}details without error_code: ${JSON.stringify(e)}`);
  }
}

function assertMessageNames(message, fields, where = '') {
  for (const f of fields) {
    if (f instanceof RegExp) assert.match(message, f, `${where}message ${JSON.stringify(message)} should match ${f}`);
    else
      assert.ok(
        message.toLowerCase().includes(String(f).toLowerCase()),
        `${where}message ${JSON.stringify(message)} should name ${JSON.stringify(f)}`,
      );
  }
}

// Awaits an SDK call that must fail. `cls` is the SDK error class expected; with
// `exact` (default, except for 404s) the error must be exactly that class, so a server
// that attaches a misleading error_code (which makes the SDK throw a different typed
// error) is caught.
async function expectError(promise, { cls, status, code, fields = [], exact } = {}) {
  let err;
  try {
    const v = await promise;
    assert.fail(`expected HTTP ${status} (${cls && cls.name}) but the call succeeded: ${JSON.stringify(v)}`);
  } catch (e) {
    if (e instanceof assert.AssertionError) throw e;
    err = e;
  }
  if (!(err instanceof SDK.APIError) || err.status === undefined) throw err;
  const body = JSON.stringify(err.error);
  assert.equal(err.status, status, `status: ${body}`);
  if (cls) {
    assert.ok(err instanceof cls, `expected ${cls.name}, got ${err.constructor.name}: ${body}`);
    if (exact ?? (code === undefined && status !== 404))
      assert.equal(err.constructor.name, cls.name, `expected exactly ${cls.name}: ${body}`);
  }
  assertEnvelope(err.error, status, err.headers);
  assert.equal(err.requestID, err.error.request_id);
  if (code !== undefined) assert.equal(err.errorCode, code, `error_code: ${body}`);
  assertMessageNames(err.apiMessage, fields);
  return err;
}

const expectNotFound = (p) => expectError(p, { cls: SDK.NotFoundError, status: 404 });
const expectBadRequest = (p, fields = [], cls = SDK.BadRequestError) => expectError(p, { cls, status: 400, fields });

// For a raw response ({status, headers, json, text}).
function expectRawError(res, status, { code, fields = [] } = {}) {
  assert.equal(res.status, status, `status ${res.status}: ${res.text}`);
  assert.match(res.headers.get('content-type') || '', /^application\/json/);
  assertEnvelope(res.json, status, res.headers);
  if (code !== undefined) assert.equal(res.json.error.details && res.json.error.details.error_code, code, res.text);
  assertMessageNames(res.json.error.message, fields);
  return res;
}

function assertEnvironmentShape(e) {
  assert.deepEqual(
    Object.keys(e).sort(),
    ['archived_at', 'config', 'created_at', 'description', 'id', 'metadata', 'name', 'scope', 'type', 'updated_at'],
  );
  assert.equal(e.type, 'environment');
  assert.match(e.id, ENV_ID_RE);
  assert.match(e.created_at, TS_RE);
  assert.match(e.updated_at, TS_RE);
  if (e.archived_at !== null) assert.match(e.archived_at, TS_RE);
  assert.ok(e.updated_at >= e.created_at, `updated_at ${e.updated_at} < created_at ${e.created_at}`);
  assert.ok(['organization', 'account'].includes(e.scope));
  if (e.config.type === 'self_hosted') assert.deepEqual(Object.keys(e.config), ['type']);
  else {
    assert.equal(e.config.type, 'cloud');
    assert.deepEqual(Object.keys(e.config).sort(), ['networking', 'packages', 'type']);
    assert.deepEqual(Object.keys(e.config.packages).sort(), ['apt', 'cargo', 'gem', 'go', 'npm', 'pip', 'type']);
    if (e.config.networking.type === 'limited')
      assert.deepEqual(Object.keys(e.config.networking).sort(), [
        'allow_mcp_servers',
        'allow_package_managers',
        'allowed_hosts',
        'type',
      ]);
    else assert.deepEqual(e.config.networking, { type: 'unrestricted' });
  }
  for (const v of Object.values(e.metadata)) assert.equal(typeof v, 'string');
}

async function listAll(client, params = {}) {
  const out = [];
  for await (const e of client.beta.environments.list(params)) out.push(e);
  return out;
}

// A request over node:http that tolerates the server answering before the body is
// fully sent (413 on a large upload) and that can send a chunked body.
function httpRequest(url, { method = 'GET', headers = {}, body, chunked = false } = {}) {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    let answered = false;
    const h = { ...headers };
    if (body !== undefined && !chunked) h['content-length'] = Buffer.byteLength(body);
    if (chunked) h['transfer-encoding'] = 'chunked';
    const req = http.request(
      { host: u.hostname, port: u.port, path: u.pathname + u.search, method, headers: h, agent: false },
      (res) => {
        answered = true;
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('error', () => {});
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json;
          try {
            json = JSON.parse(text);
          } catch {}
          const hdrs = new Headers();
          for (const [k, v] of Object.entries(res.headers)) hdrs.set(k, Array.isArray(v) ? v.join(', ') : v);
          resolve({ status: res.statusCode, headers: hdrs, text, json });
        });
      },
    );
    // An error after the answer arrived (EPIPE while still uploading) is not a failure.
    // One turn of the event loop lets an already-received answer be parsed first.
    req.on('error', (e) => {
      if (!answered) setImmediate(() => (answered ? null : reject(e)));
    });
    if (body !== undefined) {
      if (chunked) {
        const buf = Buffer.isBuffer(body) ? body : Buffer.from(body);
        const step = 64 * 1024;
        let off = 0;
        const pump = () => {
          while (off < buf.length) {
            const ok = req.write(buf.subarray(off, off + step));
            off += step;
            if (!ok) return req.once('drain', pump);
          }
          req.end();
        };
        pump();
      } else req.end(body);
    } else req.end();
  });
}

module.exports = {
  SDK,
  Anthropic,
  Env,
  TS_RE,
  ENV_ID_RE,
  REQ_ID_RE,
  CURSOR_RE,
  TYPE_BY_STATUS,
  EMPTY_PACKAGES,
  DEFAULT_CONFIG,
  packages,
  limited,
  assertEnvelope,
  assertMessageNames,
  expectError,
  expectNotFound,
  expectBadRequest,
  expectRawError,
  assertEnvironmentShape,
  listAll,
  httpRequest,
};

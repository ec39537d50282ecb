// The web console (/console): its files and security headers over plain HTTP, then the
// pages in headless Chromium against a real `environd serve` — data made through the API
// shows up, actions taken in the pages reach the API, keys stay in sessionStorage — and the
// session transcript against a stand-in /v1/sessions that speaks the SDK's shapes and SSE.
//
// Chromium comes from Debian (scripts/install-deps). If it cannot start, this file fails:
// a console that was never opened is not a tested console.
'use strict';
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const puppeteer = require('puppeteer-core');
const { Server, BIN, BETA } = require('./lib/server');

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
// Screenshots go to console-shots/ beside the binary under test (build/ or build-asan/); CONSOLE_README_SCREENSHOT=path also writes the
// environment page there (that is how docs/console.png is made).
const SHOTS = path.join(path.dirname(BIN), 'console-shots');
const README_SHOT = process.env.CONSOLE_README_SCREENSHOT;
const WAIT = 20000; // per selector: generous for a loaded 2-core machine

let server;
let key;
let browser;

before(async () => {
  fs.mkdirSync(SHOTS, { recursive: true });
  server = new Server();
  await server.start();
  key = server.createKey();
  browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--headless=new', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run'],
    timeout: 60000,
  });
});

after(async () => {
  if (browser) await browser.close();
  if (server) {
    await server.stop();
    server.cleanup();
  }
});

function api(method, pathname, body, credential = key, headers = {}) {
  return server.raw(method, pathname, { headers: { authorization: `Bearer ${credential}`, ...headers }, body });
}

// A page that records script errors and CSP violations; "Failed to load resource" lines
// are the browser noting an HTTP error status, which some steps cause on purpose.
async function newPage() {
  const page = await browser.newPage();
  page.setDefaultTimeout(WAIT);
  await page.setViewport({ width: 1360, height: 900 });
  page.problems = [];
  page.on('pageerror', (e) => page.problems.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && !/Failed to load resource/.test(m.text())) page.problems.push(`console: ${m.text()}`);
  });
  page.on('dialog', (d) => d.accept());
  // Everything the console loads or calls comes from the server it was opened on.
  page.on('request', (req) => {
    const u = req.url();
    if (!u.startsWith('http://127.0.0.1:') && !u.startsWith('data:')) page.problems.push(`foreign request: ${u}`);
  });
  return page;
}

async function signIn(page, base, apiKey = key) {
  await page.goto(`${base}/console`, { waitUntil: 'domcontentloaded' });
  await page.waitForSelector('input[type=password]');
  await page.type('input[type=password]', apiKey);
  await page.click('form button[type=submit]');
  await page.waitForSelector('#nav:not([hidden])');
}

const textOf = (page, sel) => page.$eval(sel, (el) => el.textContent.trim());
const waitText = (page, sel, want) =>
  page.waitForFunction(
    (s, w) => {
      const el = document.querySelector(s);
      return el && el.textContent.trim() === w;
    },
    {},
    sel,
    want,
  );

async function shot(page, name) {
  const file = path.join(SHOTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

test('console files: content types, security headers, HEAD, 304, and 404/405 in the error envelope', async () => {
  const get = (p, headers = {}) => fetch(server.url + p, { headers });
  const index = await get('/console');
  assert.equal(index.status, 200);
  assert.equal(index.headers.get('content-type'), 'text/html; charset=utf-8');
  const html = await index.text();
  assert.match(html, /<script type="module" src="\/console\/app.js"><\/script>/);
  assert.doesNotMatch(html, /<script>|<script type="module">|\son[a-z]+=/, 'no inline script or handler');
  const csp = index.headers.get('content-security-policy');
  assert.match(csp, /default-src 'self'/);
  assert.match(csp, /script-src 'self'(;|$)/);
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|\*/);
  assert.match(csp, /frame-ancestors 'none'/);
  assert.equal(index.headers.get('x-content-type-options'), 'nosniff');
  assert.equal(index.headers.get('x-frame-options'), 'DENY');
  assert.equal(index.headers.get('referrer-policy'), 'no-referrer');
  assert.equal(index.headers.get('cache-control'), 'no-cache');
  assert.match(index.headers.get('request-id'), /^req_/);
  const etag = index.headers.get('etag');
  assert.match(etag, /^"[0-9a-f]{20}"$/);

  const same = await get('/console/index.html');
  assert.equal(await same.text(), html);
  const types = { 'app.js': 'text/javascript; charset=utf-8', 'console.css': 'text/css; charset=utf-8', 'sse.js': 'text/javascript; charset=utf-8' };
  for (const [file, type] of Object.entries(types)) {
    const r = await get(`/console/${file}`);
    assert.equal(r.status, 200, file);
    assert.equal(r.headers.get('content-type'), type, file);
    assert.equal(r.headers.get('x-content-type-options'), 'nosniff', file);
    assert.equal(r.headers.get('content-security-policy'), csp, file);
    const onDisk = fs.readFileSync(path.join(__dirname, '../../console', file), 'utf8');
    assert.equal(await r.text(), onDisk, `${file} is the file in console/`);
  }

  const head = await fetch(server.url + '/console/app.js', { method: 'HEAD' });
  assert.equal(head.status, 200);
  assert.equal(head.headers.get('content-type'), 'text/javascript; charset=utf-8');
  assert.equal(head.headers.get('content-security-policy'), csp);
  assert.equal(Number(head.headers.get('content-length')), fs.statSync(path.join(__dirname, '../../console/app.js')).size);
  assert.equal(await head.text(), '');

  const cached = await get('/console', { 'if-none-match': etag });
  assert.equal(cached.status, 304);
  assert.equal(await cached.text(), '');
  assert.equal((await get('/console', { 'if-none-match': `W/"0000", ${etag}` })).status, 304);
  assert.equal((await get('/console', { 'if-none-match': '*' })).status, 304);
  assert.equal((await get('/console', { 'if-none-match': '"0000"' })).status, 200);
  assert.equal((await get('/console/app.js', { 'if-none-match': etag })).status, 200, 'another file, another tag');

  for (const p of ['/console/nope.js', '/console/..%2Fapp.js', '/console/%2E%2E', '/console/a/b', '/console/', '/console/.hidden', '/console/APP.JS']) {
    const r = await get(p);
    assert.equal(r.status, 404, p);
    const body = await r.json();
    assert.equal(body.type, 'error', p);
    assert.equal(body.error.type, 'not_found_error', p);
    assert.match(body.request_id, /^req_/, p);
  }
  const post = await fetch(server.url + '/console', { method: 'POST' });
  assert.equal(post.status, 405);
  assert.equal(post.headers.get('allow'), 'GET');
  assert.equal((await post.json()).error.type, 'invalid_request_error');
  // The pages need no credential, but they open nothing else: the API still wants one.
  assert.equal((await get('/v1/environments', { 'anthropic-beta': BETA })).status, 401);
});

test('console pages show what the API holds and their actions reach the API', async () => {
  // Data made through the API first.
  const farm = (await api('POST', '/v1/environments', { name: 'build-farm', config: { type: 'self_hosted' }, metadata: { team: 'infra' } })).json;
  const sandbox = (await api('POST', '/v1/environments', { name: 'sandbox', config: { type: 'cloud' } })).json;
  assert.ok(farm.id && sandbox.id);
  const items = [];
  for (const [type, id] of [['session', 'sesn_alpha'], ['session', 'sesn_beta'], ['healthcheck', 'hc_one']]) {
    const r = await api('POST', `/v1/environments/${farm.id}/work`, { data: { type, id }, metadata: { origin: 'test' } });
    assert.equal(r.status, 201);
    items.push(r.json);
  }
  const workerKey = (await api('POST', `/v1/environments/${farm.id}/keys`, { name: 'ci-runner' })).json.key;
  // One item goes active through a worker: poll, ack, heartbeat.
  const polled = (await api('GET', `/v1/environments/${farm.id}/work/poll`, undefined, workerKey, { 'anthropic-worker-id': 'host-1' })).json;
  assert.equal(polled.id, items[0].id);
  assert.equal((await api('POST', `/v1/environments/${farm.id}/work/${polled.id}/ack`, undefined, workerKey)).status, 200);
  assert.equal((await api('POST', `/v1/environments/${farm.id}/work/${polled.id}/heartbeat`, undefined, workerKey)).status, 200);

  const page = await newPage();
  await signIn(page, server.url);

  // The key lives in this tab's sessionStorage, nowhere else.
  const storage = await page.evaluate(() => ({
    session: sessionStorage.getItem('environd.api_key'),
    local: localStorage.length,
    href: location.href,
    cookie: document.cookie,
  }));
  assert.equal(storage.session, key);
  assert.equal(storage.local, 0);
  assert.ok(!storage.href.includes(key) && !storage.cookie.includes(key));

  // The list shows both environments with their type and metadata.
  await page.waitForSelector(`#environments tr[data-id="${farm.id}"]`);
  const row = await textOf(page, `#environments tr[data-id="${farm.id}"]`);
  assert.match(row, /build-farm/);
  assert.match(row, /self_hosted/);
  assert.match(row, /team=infra/);
  assert.match(await textOf(page, `#environments tr[data-id="${sandbox.id}"]`), /cloud/);

  // Create one through the form; the API has it.
  await page.type('form[aria-labelledby=create-title] input[type=text]', 'made-in-console');
  await page.select('form[aria-labelledby=create-title] select', 'self_hosted');
  await page.type('form[aria-labelledby=create-title] textarea:not([maxlength])', 'owner=ops\nstage=test');
  await page.click('form[aria-labelledby=create-title] button[type=submit]');
  await page.waitForFunction(() => /Created/.test(document.querySelector('form[aria-labelledby=create-title] .status').textContent));
  const listed = (await api('GET', '/v1/environments?limit=100')).json.data.find((e) => e.name === 'made-in-console');
  assert.ok(listed, 'the API lists the environment made in the console');
  assert.deepEqual(listed.config, { type: 'self_hosted' });
  assert.deepEqual(listed.metadata, { owner: 'ops', stage: 'test' });
  await page.waitForSelector(`#environments tr[data-id="${listed.id}"]`);

  // The API's own error message is shown: the same name again is a 409.
  const taken = await api('POST', '/v1/environments', { name: 'made-in-console' });
  assert.equal(taken.status, 409);
  await page.type('form[aria-labelledby=create-title] input[type=text]', 'made-in-console');
  await page.click('form[aria-labelledby=create-title] button[type=submit]');
  await page.waitForSelector('#error:not([hidden])');
  const shownError = await textOf(page, '#error');
  assert.ok(shownError.includes(taken.json.error.message), `${shownError} shows "${taken.json.error.message}"`);
  assert.match(shownError, /HTTP 409/);

  // The environment page: facts, config, live stats.
  await page.click(`#environments tr[data-id="${farm.id}"] a`);
  await page.waitForSelector('#config');
  assert.deepEqual(JSON.parse(await textOf(page, '#config')), { type: 'self_hosted' });
  await waitText(page, '#stat-depth', '2'); // two never-delivered items; the third is active
  assert.equal(await textOf(page, '#stat-pending'), '0');
  assert.equal(await textOf(page, '#stat-workers_polling'), '1');
  assert.match(await textOf(page, '#stat-oldest_queued_at'), /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}Z$/);
  // Live: an item enqueued elsewhere shows up without a reload.
  await page.evaluate(() => (window.notReloaded = true));
  const extra = (await api('POST', `/v1/environments/${farm.id}/work`, { data: { type: 'session', id: 'sesn_gamma' } })).json;
  await waitText(page, '#stat-depth', '3');
  assert.equal(await page.evaluate(() => window.notReloaded), true);
  // A hidden tab asks for nothing; shown again, it refreshes at once.
  let statsCalls = 0;
  const countStats = (req) => { if (req.url().endsWith('/work/stats')) statsCalls++; };
  await page.evaluate(() => {
    Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => 'hidden' });
    document.dispatchEvent(new Event('visibilitychange'));
  });
  page.on('request', countStats);
  await new Promise((r) => setTimeout(r, 4500)); // over two refresh periods: none may ask
  const hiddenItem = (await api('POST', `/v1/environments/${farm.id}/work`, { data: { type: 'session', id: 'sesn_hidden' } })).json;
  assert.equal(statsCalls, 0, 'no stats requests while hidden');
  await page.evaluate(() => {
    delete document.visibilityState; // back to the real (visible) one
    document.dispatchEvent(new Event('visibilitychange'));
  });
  await waitText(page, '#stat-depth', '4');
  page.off('request', countStats);
  assert.equal((await api('POST', `/v1/environments/${farm.id}/work/${hiddenItem.id}/stop`, {})).status, 200);
  await waitText(page, '#stat-depth', '3');

  // Items need an environment key; the page says so and makes one.
  await page.waitForSelector('#items-need-key');
  await page.click('#create-page-key');
  await page.waitForSelector('#work-items');
  const pageKey = await page.$eval('#new-key-value', (el) => el.value);
  assert.match(pageKey, /^envd_env_/);
  for (const it of [...items, extra]) await page.waitForSelector(`#work-items tr[data-id="${it.id}"]`);
  const stateOf = (id) => page.$eval(`#work-items tr[data-id="${id}"]`, (el) => el.dataset.state);
  assert.equal(await stateOf(items[0].id), 'active');
  assert.equal(await stateOf(items[1].id), 'queued');
  const activeRow = await textOf(page, `#work-items tr[data-id="${items[0].id}"]`);
  assert.match(activeRow, /session sesn_alpha/);
  assert.match(activeRow, /origin=test/);
  assert.equal((activeRow.match(/\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}Z/g) || []).length, 4, `created, acked, started, heartbeat in ${activeRow}`);
  // The filter shows one state.
  await page.select('#state-filter', 'active');
  await page.waitForFunction(() => document.querySelectorAll('#work-items tbody tr[data-id]').length === 1);
  await page.select('#state-filter', '');
  await page.waitForSelector(`#work-items tr[data-id="${items[1].id}"]`);

  // Stop a queued item and the active one from the page; the API sees both.
  await page.click(`button[aria-label="Stop ${items[1].id}"]`);
  await page.waitForSelector(`#work-items tr[data-id="${items[1].id}"][data-state="stopped"]`);
  await page.click(`button[aria-label="Stop ${items[0].id}"]`);
  await page.waitForSelector(`#work-items tr[data-id="${items[0].id}"][data-state="stopping"]`);
  assert.equal((await api('GET', `/v1/environments/${farm.id}/work/${items[1].id}`)).json.state, 'stopped');
  const stopping = (await api('GET', `/v1/environments/${farm.id}/work/${items[0].id}`)).json;
  assert.equal(stopping.state, 'stopping');
  assert.ok(stopping.stop_requested_at);
  await waitText(page, '#stat-depth', '2');

  // Create a key from the keys form: shown once, works, then revoked from the page.
  await page.type('section[aria-labelledby=keys-title] input[type=text]', 'worker-2');
  await page.click('section[aria-labelledby=keys-title] button[type=submit]');
  await page.waitForFunction((old) => {
    const el = document.querySelector('#new-key-value');
    return el && el.value !== old;
  }, {}, pageKey);
  const newKey = await page.$eval('#new-key-value', (el) => el.value);
  assert.match(newKey, /^envd_env_/);
  assert.match(await textOf(page, '#new-key'), /only time it is shown/);
  assert.equal((await api('GET', `/v1/environments/${farm.id}/work`, undefined, newKey)).status, 200);
  await page.waitForFunction(() => [...document.querySelectorAll('#keys tr[data-id]')].some((r) => r.cells[0].textContent === 'worker-2'));
  await shot(page, 'environment');
  if (README_SHOT) {
    await page.click('#new-key button:nth-of-type(2)'); // "Done": the README picture shows no key
    await page.screenshot({ path: README_SHOT, fullPage: true });
  }
  const stored = await page.evaluate(() => JSON.stringify({ ...sessionStorage }) + JSON.stringify({ ...localStorage }));
  assert.ok(!stored.includes(newKey), 'a created key is not stored by the console');
  const keysList = (await api('GET', `/v1/environments/${farm.id}/keys`)).json.data;
  const worker2 = keysList.find((k) => k.name === 'worker-2');
  await page.click(`button[aria-label="Revoke worker-2 (${worker2.id})"]`);
  await page.waitForFunction((id) => !document.querySelector(`#keys tr[data-id="${id}"]`), {}, worker2.id);
  assert.equal((await api('GET', `/v1/environments/${farm.id}/work`, undefined, newKey)).status, 401);
  assert.ok(!(await api('GET', `/v1/environments/${farm.id}/keys`)).json.data.some((k) => k.id === worker2.id));

  // Shown once: after a reload the key text is nowhere on the page.
  await page.reload({ waitUntil: 'domcontentloaded' });
  await page.waitForSelector('#work-items');
  assert.ok(!(await page.evaluate(() => document.body.innerText)).includes(newKey));

  // Archive from the page.
  await page.click('#archive');
  await page.waitForSelector('#archived-at time');
  const archived = (await api('GET', `/v1/environments/${farm.id}`)).json;
  assert.ok(archived.archived_at);
  assert.equal(await page.$eval('#archived-at time', (el) => el.getAttribute('datetime')), archived.archived_at);

  // The list hides archived environments unless asked, and pages by 20 with next_page.
  for (let i = 0; i < 20; i++) assert.equal((await api('POST', '/v1/environments', { name: `bulk-${String(i).padStart(2, '0')}` })).status, 200);
  await page.click('#nav a[href="#/environments"]');
  await page.waitForSelector('#environments tr[data-id]');
  const shownIds = () => page.$$eval('#environments tr[data-id]', (rows) => rows.map((r) => r.dataset.id));
  assert.equal((await shownIds()).length, 20);
  assert.ok(!(await shownIds()).includes(farm.id));
  await page.click('::-p-text(Next page)');
  await page.waitForFunction((id) => document.querySelector(`#environments tr[data-id="${id}"]`), {}, sandbox.id);
  assert.ok(!(await shownIds()).includes(farm.id), 'archived: hidden');
  await page.click('label.inline input[type=checkbox]'); // back to page 1, archived included
  await page.waitForFunction((id) => !document.querySelector(`#environments tr[data-id="${id}"]`), {}, sandbox.id);
  await page.click('::-p-text(Next page)');
  await page.waitForSelector(`#environments tr[data-id="${farm.id}"]`);
  assert.match(await textOf(page, `#environments tr[data-id="${farm.id}"]`), /\d{4}-\d\d-\d\d/, 'archived at');
  assert.ok((await shownIds()).includes(sandbox.id));
  await page.click('::-p-text(Previous page)');
  await page.waitForFunction((id) => !document.querySelector(`#environments tr[data-id="${id}"]`), {}, sandbox.id);

  // Delete from the page (an environment with no live work).
  await page.goto(`${server.url}/console#/environments/${listed.id}`, { waitUntil: 'domcontentloaded' });
  await page.waitForSelector('#config');
  await page.click('#delete');
  await page.waitForSelector('#environments');
  assert.equal((await api('GET', `/v1/environments/${listed.id}`)).status, 404);

  // A cloud environment says it has no queue.
  await page.goto(`${server.url}/console#/environments/${sandbox.id}`, { waitUntil: 'domcontentloaded' });
  await page.waitForSelector('::-p-text(Cloud environments have no work queue)');

  // The sessions page shows what this server has: a list where /v1/sessions answers, a
  // clear note where it is a 404 (the stand-in test below covers both on purpose).
  const sessionsStatus = (await api('GET', '/v1/sessions?limit=1')).status;
  await page.goto(`${server.url}/console#/sessions`, { waitUntil: 'domcontentloaded' });
  if (sessionsStatus === 404) await page.waitForSelector('#sessions-unavailable');
  else {
    assert.equal(sessionsStatus, 200);
    await page.waitForSelector('#sessions');
    assert.equal(await page.$('#sessions-unavailable'), null);
  }

  // Forget key: back to the form, nothing of ours left in storage.
  await page.click('#forget');
  await page.waitForSelector('input[type=password]');
  const left = await page.evaluate(() => Object.keys(sessionStorage).concat(Object.keys(localStorage)));
  assert.deepEqual(left, []);
  assert.deepEqual(page.problems, []);
  await page.close();
});

test('a refused key is named and not kept', async () => {
  const page = await newPage();
  await page.goto(`${server.url}/console`, { waitUntil: 'domcontentloaded' });
  await page.waitForSelector('input[type=password]');
  await page.keyboard.type('envd_api_not-a-real-key'); // the key field has the focus
  await page.keyboard.press('Enter');
  await page.waitForSelector('#error:not([hidden])');
  const expected = (await server.raw('GET', '/v1/environments?limit=1', { key: 'envd_api_not-a-real-key' })).json.error.message;
  assert.ok((await textOf(page, '#error')).includes(expected));
  assert.match(await textOf(page, '#error'), /HTTP 401/);
  assert.equal(await page.evaluate(() => sessionStorage.length + localStorage.length), 0);
  assert.ok(await page.$('input[type=password]'));
  assert.deepEqual(page.problems, []);
  await page.close();
});

// A stand-in for a server with sessions: /v1/sessions* answered here in the SDK's shapes
// (history in two pages, a live SSE stream); everything else goes to the real environd.
function sessionsServer(upstream, { sessions = true } = {}) {
  const session = {
    id: 'sesn_live1', type: 'session', status: 'running', title: 'Fix the build', environment_id: 'env_x',
    agent: { id: 'agent_1', name: 'echo', version: 2, type: 'agent' }, metadata: { ticket: 'T-1' }, resources: [],
    created_at: '2026-11-28T12:00:00.000000Z', updated_at: '2026-11-28T12:00:01.000000Z', archived_at: null,
  };
  const history = [
    { id: 'sevt_1', type: 'user.message', content: [{ type: 'text', text: 'hello there' }], processed_at: '2026-11-28T12:00:00.100000Z' },
    { id: 'sevt_2', type: 'session.status_running', processed_at: '2026-11-28T12:00:00.200000Z' },
    { id: 'sevt_3', type: 'agent.tool_use', name: 'bash', input: { command: 'make test' }, processed_at: '2026-11-28T12:00:00.300000Z' },
  ];
  const seen = { streamHeaders: null, streamUrl: null, listUrls: [] };
  let stream = null;
  let streamReady;
  const streamOpened = new Promise((r) => (streamReady = r));
  const srv = http.createServer(async (req, res) => {
    const u = new URL(req.url, 'http://x');
    if (u.pathname.startsWith('/v1/sessions')) {
      const json = (status, body) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body));
      };
      if (!sessions) return json(404, { type: 'error', error: { type: 'not_found_error', message: `no route for GET ${u.pathname}` } });
      if (req.headers['x-api-key'] !== key || !String(req.headers['anthropic-beta']).includes(BETA))
        return json(401, { type: 'error', error: { type: 'authentication_error', message: 'bad key' } });
      if (u.pathname === '/v1/sessions') return json(200, { data: [session], next_page: null, prev_page: null });
      if (u.pathname === '/v1/sessions/sesn_live1') return json(200, session);
      if (u.pathname === '/v1/sessions/sesn_live1/events') {
        seen.listUrls.push(req.url);
        if (u.searchParams.get('page') === 'page_2') return json(200, { data: history.slice(2), next_page: null });
        return json(200, { data: history.slice(0, 2), next_page: 'page_2' });
      }
      if (u.pathname === '/v1/sessions/sesn_live1/events/stream') {
        seen.streamHeaders = req.headers;
        seen.streamUrl = req.url;
        res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
        res.write(': keepalive\n\n');
        stream = res;
        streamReady();
        return undefined;
      }
      return json(404, { type: 'error', error: { type: 'not_found_error', message: 'no such session' } });
    }
    const chunks = [];
    for await (const c of req) chunks.push(c);
    const up = await fetch(upstream + req.url, {
      method: req.method,
      headers: Object.fromEntries(Object.entries(req.headers).filter(([k]) => !['host', 'connection', 'content-length'].includes(k))),
      body: chunks.length ? Buffer.concat(chunks) : undefined,
    });
    const headers = {};
    up.headers.forEach((v, k) => (headers[k] = v));
    delete headers['content-length'];
    delete headers['content-encoding'];
    res.writeHead(up.status, headers);
    res.end(Buffer.from(await up.arrayBuffer()));
  });
  return {
    seen,
    streamOpened,
    send: (text) => stream.write(text),
    start: () => new Promise((r) => srv.listen(0, '127.0.0.1', () => r(`http://127.0.0.1:${srv.address().port}`))),
    stop: () => {
      if (stream) stream.destroy();
      srv.closeAllConnections();
      return new Promise((r) => srv.close(r));
    },
  };
}

test('the transcript lists history across pages, then follows the SSE stream without duplicates', async () => {
  const fake = sessionsServer(server.url);
  const base = await fake.start();
  const page = await newPage();
  try {
    await signIn(page, base);
    await page.click('#nav a[href="#/sessions"]');
    await page.waitForSelector('#sessions tr[data-id="sesn_live1"]');
    assert.match(await textOf(page, '#sessions tr[data-id="sesn_live1"]'), /Fix the build.*running/);
    await page.click('#sessions tr[data-id="sesn_live1"] a');
    await fake.streamOpened;
    for (const id of ['sevt_1', 'sevt_2', 'sevt_3']) await page.waitForSelector(`#transcript li[data-id="${id}"]`);
    await page.waitForFunction(() => /^Live/.test(document.querySelector('#stream-state').textContent));
    assert.ok(fake.seen.listUrls.some((u) => u.includes('page=page_2')), 'followed next_page');
    // The stream was asked for with the key in a header, not in the URL.
    assert.equal(fake.seen.streamHeaders['x-api-key'], key);
    assert.match(fake.seen.streamHeaders['anthropic-beta'], new RegExp(BETA));
    assert.ok(!fake.seen.streamUrl.includes(key));

    // Live frames: a duplicate of history, one split across writes with CRLF line ends,
    // one without an event name (ignored, as the SDK ignores it), and a final message.
    const frame = (ev) => `id: ${ev.id}\nevent: ${ev.type}\ndata: ${JSON.stringify(ev)}\n\n`;
    fake.send(frame({ id: 'sevt_3', type: 'agent.tool_use', name: 'bash', input: { command: 'make test' }, processed_at: '2026-11-28T12:00:00.300000Z' }));
    const result = { id: 'sevt_4', type: 'user.tool_result', tool_use_id: 'sevt_3', content: [{ type: 'text', text: 'all 12 tests passed' }], processed_at: '2026-11-28T12:00:01.000000Z' };
    const crlf = `id: sevt_4\r\nevent: user.tool_result\r\ndata: ${JSON.stringify(result)}\r\n\r\n`;
    // Cut mid-line, then between a CR and its LF (a reader that took the CR for a line end
    // would see a blank line there and lose the event name), then before the final LF.
    const afterCr = crlf.indexOf('event: user.tool_result\r') + 'event: user.tool_result\r'.length;
    for (const [from, to] of [[0, 25], [25, afterCr], [afterCr, crlf.length - 1], [crlf.length - 1, crlf.length]]) {
      fake.send(crlf.slice(from, to));
      await new Promise((r) => setTimeout(r, 20)); // separate network reads, not a wait for a condition
    }
    fake.send(`id: sevt_x\ndata: ${JSON.stringify({ id: 'sevt_x', type: 'agent.message', content: [{ type: 'text', text: 'unnamed' }] })}\n\n`);
    fake.send(': keepalive\n\n');
    fake.send(frame({ id: 'sevt_5', type: 'agent.message', content: [{ type: 'text', text: 'The build is green.' }], processed_at: '2026-11-28T12:00:02.000000Z' }));
    await page.waitForSelector('#transcript li[data-id="sevt_5"]');
    const ids = await page.$$eval('#transcript li', (els) => els.map((e) => e.dataset.id));
    assert.deepEqual(ids, ['sevt_1', 'sevt_2', 'sevt_3', 'sevt_4', 'sevt_5']);
    assert.match(await textOf(page, '#transcript li[data-id="sevt_3"]'), /bash[\s\S]*"command": "make test"/);
    assert.match(await textOf(page, '#transcript li[data-id="sevt_4"]'), /Result for sevt_3[\s\S]*all 12 tests passed/);
    assert.match(await textOf(page, '#transcript li[data-id="sevt_5"]'), /The build is green\./);
    await shot(page, 'transcript');
    // One missing session is an error with the server's message, not "not available".
    await page.goto(`${base}/console#/sessions/sesn_nope`, { waitUntil: 'domcontentloaded' });
    await page.waitForSelector('#error:not([hidden])');
    assert.match(await textOf(page, '#error'), /HTTP 404\): no such session/);
    assert.equal(await page.$('#sessions-unavailable'), null);
    assert.deepEqual(page.problems, []);
  } finally {
    await page.close();
    await fake.stop();
  }
});

test('without /v1/sessions the sessions pages say so instead of failing', async () => {
  const fake = sessionsServer(server.url, { sessions: false });
  const base = await fake.start();
  const page = await newPage();
  try {
    await signIn(page, base);
    await page.click('#nav a[href="#/sessions"]');
    await page.waitForSelector('#sessions-unavailable');
    assert.match(await textOf(page, '#sessions-unavailable'), /Sessions are not available on this server/);
    assert.equal(await page.$('#sessions'), null);
    await page.goto(`${base}/console#/sessions/sesn_gone`, { waitUntil: 'domcontentloaded' });
    await page.waitForSelector('#sessions-unavailable');
    assert.ok((await page.$eval('#error', (el) => el.hidden)), 'a missing feature is not shown as an error');
    await shot(page, 'sessions-unavailable');
    assert.deepEqual(page.problems, []);
  } finally {
    await page.close();
    await fake.stop();
  }
});

test('screenshots were written', () => {
  for (const name of ['environment', 'sessions-unavailable', 'transcript']) assert.ok(fs.statSync(path.join(SHOTS, `${name}.png`)).size > 5000, name);
  console.log(`# console screenshots in ${SHOTS}`);
});

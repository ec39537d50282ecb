// Starts a real `environd serve` on port 0 in its own temp dir, and tears it down.
// Every test file gets its own server(s) and data; nothing is shared between files.
'use strict';
const { spawn, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const Anthropic = require('@anthropic-ai/sdk').default;
const pg = require('./pg');

const BIN = process.env.ENVIROND_BIN || path.resolve(__dirname, '../../../build/environd');
const BETA = 'managed-agents-2026-04-01';

function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

class Server {
  constructor(opts = {}) {
    this.dir = opts.dir || fs.mkdtempSync(path.join(os.tmpdir(), 'environd-test-'));
    this.pgName = null; // the PostgreSQL database this server owns (ENVIROND_TEST_PG)
    if (opts.db) this.db = opts.db;
    else if (pg.PG) ({ name: this.pgName, url: this.db } = pg.createDatabase());
    else this.db = path.join(this.dir, 'environd.db');
    this.extraArgs = opts.args || [];
    this.env = opts.env || {};
    this.scheme = opts.scheme || 'http'; // 'https' when args hold --tls-cert/--tls-key
    this.proc = null;
    this.url = null;
    this.stdout = '';
    this.stderr = '';
  }

  // Starts the server and resolves once it wrote its port file (bounded wait).
  async start() {
    const portFile = path.join(this.dir, `port-${Date.now()}-${Math.random()}`);
    this.stdout = '';
    this.stderr = '';
    this.proc = spawn(
      BIN,
      ['serve', '--listen', '127.0.0.1:0', '--port-file', portFile, '--db', this.db, '--log-level', 'warn', ...this.extraArgs],
      { env: { ...process.env, ...this.env }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    this.proc.stdout.on('data', (d) => (this.stdout += d));
    this.proc.stderr.on('data', (d) => (this.stderr += d));
    const exited = new Promise((resolve) => this.proc.once('exit', (code, sig) => resolve({ code, sig })));
    this.exited = exited;
    for (let i = 0; i < 200; i++) {
      if (fs.existsSync(portFile)) {
        const port = fs.readFileSync(portFile, 'utf8').trim();
        if (port) {
          this.port = Number(port);
          this.url = `${this.scheme}://127.0.0.1:${this.port}`;
          // environd prints its start lines (the URL, a first key) before it writes the port
          // file, but they come through a pipe: wait for them (bounded) so tests can read them.
          for (let j = 0; j < 200 && !this.stdout.includes('serving the Environments API'); j++) await sleep(25);
          return this;
        }
      }
      if (this.proc.exitCode !== null) break;
      await sleep(50);
    }
    throw new Error(`environd did not start: ${this.stderr}`);
  }

  // SIGKILL: nothing gets a chance to flush.
  async kill9() {
    if (!this.proc || this.proc.exitCode !== null) return;
    this.proc.kill('SIGKILL');
    await this.exited;
  }

  async stop() {
    if (!this.proc || this.proc.exitCode !== null) return this.exited && this.exited;
    this.proc.kill('SIGTERM');
    const t = setTimeout(() => this.proc.kill('SIGKILL'), 10000);
    const r = await this.exited;
    clearTimeout(t);
    return r;
  }

  async restart() {
    await this.stop();
    return this.start();
  }

  // Runs `environd key create` against this server's store; returns the key.
  createKey({ org, account, workspace, name } = {}) {
    const args = ['key', 'create', '--db', this.db];
    if (org) args.push('--org', org);
    if (account) args.push('--account', account);
    if (workspace) args.push('--workspace', workspace);
    if (name) args.push('--name', name);
    return execFileSync(BIN, args, { encoding: 'utf8' }).trim();
  }

  // An SDK client for this server with the given API key (or environment key).
  client(apiKey, opts = {}) {
    return new Anthropic({ apiKey, baseURL: this.url, maxRetries: 0, ...opts });
  }

  // A raw request helper for what the SDK cannot send (bad bodies, odd headers).
  async raw(method, pathname, { key, headers = {}, body } = {}) {
    const h = { 'anthropic-beta': BETA, ...headers };
    if (key) h['x-api-key'] = key;
    if (typeof body === 'object' && body !== null && !(body instanceof Buffer)) {
      body = JSON.stringify(body);
      if (!h['content-type']) h['content-type'] = 'application/json';
    }
    const res = await fetch(this.url + pathname, { method, headers: h, body });
    const text = await res.text();
    let json;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: res.status, headers: res.headers, text, json };
  }

  cleanup() {
    try {
      fs.rmSync(this.dir, { recursive: true, force: true });
    } catch {}
    if (this.pgName) {
      pg.dropDatabase(this.pgName);
      this.pgName = null;
    }
  }
}

module.exports = { Server, BIN, BETA, sleep };

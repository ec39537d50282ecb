// A running `environd worker` for the worker suites, its JSON log parsed as it arrives.
'use strict';
const { before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const { BIN, Server } = require('./server');
const { waitFor } = require('./work');

// Every worker still running, so a suite's after() can kill what a failed test left.
const workers = new Set();

// A running `environd worker` with its JSON log parsed as it arrives.
class Worker {
  constructor(srv, { envId, envKey, dir, args = [], env = {}, baseUrl, spawnOpts = {} }) {
    this.events = [];
    this.stderr = '';
    this.dir = dir;
    const argv = ['worker', '--log-format', 'json', '--base-url', baseUrl || srv.url, '--workdir', dir];
    if (envId) argv.push('--environment', envId);
    if (!args.includes('--on-work')) argv.push('--on-work', './item.sh');
    const childEnv = { ...process.env, ...env };
    if (!('ENVIROND_API_KEY' in env)) delete childEnv.ENVIROND_API_KEY;
    if (envKey) childEnv.ANTHROPIC_ENVIRONMENT_KEY = envKey;
    else delete childEnv.ANTHROPIC_ENVIRONMENT_KEY;
    this.proc = spawn(BIN, [...argv, ...args], { env: childEnv, stdio: ['ignore', 'pipe', 'pipe'], ...spawnOpts });
    this.proc.stdout.on('data', (d) => (this.stderr += d));
    let partial = '';
    this.proc.stderr.on('data', (d) => {
      this.stderr += d;
      const lines = (partial + d).split('\n');
      partial = lines.pop();
      for (const line of lines) {
        try {
          this.events.push(JSON.parse(line));
        } catch {
          // Messages printed before the log is set up are plain text.
        }
      }
    });
    // 'close', not 'exit': the last log lines may still be in the pipe at 'exit'.
    this.exited = new Promise((resolve) => this.proc.once('close', (code, signal) => resolve({ code, signal })));
    workers.add(this);
    this.exited.then(() => workers.delete(this));
  }

  named(event, workId) {
    return this.events.filter((e) => e.event === event && (!workId || e.work_id === workId));
  }

  waitEvent(event, workId, timeoutMs = 10000) {
    return waitFor(() => this.named(event, workId)[0], { timeoutMs, what: `${event} ${workId || ''} in\n${this.stderr}` });
  }

  kill(signal) {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill(signal);
  }

  async exitCode(timeoutMs = 20000) {
    const t = setTimeout(() => this.kill('SIGKILL'), timeoutMs);
    const r = await this.exited;
    clearTimeout(t);
    return r.code;
  }
}

// One server for a worker suite, started before its tests; after them, whatever a failed
// test left running is killed and the suite's temp dirs removed. The fields are set once
// the before() hook has run.
function workerSuite() {
  const suite = { server: null, apiKey: null, tmpDirs: [] };
  before(async () => {
    suite.server = new Server();
    suite.apiKey = suite.server.createKey(); // before start: the store is created by the first open
    await suite.server.start();
  });
  after(async () => {
    for (const w of workers) w.kill('SIGKILL');
    if (suite.server) {
      await suite.server.stop();
      suite.server.cleanup();
    }
    for (const d of suite.tmpDirs) fs.rmSync(d, { recursive: true, force: true });
  });
  // A work item as the API shows it, read with an API key.
  suite.getWork = async (envId, workId, srv = suite.server, key = suite.apiKey) => {
    const r = await srv.raw('GET', `/v1/environments/${envId}/work/${workId}`, { key });
    assert.equal(r.status, 200, `get ${workId}: ${r.text}`);
    return r.json;
  };
  return suite;
}

module.exports = { Worker, workers, workerSuite };

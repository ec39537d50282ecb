// The test storage layer of `environd serve` (`environd serve --test-vfs powercut`, see
// src/store/sqlite_test_vfs.h): a server on it, its fault rules, and its power cut.
'use strict';
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { Server } = require('./server');
const { PG } = require('./pg');

const CUT_STATUS = 86; // TEST_VFS_CUT_STATUS

// A server on the test storage layer with a fault-rule file (no rules yet). `opts` as for
// Server; `dir`/`db` reuse another server's files.
function storageServer(opts = {}) {
  const dir = opts.dir || fs.mkdtempSync(path.join(os.tmpdir(), 'environd-storage-'));
  const control = path.join(dir, 'faults');
  const server = new Server({
    ...opts,
    dir,
    // On PostgreSQL (ENVIROND_TEST_PG) there is no SQLite file to put the layer under, and
    // the server refuses it: its tests are skipped there, the file's others run without it.
    args: [...(opts.args || []), ...(PG ? [] : ['--test-vfs', 'powercut', '--test-vfs-control', control])],
  });
  // Replaces the rules at once: the layer sees the old file or the new one, never half.
  server.setFaults = (...rules) => {
    fs.writeFileSync(`${control}.tmp`, rules.map((r) => r + '\n').join(''));
    fs.renameSync(`${control}.tmp`, control);
  };
  server.setFaults();
  return server;
}

// The API key a server prints on its first start.
function firstKey(server) {
  const m = /API key \(shown once, keep it\): (envd_api_\S+)/.exec(server.stdout);
  assert.ok(m, `no first-start key in: ${server.stdout}`);
  return m[1];
}

// Cuts the power (SIGUSR2) and checks that the server went down by the cut.
async function powerCut(server) {
  server.proc.kill('SIGUSR2');
  const { code, sig } = await server.exited;
  // 'exit' may come before the last of stderr: wait for the stream to end.
  if (!server.proc.stderr.readableEnded) await new Promise((r) => server.proc.stderr.once('end', r));
  assert.equal(sig, null, `the server died of ${sig} instead of the simulated power cut: ${server.stderr}`);
  assert.equal(code, CUT_STATUS, `the server exited ${code}, not at the simulated power cut: ${server.stderr}`);
  const m = /test_vfs: power cut: (\d+) files rolled back to their last fsync \((\d+) writes lost\)/.exec(server.stderr);
  assert.ok(m, server.stderr);
  return { files: Number(m[1]), lost: Number(m[2]) };
}

module.exports = { storageServer, firstKey, powerCut };

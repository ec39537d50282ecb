// Runs every *.test.js here with node's built-in test runner. Newer Node versions get a
// concurrency and per-test timeout; Debian 12's Node 18 does not know those flags.
'use strict';
const { spawnSync } = require('node:child_process');

const [major, minor] = process.versions.node.split('.').map(Number);
const args = ['--test'];
if (major > 20 || (major === 20 && minor >= 11)) args.push('--test-concurrency=2', '--test-timeout=300000');
args.push(...process.argv.slice(2));
const r = spawnSync(process.execPath, args, { stdio: 'inherit' });
process.exit(r.status === null ? 1 : r.status);

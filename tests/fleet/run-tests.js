// Runs every *.test.js here with node's built-in test runner, one file at a time: the
// files share one PostgreSQL cluster and the wake-up latencies they check should not
// compete with another file's 2,000-item drain. Debian 12's Node 18 knows neither flag.
'use strict';
const { spawnSync } = require('node:child_process');

const [major, minor] = process.versions.node.split('.').map(Number);
const args = ['--test'];
if (major > 20 || (major === 20 && minor >= 11)) args.push('--test-concurrency=1', '--test-timeout=300000');
args.push(...process.argv.slice(2));
const r = spawnSync(process.execPath, args, { stdio: 'inherit', cwd: __dirname });
process.exit(r.status === null ? 1 : r.status);

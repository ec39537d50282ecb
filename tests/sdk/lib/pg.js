// PostgreSQL mode of the SDK suite. When ENVIROND_TEST_PG holds a cluster's base URL
// (scripts/pg-cluster start prints one), every test server gets a database of its own on
// that cluster instead of an SQLite file; `--db` is that database's URL.
'use strict';
const { execFileSync } = require('node:child_process');

const BASE = process.env.ENVIROND_TEST_PG || '';
let made = 0;

// The base URL with its database name replaced.
function urlFor(name) {
  const u = new URL(BASE);
  u.pathname = '/' + name;
  return u.toString();
}

function psql(sql) {
  execFileSync('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', BASE, '-c', sql], {
    stdio: ['ignore', 'ignore', 'pipe'],
    timeout: 60000,
  });
}

// A fresh, empty database: its name (unique across the suite's concurrent files) and URL.
function createDatabase() {
  const name = `environd_t${process.pid}_${++made}_${Math.random().toString(36).slice(2, 8)}`;
  psql(`CREATE DATABASE ${name}`);
  return { name, url: urlFor(name) };
}

// Drops a database made by createDatabase, ending whatever still holds it open.
function dropDatabase(name) {
  try {
    psql(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  } catch {
    // The cluster is thrown away after the run: a database left behind costs nothing.
  }
}

// The reason to pass as `{ skip }` for a test that is about the SQLite store file itself,
// or false on SQLite (the test runs).
function sqliteOnly(why) {
  return BASE ? `SQLite file: ${why}` : false;
}

module.exports = { PG: !!BASE, createDatabase, dropDatabase, sqliteOnly };

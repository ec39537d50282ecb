// ui.js - the page-wide error banner, status notices, and the per-page refresh loop.

import { h } from './dom.js';

export const REFRESH_MS = 2000;

const errors = new Map(); // source → message; one line per failing source

function renderErrors() {
  const box = document.getElementById('error');
  box.replaceChildren(...[...errors.values()].map((m) => h('p', { text: m })));
  box.hidden = errors.size === 0;
}

// Shows `err` (an ApiError carries the server's message) under a short label of what failed.
export function showError(source, err) {
  if (err && err.name === 'AbortError') return;
  const status = err && err.status ? ` (HTTP ${err.status})` : '';
  errors.set(source, `${source} failed${status}: ${err && err.message ? err.message : String(err)}`);
  renderErrors();
}

export function clearError(source) {
  if (errors.delete(source)) renderErrors();
}

export function clearErrors() {
  errors.clear();
  renderErrors();
}

// A polite status line for what an action did.
export function notice(el, text) {
  el.textContent = text;
}

let current = null;

// One page's life: its AbortSignal ends its fetches and streams when the operator leaves,
// and every(fn) runs fn now and again every REFRESH_MS while the tab is visible.
export function createView() {
  const ctl = new AbortController();
  const loops = [];
  const view = {
    signal: ctl.signal,
    every(fn) {
      const loop = { timer: null, running: false };
      loop.run = async () => {
        clearTimeout(loop.timer);
        if (ctl.signal.aborted) return;
        if (document.visibilityState === 'visible' && !loop.running) {
          loop.running = true;
          try {
            await fn();
          } finally {
            loop.running = false;
          }
        }
        if (!ctl.signal.aborted) loop.timer = setTimeout(loop.run, REFRESH_MS);
      };
      loops.push(loop);
      loop.run();
      return loop.run; // "refresh now", for after an action
    },
    refreshAll() {
      for (const l of loops) l.run();
    },
    close() {
      ctl.abort();
      for (const l of loops) clearTimeout(l.timer);
    },
  };
  current = view;
  return view;
}

document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'visible' && current) current.refreshAll();
});

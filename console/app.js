// app.js - the console's shell: the key form, the navigation and the hash router.

import { apiKey, setApiKey, forgetKeys, call } from './api.js';
import { h, field } from './dom.js';
import * as ui from './ui.js';
import { renderEnvironments, renderEnvironment } from './environments.js';
import { renderSessions, renderSession } from './sessions.js';

const routes = [
  [/^#?\/?$/, renderEnvironments, 'environments'],
  [/^#\/environments$/, renderEnvironments, 'environments'],
  [/^#\/environments\/([^/]+)$/, renderEnvironment, 'environments'],
  [/^#\/sessions$/, renderSessions, 'sessions'],
  [/^#\/sessions\/([^/]+)$/, renderSession, 'sessions'],
];

let view = null;

function renderLogin(main) {
  const input = h('input', { type: 'password', autocomplete: 'off', spellcheck: 'false', required: true });
  const form = h(
    'form.card',
    { 'aria-labelledby': 'login-title' },
    h('h2', { id: 'login-title', text: 'Sign in with an API key' }),
    field(
      'API key',
      input,
      'An envd_api_… key from `environd key create`. It stays in this tab (sessionStorage) and is sent only to this server as x-api-key; close the tab or press "Forget key" to drop it.',
    ),
    h('button', { type: 'submit', text: 'Use key' }),
  );
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const key = input.value.trim();
    if (!key) return;
    setApiKey(key);
    input.value = '';
    try {
      await call('GET', '/v1/environments', { query: { limit: 1 } });
    } catch (e) {
      if (e.status === 401 || e.status === 403) forgetKeys();
      ui.showError('Signing in', e);
      if (!apiKey()) return;
    }
    route();
  });
  main.append(form);
  input.focus();
}

async function route() {
  if (view) view.close();
  view = null;
  ui.clearErrors();
  const main = document.getElementById('main');
  main.replaceChildren();
  const signedIn = Boolean(apiKey());
  document.getElementById('nav').hidden = !signedIn;
  document.getElementById('who').hidden = !signedIn;
  if (!signedIn) {
    renderLogin(main);
    return;
  }
  const hash = location.hash || '#/environments';
  for (const [re, render, section] of routes) {
    const m = re.exec(hash);
    if (!m) continue;
    for (const a of document.querySelectorAll('#nav a'))
      if (a.getAttribute('href') === `#/${section}`) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    view = ui.createView();
    try {
      await render(main, view, ...m.slice(1).map(decodeURIComponent));
    } catch (e) {
      ui.showError('Loading the page', e);
    }
    return;
  }
  main.append(h('p', { text: `No page at ${hash}.` }), h('a', { href: '#/environments', text: 'Environments' }));
}

document.getElementById('forget').addEventListener('click', () => {
  forgetKeys();
  route();
});
window.addEventListener('hashchange', () => {
  route();
  document.getElementById('main').focus();
});
route();

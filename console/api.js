// api.js - every call the console makes to environd's public API, and where the keys live.
//
// Keys are kept in this tab's sessionStorage only (never localStorage, a URL or a log):
// they go when the tab closes or the operator presses "Forget key". The API key is sent
// as x-api-key; an environment key, which only worker routes take, as a Bearer token.

export const BETA = 'managed-agents-2026-04-01';
const API_KEY = 'environd.api_key';
const ENV_KEY = 'environd.env_key.';

export function apiKey() {
  return sessionStorage.getItem(API_KEY);
}

export function setApiKey(key) {
  sessionStorage.setItem(API_KEY, key);
}

export function envKey(envId) {
  return sessionStorage.getItem(ENV_KEY + envId);
}

export function setEnvKey(envId, key) {
  sessionStorage.setItem(ENV_KEY + envId, key);
}

export function dropEnvKey(envId) {
  sessionStorage.removeItem(ENV_KEY + envId);
}

// Forgets the API key and every environment key this tab holds.
export function forgetKeys() {
  for (let i = sessionStorage.length - 1; i >= 0; i--) {
    const k = sessionStorage.key(i);
    if (k && k.startsWith('environd.')) sessionStorage.removeItem(k);
  }
}

// An error reply from the API: `status`, and the envelope's `type` and `message`.
export class ApiError extends Error {
  constructor(status, type, message) {
    super(message);
    this.status = status;
    this.type = type;
  }
}

export function headers(envKeyText) {
  const h = { 'anthropic-beta': BETA };
  if (envKeyText) h.authorization = `Bearer ${envKeyText}`;
  else h['x-api-key'] = apiKey() || '';
  return h;
}

// Builds "/v1/…?a=b" from a path and a query object (undefined/null/'' values left out).
export function url(path, query) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query || {})) if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s ? `${path}?${s}` : path;
}

// One API call. Resolves to the parsed JSON body; rejects with an ApiError carrying the
// server's own message, or a plain Error when the server could not be reached.
export async function call(method, path, { query, body, envKey: ek, signal } = {}) {
  const init = { method, headers: headers(ek), cache: 'no-store', credentials: 'omit', signal };
  if (body !== undefined) {
    init.headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(url(path, query), init);
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new Error(`the server could not be reached (${e.message})`);
  }
  const text = await res.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  if (!res.ok) {
    const err = json && json.error;
    throw new ApiError(res.status, err ? err.type : 'http_error', err && err.message ? err.message : `HTTP ${res.status}`);
  }
  return json;
}

export const enc = encodeURIComponent;

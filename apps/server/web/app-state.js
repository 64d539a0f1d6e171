// The web app's state: the signed-in session (kept in sessionStorage), the
// page's state shared by every view, the hooks of the browser tests, and
// REST calls with the session's token.

const SESSION_KEY = 'larder.session';

// ---- session and REST ---------------------------------------------------------------

export let session = loadSession();

function loadSession() {
  try { return JSON.parse(sessionStorage.getItem(SESSION_KEY)); } catch { return null; }
}

export function saveSession(value) {
  session = value;
  if (value) sessionStorage.setItem(SESSION_KEY, JSON.stringify(value));
  else sessionStorage.removeItem(SESSION_KEY);
}

class ApiError extends Error {
  constructor(status, body) {
    super(body?.message ?? `HTTP ${status}`);
    this.status = status;
    this.code = body?.code ?? 'http_error';
    this.details = body?.details ?? {};
  }
}

export async function mintToken({ tenant, sub, role }) {
  const response = await fetch('/api/v1/dev/token', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ tenant, sub, role, stores: '*' }),
  });
  const body = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, body);
  return body;
}

/** Mints a fresh demo token for the signed-in user (the client's refresh hook too). */
export async function refreshToken() {
  const minted = await mintToken(session);
  saveSession({ ...session, token: minted.token, expires_at: minted.expires_at });
  return minted.token;
}

/** Calls the REST API; refreshes an expired token once. Throws ApiError. */
export async function api(path, { method = 'GET', body, ifMatch, retried = false } = {}) {
  if (method !== 'GET' && state.client) return sendNow(path, { method, body, ifMatch });
  const headers = { authorization: `Bearer ${session.token}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (ifMatch != null) headers['if-match'] = `"${ifMatch}"`;
  const response = await fetch(`/api/v1${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await response.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch { json = null; }
  // Expired, or no longer valid (a demo server makes up a new signing key
  // when it restarts): mint a new token once and try again.
  if (response.status === 401 && ['token_expired', 'invalid_token'].includes(json?.code) && !retried) {
    await refreshToken();
    return api(path, { method, body, ifMatch, retried: true });
  }
  if (!response.ok) throw new ApiError(response.status, json);
  return json;
}

/** Sends a command now (with retries under one key); answers the body like `api`, throws ApiError-shaped errors. */
async function sendNow(path, { method, body, ifMatch }) {
  const res = await state.client.command(path, { method, body, ifMatch });
  return res.body;
}

// ---- app state ----------------------------------------------------------------------

export const state = {
  client: null,
  tenantSub: null,
  stores: new Map(), // store_id -> StoreSummary
  storesPosition: 0,
  store: null, // the open store: {id, summary, items: Map, activity: [], sub, presence: Set, seq}
  detail: null, // the open item: {id, base, notice, conflict, removing}
  page: null, // the open order page (till, kitchen, board): {kind, storeId, seq, close(), ...} (app-orders-api.js)
  banner: null,
  refetchStoresTimer: null,
  refetchStoresAt: 0,
  viewSeq: 0,
};

// ---- hooks for the browser tests ---------------------------------------------------

// What was delivered, and the states seen.
export const debug = { delivered: [], states: [], client: null };
window.__larder = debug;

export function track(frame) {
  debug.delivered.push({ topic: frame.topic, position: frame.position, type: frame.event?.type });
}

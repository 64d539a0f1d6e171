// Larder's web app: sign-in (demo tokens), the store list, a store's live
// inventory, item details with conflict handling, activity, presence and
// alert toasts. Plain DOM, no framework, no build step. Every change goes
// through the REST API; the live connection only tells the page what changed,
// so the page keeps working (and catches up) when the connection is down.

import { LarderClient, AlertTypes } from './larder-client.js';

const SESSION_KEY = 'larder.session';
const TOAST_MS = 10000;
const HIGHLIGHT_MS = 2000;
const ACTIVITY_LIMIT = 50;
const REASONS = ['received', 'sold', 'wasted', 'counted', 'correction'];

// ---- tiny DOM helpers ----------------------------------------------------------

/** Creates an element: h('button', {type: 'button', onclick}, 'text', child…). Text is always text, never HTML. */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs ?? {})) {
    if (value == null || value === false) continue;
    if (key.startsWith('on')) el.addEventListener(key.slice(2), value);
    else if (key === 'testid') el.dataset.testid = value;
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key === 'className') el.className = value;
    else if (key in el && typeof value !== 'string') el[key] = value;
    else el.setAttribute(key, value === true ? '' : value);
  }
  for (const child of children.flat()) {
    if (child == null || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

const $ = (selector, root = document) => root.querySelector(selector);

function fmtTime(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? '' : d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

function statusOf(quantity, threshold) {
  if (quantity <= 0) return 'out';
  if (quantity <= threshold) return 'low';
  return 'in_stock';
}

const STATUS_LABEL = { in_stock: 'In stock', low: 'Low', out: 'Out', removed: 'Removed' };

// ---- session and REST ---------------------------------------------------------------

let session = loadSession();

function loadSession() {
  try { return JSON.parse(sessionStorage.getItem(SESSION_KEY)); } catch { return null; }
}

function saveSession(value) {
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

async function mintToken({ tenant, sub, role }) {
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
async function refreshToken() {
  const minted = await mintToken(session);
  saveSession({ ...session, token: minted.token, expires_at: minted.expires_at });
  return minted.token;
}

/** Calls the REST API; refreshes an expired token once. Throws ApiError. */
async function api(path, { method = 'GET', body, ifMatch, retried = false } = {}) {
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

// ---- app state ----------------------------------------------------------------------

const state = {
  client: null,
  tenantSub: null,
  stores: new Map(), // store_id -> StoreSummary
  storesPosition: 0,
  store: null, // the open store: {id, summary, items: Map, activity: [], sub, presence: Set, seq}
  detail: null, // the open item: {id, base, notice, conflict, removing}
  banner: null,
  refetchStoresTimer: null,
  refetchStoresAt: 0,
  viewSeq: 0,
};

// Hooks for the browser tests: what was delivered, and the states seen.
const debug = { delivered: [], states: [], client: null };
window.__larder = debug;

// ---- live connection ----------------------------------------------------------------

function startClient() {
  const client = new LarderClient({
    url: location.origin,
    token: () => session.token,
    refreshToken,
    // The offline queue is kept per tenant and user: it survives a reload
    // and a sign-out, and is sent when the same user is back.
    queueKey: `${session.tenant}/${session.sub}`,
  });
  state.client = client;
  debug.client = client;
  client.on('command', onCommandChange);
  client.commands.clearDone(); // outcomes of an earlier page were shown there
  renderQueue();
  client.on('state', (s) => {
    debug.states.push(s.state);
    renderConnection();
  });
  client.on('latency', renderLatency);
  client.on('presence_changed', (m) => {
    if (state.store && m.store === state.store.id) {
      if (m.state === 'joined') state.store.presence.add(m.user);
      else state.store.presence.delete(m.user);
      renderPresence();
    }
  });
  client.on('error', (e) => {
    if (e.code === 'handler_error') console.warn('larder: a live update failed', e.error);
  });
  client.connect();
}

function track(frame) {
  debug.delivered.push({ topic: frame.topic, position: frame.position, type: frame.event?.type });
}

function subscribeTenant() {
  state.tenantSub?.unsubscribe();
  state.tenantSub = state.client.subscribe('tenant', {
    since: state.storesPosition,
    onEvent: (event, frame) => {
      track(frame);
      if (AlertTypes.includes(event.type)) toastAlert(event);
      scheduleStoresRefetch(frame.position);
    },
    onReset: () => loadStores(),
  });
}

let connTicker = null;

function renderConnection() {
  const el = $('#conn');
  const client = state.client;
  if (!el) return;
  clearInterval(connTicker);
  connTicker = null;
  const s = client ? client.state : 'idle';
  el.dataset.state = s;
  el.dataset.transport = client?.transport ?? '';
  const info = client?.stateInfo ?? {};
  const text = () => {
    switch (s) {
      case 'connected': return client.transport === 'sse' ? 'Live (event stream)' : 'Live';
      case 'connecting': return 'Connecting…';
      case 'reconnecting': {
        if (!info.nextRetryAt) return 'Reconnecting…';
        const secs = Math.max(0, Math.ceil((info.nextRetryAt - Date.now()) / 1000));
        return secs > 0 ? `Reconnecting in ${secs} s` : 'Reconnecting…';
      }
      case 'offline': return 'Offline';
      case 'unauthorized': return 'Not authorised: sign in again';
      default: return 'Not connected';
    }
  };
  el.textContent = text();
  if (s === 'reconnecting' && info.nextRetryAt) connTicker = setInterval(() => { el.textContent = text(); }, 250);
}

function renderLatency() {
  const el = $('#latency');
  const c = state.client;
  if (!el || !c) return;
  const parts = [];
  if (c.latencyMs != null) parts.push(`last event ${c.latencyMs} ms`);
  if (c.rttMs != null) parts.push(`ping ${c.rttMs} ms`);
  el.textContent = parts.join(' · ');
  el.dataset.latency = c.latencyMs ?? '';
}

// ---- toasts -------------------------------------------------------------------------

function toast(kind, text) {
  const close = () => el.remove();
  const el = h('div', { className: `toast toast-${kind}`, testid: 'toast', dataset: { kind }, role: 'alert' },
    h('span', {}, text),
    h('button', { type: 'button', className: 'link', onclick: close, 'aria-label': 'Dismiss', testid: 'toast-dismiss' }, '×'));
  $('#toasts').append(el);
  setTimeout(close, TOAST_MS);
}

function toastAlert(event) {
  const d = event.data ?? {};
  const storeName = state.stores.get(event.metadata?.store)?.name ?? 'a store';
  const item = state.store?.items.get(d.item_id);
  const label = item ? `${item.name} (${d.sku})` : d.sku;
  const text = {
    LowStock: `${label} is low at ${storeName}: ${d.quantity} left (threshold ${d.threshold})`,
    OutOfStock: `${label} is out of stock at ${storeName}`,
    Restocked: `${label} is back in stock at ${storeName}: ${d.quantity}`,
  }[event.type];
  toast(event.type, text);
}

// ---- store list ------------------------------------------------------------------------

async function loadStores(minPosition) {
  const query = minPosition ? `?min_position=${minPosition}` : '';
  const body = await api(`/stores${query}`);
  state.stores = new Map(body.stores.map((s) => [s.store_id, s]));
  state.storesPosition = Math.max(state.storesPosition, body.position);
  renderStoreList();
  if (state.store) {
    const summary = state.stores.get(state.store.id);
    if (summary) { state.store.summary = summary; renderStoreHeader(); }
  }
  return body.position;
}

/** Counts change with many events: refetch the summaries (coalesced) rather than recount by hand. */
function scheduleStoresRefetch(position) {
  state.refetchStoresAt = Math.max(state.refetchStoresAt, position);
  if (state.refetchStoresTimer) return;
  state.refetchStoresTimer = setTimeout(async () => {
    state.refetchStoresTimer = null;
    try { await loadStores(state.refetchStoresAt); } catch { /* offline: the next event or reconnect refetches */ }
  }, 100);
}

function renderStoreList() {
  const list = $('#store-list');
  if (!list) return;
  const stores = [...state.stores.values()].sort((a, b) => a.name.localeCompare(b.name));
  list.replaceChildren(...stores.map((s) => h('li', {},
    h('a', {
      href: `#/stores/${s.store_id}`, testid: 'store-link', dataset: { storeId: s.store_id },
      className: state.store?.id === s.store_id ? 'store-link current' : 'store-link',
    },
    h('span', { className: 'store-name', testid: 'store-name' }, s.name),
    s.status === 'closed' ? h('span', { className: 'badge', testid: 'store-closed' }, 'closed') : null,
    h('span', { className: 'count', testid: 'store-item-count', title: 'items' }, String(s.item_count)),
    h('span', { className: `badge low ${s.low_stock_count ? '' : 'zero'}`, testid: 'store-low-count', title: 'low stock' }, `${s.low_stock_count} low`),
    h('span', { className: `badge out ${s.out_of_stock_count ? '' : 'zero'}`, testid: 'store-out-count', title: 'out of stock' }, `${s.out_of_stock_count} out`)))));
  if (stores.length === 0) list.append(h('li', { className: 'muted' }, 'No stores yet.'));
}

// ---- layout and routing ----------------------------------------------------------------

function renderShell() {
  $('#whoami').textContent = `${session.sub} · ${session.role} · ${session.tenant}`;
  $('#signout').hidden = false;
  const createStore = session.role === 'admin'
    ? h('form', { className: 'inline', testid: 'create-store', onsubmit: onCreateStore },
      h('input', { name: 'name', placeholder: 'New store name', required: true, maxlength: 100, testid: 'create-store-name', 'aria-label': 'New store name' }),
      h('button', { type: 'submit', testid: 'create-store-submit' }, 'Add store'))
    : null;
  $('#app').replaceChildren(
    h('div', { className: 'layout' },
      h('aside', { className: 'sidebar' },
        h('h2', {}, 'Stores'),
        h('ul', { id: 'store-list', className: 'store-list', testid: 'store-list' }),
        createStore),
      h('section', { id: 'view', className: 'view' })));
}

async function onCreateStore(e) {
  e.preventDefault();
  const form = e.currentTarget;
  const name = form.elements.name.value.trim();
  try {
    const res = await api('/stores', { method: 'POST', body: { name } });
    form.reset();
    await loadStores(res.position);
    location.hash = `#/stores/${res.id}`;
  } catch (error) {
    toast('error', `Could not create the store: ${error.message}`);
  }
}

function route() {
  if (!session) return;
  const parts = location.hash.replace(/^#\/?/, '').split('/').filter(Boolean);
  if (parts[0] === 'stores' && parts[1]) {
    openStore(decodeURIComponent(parts[1]), parts[2] === 'items' && parts[3] ? decodeURIComponent(parts[3]) : null);
  } else {
    closeStore();
    $('#view').replaceChildren(h('div', { className: 'empty', testid: 'home' },
      h('p', {}, state.stores.size ? 'Pick a store.' : 'No stores yet.')));
    renderStoreList();
  }
}

// ---- store view ------------------------------------------------------------------------

function closeStore() {
  if (!state.store) return;
  state.store.sub?.unsubscribe();
  state.client?.leave(state.store.id);
  state.store = null;
  state.detail = null;
}

async function openStore(storeId, itemId) {
  if (state.store?.id === storeId) {
    openDetail(itemId);
    return;
  }
  closeStore();
  const seq = ++state.viewSeq;
  const view = $('#view');
  view.replaceChildren(h('p', { className: 'muted' }, 'Loading…'));
  let summary, items, activity;
  try {
    [summary, items, activity] = await Promise.all([
      api(`/stores/${storeId}`),
      api(`/stores/${storeId}/items?status=active&limit=500`),
      api(`/stores/${storeId}/activity?limit=${ACTIVITY_LIMIT}`),
    ]);
  } catch (error) {
    if (seq !== state.viewSeq) return;
    view.replaceChildren(h('p', { className: 'error', testid: 'store-error' },
      error.status === 404 ? 'This store does not exist or is not visible to you.' : `Could not load the store: ${error.message}`));
    return;
  }
  if (seq !== state.viewSeq) return;
  const store = {
    id: storeId,
    summary: summary.store,
    items: new Map(items.items.map((i) => [i.item_id, i])),
    activity: activity.activity,
    presence: new Set(),
    seq,
  };
  state.store = store;
  renderStoreView();
  renderStoreList();
  // Live from the older of the two reads: rows and the feed each skip what they already hold.
  const since = Math.min(items.position, activity.position);
  store.sub = state.client.subscribe(`store:${storeId}`, {
    since,
    onEvent: (event, frame) => { track(frame); onStoreEvent(store, event, frame); },
    onReset: () => { if (state.store === store) reloadStore(store); },
    onSubscribed: () => {
      state.client.presence(storeId).then((users) => {
        if (state.store !== store) return;
        store.presence = new Set(users);
        renderPresence();
      }).catch(() => {});
    },
  });
  openDetail(itemId);
}

/** After a reset (the server could not replay): reread everything. */
async function reloadStore(store) {
  try {
    const [items, activity] = await Promise.all([
      api(`/stores/${store.id}/items?status=active&limit=500`),
      api(`/stores/${store.id}/activity?limit=${ACTIVITY_LIMIT}`),
    ]);
    if (state.store !== store) return;
    store.items = new Map(items.items.map((i) => [i.item_id, i]));
    store.activity = activity.activity;
    store.sub?.setPosition(Math.min(items.position, activity.position));
    renderTable();
    renderActivity();
  } catch { /* the next reconnect tries again */ }
}

function renderStoreView() {
  const store = state.store;
  const reasonSelect = h('select', { id: 'quick-reason', testid: 'quick-reason', 'aria-label': 'Reason for − / +' },
    h('option', { value: '' }, 'sold / received'),
    REASONS.map((r) => h('option', { value: r }, r)));
  const canManage = ['manager', 'admin'].includes(session.role);
  $('#view').replaceChildren(
    h('div', { className: 'store-head' },
      h('h1', { id: 'store-title', testid: 'store-title' }),
      h('div', { id: 'presence', className: 'presence', testid: 'presence' })),
    h('div', { id: 'banner' }),
    h('div', { className: 'columns' },
      h('div', { className: 'main-col' },
        h('div', { id: 'detail' }),
        canManage ? h('form', { className: 'add-item', testid: 'add-item', onsubmit: onAddItem },
          h('input', { name: 'sku', placeholder: 'SKU', required: true, maxlength: 64, testid: 'add-sku', 'aria-label': 'SKU' }),
          h('input', { name: 'name', placeholder: 'Name', required: true, maxlength: 100, testid: 'add-name', 'aria-label': 'Name' }),
          h('input', { name: 'unit', placeholder: 'unit', value: 'each', maxlength: 16, testid: 'add-unit', 'aria-label': 'Unit' }),
          h('input', { name: 'quantity', type: 'number', min: 0, value: 0, testid: 'add-qty', 'aria-label': 'Quantity' }),
          h('input', { name: 'threshold', type: 'number', min: 0, value: 0, testid: 'add-threshold', 'aria-label': 'Threshold' }),
          h('button', { type: 'submit', testid: 'add-submit' }, 'Add item'),
          h('span', { className: 'error', testid: 'add-error' })) : null,
        h('div', { className: 'table-tools' }, h('label', {}, 'Reason for − / + ', reasonSelect)),
        h('table', { className: 'inventory', testid: 'inventory' },
          h('thead', {}, h('tr', {},
            h('th', {}, 'SKU'), h('th', {}, 'Name'), h('th', { className: 'num' }, 'Qty'),
            h('th', { className: 'num' }, 'Threshold'), h('th', {}, 'Status'), h('th', {}, ''))),
          h('tbody', { id: 'rows' }))),
      h('aside', { className: 'activity-col' },
        h('h2', {}, 'Activity'),
        h('ol', { id: 'activity', className: 'activity', testid: 'activity' }))));
  renderStoreHeader();
  renderBanner();
  renderTable();
  renderActivity();
  renderPresence();
}

function renderStoreHeader() {
  const el = $('#store-title');
  if (el && state.store) el.textContent = state.store.summary.name + (state.store.summary.status === 'closed' ? ' (closed)' : '');
}

function renderBanner() {
  const el = $('#banner');
  if (!el) return;
  el.replaceChildren();
  if (state.banner) {
    el.append(h('div', { className: 'notice', testid: state.banner.testid, role: 'status' },
      h('span', {}, state.banner.text),
      h('button', { type: 'button', className: 'link', onclick: () => { state.banner = null; renderBanner(); } }, 'Dismiss')));
  }
}

function renderPresence() {
  const el = $('#presence');
  if (!el || !state.store) return;
  const others = [...state.store.presence].filter((u) => u !== session.sub).sort();
  el.replaceChildren(others.length
    ? h('span', {}, 'Also here: ', others.map((u) => h('span', { className: 'user', testid: 'presence-user' }, u)))
    : h('span', { className: 'muted' }, 'Nobody else here'));
}

function rowFor(item) {
  const dec = h('button', { type: 'button', testid: 'item-dec', 'aria-label': `Take one ${item.name}`, onclick: () => quickAdjust(item.item_id, -1), disabled: item.quantity <= 0 }, '−');
  const inc = h('button', { type: 'button', testid: 'item-inc', 'aria-label': `Add one ${item.name}`, onclick: () => quickAdjust(item.item_id, 1) }, '+');
  return h('tr', { testid: 'item-row', dataset: { itemId: item.item_id, sku: item.sku, status: item.status, version: item.version }, className: `status-${item.status}` },
    h('td', { className: 'sku' }, item.sku),
    h('td', {}, h('a', { href: `#/stores/${item.store_id}/items/${item.item_id}`, testid: 'item-open' }, h('span', { testid: 'item-name' }, item.name))),
    h('td', { className: 'num', testid: 'item-qty' }, String(item.quantity)),
    h('td', { className: 'num', testid: 'item-threshold' }, String(item.threshold)),
    h('td', {}, h('span', { className: `status ${item.status}`, testid: 'item-status' }, STATUS_LABEL[item.status] ?? item.status)),
    h('td', { className: 'actions' }, dec, inc, ` ${item.unit}`));
}

function renderTable() {
  const tbody = $('#rows');
  if (!tbody || !state.store) return;
  const items = [...state.store.items.values()].filter((i) => i.status !== 'removed').sort((a, b) => a.sku.localeCompare(b.sku));
  tbody.replaceChildren(...items.map(rowFor));
  if (items.length === 0) tbody.append(h('tr', {}, h('td', { colspan: 6, className: 'muted' }, 'No items.')));
}

/** Re-renders one row in place (cheaper than the table, and keeps focus elsewhere). */
function renderRow(itemId, { highlightBy } = {}) {
  const item = state.store?.items.get(itemId);
  const tbody = $('#rows');
  if (!tbody || !item) return;
  const old = tbody.querySelector(`tr[data-item-id="${CSS.escape(itemId)}"]`);
  if (item.status === 'removed' || !old) { renderTable(); }
  else old.replaceWith(rowFor(item));
  if (highlightBy) {
    const row = tbody.querySelector(`tr[data-item-id="${CSS.escape(itemId)}"]`);
    if (row) {
      row.classList.add('changed');
      row.dataset.changedBy = highlightBy;
      row.title = `Changed by ${highlightBy}`;
      setTimeout(() => { row.classList.remove('changed'); delete row.dataset.changedBy; }, HIGHLIGHT_MS);
    }
  }
}

function renderActivity() {
  const list = $('#activity');
  if (!list || !state.store) return;
  list.replaceChildren(...state.store.activity.map((a) => h('li', { testid: 'activity-entry', dataset: { position: a.position, type: a.type, entityId: a.entity_id, undoes: a.data?.undoes ?? '' } },
    h('span', { className: 'when' }, fmtTime(a.recorded_at)), ' ',
    h('span', { className: 'who' }, a.actor ?? 'system'), ' ',
    describe(a),
    mayUndo(a) && h('button', {
      type: 'button', className: 'link undo', testid: a.data?.undoes ? 'activity-redo' : 'activity-undo',
      title: a.data?.undoes ? 'Undo this undo: the change is made again' : 'Undo this change (a compensating change is recorded)',
      onclick: (e) => undoEntry(a, e.currentTarget),
    }, a.data?.undoes ? 'Redo' : 'Undo'))));
}

// ---- undo and redo ------------------------------------------------------------------

const UNDOABLE = new Set(['StockAdjusted', 'ThresholdChanged', 'ItemRenamed']);

/** Whether the signed-in user may undo the entry: managers any item change, staff their own stock adjustments (the server checks again). */
function mayUndo(a) {
  if (a.entity_type !== 'item' || !UNDOABLE.has(a.type)) return false;
  if (['transfer_in', 'transfer_out'].includes(a.data?.reason)) return false;
  if (['manager', 'admin'].includes(session.role)) return true;
  return session.role === 'staff' && a.type === 'StockAdjusted' && a.actor === session.sub;
}

/**
 * Undoes an activity entry: a compensating change, recorded like any other
 * and seen live. Undoing an undo is the redo. The entry's event id comes
 * from the live frame, else from the item's history (by stream version).
 */
async function undoEntry(a, button) {
  button.disabled = true;
  try {
    let eventId = a.id;
    if (!eventId) {
      const page = await api(`/items/${a.entity_id}/events?from_version=${a.version}&limit=1`);
      eventId = page.events[0]?.id;
    }
    await api(`/items/${a.entity_id}/undo`, { method: 'POST', body: { event_id: eventId } });
    toast('info', a.data?.undoes ? 'Redone' : 'Undone');
  } catch (err) {
    toast('error', err.code === 'undo_conflict' ? `${err.message}: undo the later change first` : err.message);
  } finally {
    button.disabled = false;
  }
}

function describe(a) {
  const d = a.data ?? {};
  const item = state.store?.items.get(a.entity_id);
  const name = d.name ?? item?.name ?? d.sku ?? 'item';
  switch (a.type) {
    case 'ItemAdded': return `added ${d.name} (${d.sku}), ${d.quantity} ${d.unit}`;
    case 'StockAdjusted': return `${d.undoes ? 'undid: ' : ''}${d.delta > 0 ? '+' : ''}${d.delta} ${name} (${d.reason}) → ${d.quantity}`;
    case 'ThresholdChanged': return `${d.undoes ? 'undid: ' : ''}set threshold of ${name} to ${d.threshold}`;
    case 'ItemRenamed': return `${d.undoes ? 'undid: ' : ''}renamed an item to ${d.name}`;
    case 'ItemRemoved': return `removed ${name}`;
    case 'LowStock': return `⚠ ${d.sku} low (${d.quantity})`;
    case 'OutOfStock': return `⛔ ${d.sku} out of stock`;
    case 'Restocked': return `✓ ${d.sku} restocked (${d.quantity})`;
    case 'TransferCompleted': return `transfer of ${d.quantity} ${d.sku}`;
    case 'StoreCreated': return `opened the store ${d.name}`;
    case 'StoreRenamed': return `renamed the store to ${d.name}`;
    case 'StoreClosed': return 'closed the store';
    default: return a.type;
  }
}

/** A live event of the open store. */
function onStoreEvent(store, event, frame) {
  if (state.store !== store) return;
  const meta = event.metadata ?? {};
  const byOther = meta.actor && meta.actor !== session.sub ? meta.actor : null;
  if (!store.activity.some((a) => a.position === frame.position)) {
    store.activity.unshift({
      id: event.id, position: frame.position, store_id: store.id, stream: event.stream, version: event.version, type: event.type,
      entity_type: meta.entity_type, entity_id: meta.entity_id, actor: meta.actor, data: event.data, recorded_at: event.recorded_at,
    });
    store.activity.sort((a, b) => b.position - a.position);
    store.activity.length = Math.min(store.activity.length, ACTIVITY_LIMIT);
    renderActivity();
  }
  if (meta.entity_type === 'store') {
    if (event.type === 'StoreRenamed') store.summary = { ...store.summary, name: event.data.name };
    if (event.type === 'StoreClosed') store.summary = { ...store.summary, status: 'closed' };
    renderStoreHeader();
    return;
  }
  if (meta.entity_type !== 'item') return;
  const itemId = meta.entity_id;
  const row = store.items.get(itemId);
  if (row && frame.position <= row.position) return; // the REST read already had it
  if (!row && event.type !== 'ItemAdded') {
    // An item we never loaded (e.g. an older read): fetch it whole.
    fetchItem(itemId, frame.position).then((item) => { if (item) applyItem(item, { byOther }); }).catch(() => {});
    return;
  }
  const next = applyEvent(row, event, frame);
  store.items.set(itemId, next);
  renderRow(itemId, { highlightBy: byOther });
  onDetailEvent(next, event, byOther);
}

/** The row after one event: quantities in events are absolute, so this is a fold, not a sum. */
function applyEvent(row, event, frame) {
  const d = event.data ?? {};
  let next = { ...(row ?? {}) };
  switch (event.type) {
    case 'ItemAdded':
      next = { item_id: d.item_id, store_id: d.store_id, sku: d.sku, name: d.name, unit: d.unit, quantity: d.quantity, threshold: d.threshold };
      break;
    case 'StockAdjusted': next.quantity = d.quantity; break;
    case 'ThresholdChanged': next.threshold = d.threshold; break;
    case 'ItemRenamed': next.name = d.name; break;
    default: break;
  }
  next.status = event.type === 'ItemRemoved' ? 'removed' : statusOf(next.quantity, next.threshold);
  next.version = event.version;
  next.position = frame.position;
  next.updated_at = event.recorded_at;
  return next;
}

async function fetchItem(itemId, minPosition) {
  const body = await api(`/items/${itemId}${minPosition ? `?min_position=${minPosition}` : ''}`);
  return body.item;
}

/** Puts a REST read of an item into the table, unless the table already has something newer. */
function applyItem(item, { byOther } = {}) {
  const store = state.store;
  if (!store || item.store_id !== store.id) return;
  const row = store.items.get(item.item_id);
  if (row && row.position >= item.position) return;
  store.items.set(item.item_id, item);
  renderRow(item.item_id, { highlightBy: byOther });
}

async function onAddItem(e) {
  e.preventDefault();
  const form = e.currentTarget;
  const f = form.elements;
  const error = form.querySelector('[data-testid="add-error"]');
  error.textContent = '';
  const body = {
    sku: f.sku.value.trim().toUpperCase(), name: f.name.value.trim(), unit: f.unit.value.trim() || undefined,
    quantity: Number(f.quantity.value || 0), threshold: Number(f.threshold.value || 0),
  };
  const store = state.store;
  try {
    const res = await api(`/stores/${store.id}/items`, { method: 'POST', body });
    form.reset();
    f.unit.value = 'each';
    scheduleStoresRefetch(res.position);
    applyItem(await fetchItem(res.id, res.position));
  } catch (err) {
    error.textContent = err.message;
  }
}

function quickAdjust(itemId, delta) {
  const chosen = $('#quick-reason')?.value;
  const reason = chosen || (delta > 0 ? 'received' : 'sold');
  const item = state.store?.items.get(itemId);
  // Through the offline queue: sent now when connected, else when the
  // connection is back. No If-Match: a delta is safe to apply on top of
  // whatever changed meanwhile (also after a while offline).
  queueCommand(`/items/${itemId}/adjust`, {
    body: { delta, reason },
    label: `${delta > 0 ? '+' : ''}${delta} ${item?.name ?? 'item'} (${reason})`,
    meta: { itemId, storeId: state.store?.id ?? null },
  });
}

// ---- commands: sent once, queued while offline ------------------------------------------------
//
// Every change goes out with one Idempotency-Key, kept across retries, so a
// retry after a lost answer is never applied twice. Quick adjustments go
// through the client's offline queue (pending until the server answers, kept
// across reloads); the list in the top bar shows each as pending, done or
// refused, with retry and dismiss.

const DONE_SHOW_MS = 20000;
const REFUSALS = {
  insufficient_stock: 'not enough stock',
  item_removed: 'the item was removed',
  store_closed: 'the store is closed',
  version_conflict: 'it changed meanwhile',
  forbidden: 'your role may not do this',
  not_found: 'it no longer exists',
  idempotency_key_reused: 'the key was used for another change',
};

/** Sends a command now (with retries under one key); answers the body like `api`, throws ApiError-shaped errors. */
async function sendNow(path, { method, body, ifMatch }) {
  const res = await state.client.command(path, { method, body, ifMatch });
  return res.body;
}

/** Queues a command; a full queue is said in a toast. */
function queueCommand(path, { body, label, meta }) {
  try {
    const entry = state.client.enqueue(path, { body, label, meta });
    if (!state.client.commands.get(entry.id)?.sending && state.client.state !== 'connected') state.queueOpen = true;
    renderQueue();
    return entry;
  } catch (err) {
    toast('error', err.code === 'queue_full' ? 'Too many changes wait for the connection: dismiss some or wait.' : `Could not queue: ${err.message}`);
    return null;
  }
}

function refusalText(error) {
  return REFUSALS[error?.code] ?? error?.message ?? 'refused';
}

function onCommandChange({ entry, change }) {
  if (change === 'done') {
    const position = entry.result?.body?.position;
    if (position) scheduleStoresRefetch(position);
    const { itemId, storeId } = entry.meta ?? {};
    if (itemId && state.store?.id === storeId) fetchItem(itemId, position).then((item) => applyItem(item)).catch(() => {});
    setTimeout(() => { state.client?.commands.dismiss(entry.id); }, DONE_SHOW_MS);
  }
  if (change === 'conflicted') {
    state.queueOpen = true;
    toast('error', `${entry.label ?? 'A change'} was refused: ${refusalText(entry.error)}.`);
  }
  renderQueue();
}

function renderQueue() {
  const badge = $('#queue');
  const panel = $('#queue-panel');
  const commands = state.client?.commands;
  if (!badge || !panel) return;
  const entries = commands ? commands.list() : [];
  const counts = commands ? commands.counts() : { pending: 0, done: 0, conflicted: 0 };
  badge.hidden = entries.length === 0;
  badge.dataset.pending = counts.pending;
  badge.dataset.conflicted = counts.conflicted;
  badge.dataset.done = counts.done;
  const parts = [];
  if (counts.pending) parts.push(`${counts.pending} pending`);
  if (counts.conflicted) parts.push(`${counts.conflicted} refused`);
  if (!parts.length && counts.done) parts.push(`${counts.done} saved`);
  badge.textContent = parts.join(' · ');
  badge.setAttribute('aria-expanded', String(!!state.queueOpen));
  panel.hidden = !state.queueOpen || entries.length === 0;
  const stateText = (e) => {
    if (e.state === 'done') return e.result?.replayed ? 'Done (confirmed on retry)' : 'Done';
    if (e.state === 'conflicted') return `Refused: ${refusalText(e.error)}`;
    if (e.sending) return 'Sending…';
    return e.error ? 'Pending: will retry' : 'Pending: waits for the connection';
  };
  panel.replaceChildren(
    h('div', { className: 'queue-head' },
      h('strong', {}, 'Your changes'),
      h('span', { className: 'spacer' }),
      counts.done ? h('button', { type: 'button', className: 'link', testid: 'queue-clear-done', onclick: () => commands.clearDone() }, 'Clear done') : null,
      h('button', { type: 'button', className: 'link', testid: 'queue-close', onclick: () => { state.queueOpen = false; renderQueue(); } }, 'Hide')),
    h('ol', { className: 'queue-list' }, [...entries].reverse().map((e) => h('li', {
      className: `queued ${e.state}`, testid: 'queued-command',
      dataset: { state: e.state, key: e.key, sending: String(!!e.sending), replayed: String(!!e.result?.replayed), code: e.error?.code ?? '' },
    },
    h('span', { className: 'queued-label', testid: 'queued-label' }, e.label ?? `${e.method} ${e.path}`),
    h('span', { className: `queued-state ${e.state}`, testid: 'queued-state' }, stateText(e)),
    e.state === 'conflicted' ? h('button', { type: 'button', testid: 'queued-retry', onclick: () => commands.retry(e.id) }, 'Retry') : null,
    e.state !== 'pending' || !e.sending
      ? h('button', { type: 'button', testid: 'queued-dismiss', onclick: () => commands.dismiss(e.id) }, e.state === 'pending' ? 'Cancel' : 'Dismiss')
      : null))));
}

function toggleQueue() {
  state.queueOpen = !state.queueOpen;
  renderQueue();
}

// ---- item detail ---------------------------------------------------------------------------

function openDetail(itemId) {
  if (!itemId) {
    state.detail = null;
    renderDetail();
    return;
  }
  if (state.detail?.id === itemId) return;
  const item = state.store?.items.get(itemId);
  state.detail = { id: itemId, base: item ? { ...item } : null, notice: null, conflict: null, removing: false };
  renderDetail();
  if (!item) {
    fetchItem(itemId).then((it) => {
      if (state.detail?.id !== itemId) return;
      if (it.status === 'removed') { itemGone(it, null); return; }
      state.detail.base = it;
      renderDetail();
    }).catch(() => { if (state.detail?.id === itemId) itemGone({ item_id: itemId, name: 'This item' }, null); });
  }
}

function closeDetail() {
  location.hash = `#/stores/${state.store.id}`;
}

/** The viewed item changed live. */
function onDetailEvent(item, event, byOther) {
  const detail = state.detail;
  if (!detail || detail.id !== item.item_id) return;
  if (event.type === 'ItemRemoved') { itemGone(item, event.metadata?.actor); return; }
  if (byOther) {
    // Keep showing what the user was looking at (and will save against);
    // say that it moved on, and let them pull it in.
    detail.notice = { by: byOther };
    renderDetail();
  } else if (!detail.conflict) {
    detail.base = { ...item };
    renderDetail();
  }
}

function itemGone(item, actor) {
  state.banner = {
    testid: 'removed-notice',
    text: `${item.name ?? 'The item'} was removed${actor && actor !== session.sub ? ` by ${actor}` : ''}. Back to the list.`,
  };
  state.detail = null;
  closeDetail();
  renderDetail();
  renderBanner();
}

function renderDetail() {
  const el = $('#detail');
  if (!el) return;
  const detail = state.detail;
  if (!detail) { el.replaceChildren(); return; }
  const item = detail.base;
  if (!item) { el.replaceChildren(h('div', { className: 'card', testid: 'item-detail' }, 'Loading…')); return; }
  const canStaff = session.role !== 'viewer';
  const canManage = ['manager', 'admin'].includes(session.role);
  const notice = detail.notice ? h('div', { className: 'notice warn', testid: 'stale-notice', role: 'status' },
    h('span', {}, `Updated by another user (${detail.notice.by}).`),
    h('button', { type: 'button', testid: 'stale-refresh', onclick: refreshDetail }, 'Refresh'),
    h('button', { type: 'button', className: 'link', testid: 'stale-dismiss', onclick: () => { detail.notice = null; renderDetail(); } }, 'Dismiss')) : null;
  const conflict = detail.conflict ? renderConflict(detail) : null;
  el.replaceChildren(h('div', { className: 'card detail', testid: 'item-detail', dataset: { itemId: item.item_id, version: item.version } },
    h('div', { className: 'detail-head' },
      h('h2', { testid: 'detail-name' }, item.name),
      h('span', { className: 'muted' }, item.sku),
      h('span', { className: 'spacer' }),
      h('button', { type: 'button', className: 'link', testid: 'detail-close', onclick: closeDetail }, 'Close')),
    notice,
    conflict,
    h('dl', { className: 'facts' },
      h('dt', {}, 'On hand'), h('dd', { testid: 'detail-qty' }, `${item.quantity}`), h('dd', {}, item.unit),
      h('dt', {}, 'Threshold'), h('dd', { testid: 'detail-threshold' }, `${item.threshold}`), h('dd', {}, ''),
      h('dt', {}, 'Status'), h('dd', { testid: 'detail-status' }, STATUS_LABEL[item.status] ?? item.status), h('dd', {}, ''),
      h('dt', {}, 'Version'), h('dd', { testid: 'detail-version' }, `${item.version}`), h('dd', {}, '')),
    canStaff ? h('form', { className: 'inline', testid: 'adjust-form', onsubmit: onDetailAdjust },
      h('input', { name: 'delta', type: 'number', required: true, placeholder: '±qty', testid: 'adjust-delta', 'aria-label': 'Change' }),
      h('select', { name: 'reason', testid: 'adjust-reason', 'aria-label': 'Reason' }, REASONS.map((r) => h('option', { value: r }, r))),
      h('input', { name: 'note', placeholder: 'note (optional)', maxlength: 500, testid: 'adjust-note', 'aria-label': 'Note' }),
      h('button', { type: 'submit', testid: 'adjust-save' }, 'Adjust')) : null,
    canManage ? h('form', { className: 'inline', testid: 'threshold-form', onsubmit: onDetailThreshold },
      h('label', {}, 'Threshold ', h('input', { name: 'threshold', type: 'number', min: 0, required: true, value: item.threshold, testid: 'threshold-input' })),
      h('button', { type: 'submit', testid: 'threshold-save' }, 'Set threshold')) : null,
    canManage ? h('form', { className: 'inline', testid: 'rename-form', onsubmit: onDetailRename },
      h('label', {}, 'Name ', h('input', { name: 'name', required: true, maxlength: 100, value: item.name, testid: 'rename-input' })),
      h('button', { type: 'submit', testid: 'rename-save' }, 'Rename')) : null,
    canManage ? h('button', { type: 'button', className: 'danger', testid: 'remove-item', onclick: onRemove }, detail.removing ? 'Click again to remove' : 'Remove item') : null,
    h('p', { className: 'error', testid: 'detail-error' }, detail.error ?? '')));
}

function renderConflict(detail) {
  const { current, yours, label } = detail.conflict;
  return h('div', { className: 'notice conflict', testid: 'conflict', role: 'alert' },
    h('p', {}, h('strong', {}, 'Conflict: '), `this item changed since you opened it (you had version ${detail.base.version}, it is now at ${current.version}). Your change was not saved.`),
    h('p', {}, 'Now: ',
      h('span', { testid: 'conflict-quantity' }, `${current.quantity} ${current.unit}`), ', threshold ',
      h('span', { testid: 'conflict-threshold' }, `${current.threshold}`), ', name ',
      h('span', { testid: 'conflict-name' }, current.name), '.'),
    h('p', {}, `Your change: ${label}.`),
    h('button', { type: 'button', testid: 'conflict-reapply', onclick: () => reapply(yours) }, 'Re-apply my change'),
    h('button', { type: 'button', className: 'link', testid: 'conflict-discard', onclick: discardConflict }, 'Discard my change'));
}

async function refreshDetail() {
  const detail = state.detail;
  if (!detail) return;
  try {
    const item = await fetchItem(detail.id, state.store?.items.get(detail.id)?.position);
    if (state.detail !== detail) return;
    detail.base = item;
    detail.notice = null;
    applyItem(item);
    renderDetail();
  } catch (err) {
    detail.error = `Could not refresh: ${err.message}`;
    renderDetail();
  }
}

/** Sends a command against the version the user was looking at; a 409 opens the conflict panel. */
async function saveAgainstBase(command) {
  const detail = state.detail;
  detail.error = null;
  try {
    const res = await api(command.path, { method: 'POST', body: command.body, ifMatch: detail.base.version });
    scheduleStoresRefetch(res.position);
    const item = await fetchItem(detail.id, res.position);
    if (state.detail !== detail) return;
    detail.base = item;
    detail.notice = null;
    detail.conflict = null;
    applyItem(item);
    renderDetail();
  } catch (err) {
    if (state.detail !== detail) return;
    if (err.code === 'version_conflict') {
      let current;
      try { current = await fetchItem(detail.id); } catch { current = { ...detail.base, version: err.details.current_version }; }
      detail.conflict = { current, yours: command, label: command.label };
    } else {
      detail.error = err.message;
    }
    renderDetail();
  }
}

async function reapply(command) {
  const detail = state.detail;
  if (!detail?.conflict) return;
  // The user saw the current values in the conflict panel: save against them.
  detail.base = detail.conflict.current;
  detail.conflict = null;
  await saveAgainstBase(command);
}

function discardConflict() {
  const detail = state.detail;
  if (!detail?.conflict) return;
  detail.base = detail.conflict.current;
  detail.conflict = null;
  detail.notice = null;
  applyItem(detail.base);
  renderDetail();
}

function onDetailAdjust(e) {
  e.preventDefault();
  const f = e.currentTarget.elements;
  const delta = Number(f.delta.value);
  const note = f.note.value.trim();
  const body = { delta, reason: f.reason.value, ...(note ? { note } : {}) };
  return saveAgainstBase({ path: `/items/${state.detail.id}/adjust`, body, label: `adjust by ${delta > 0 ? '+' : ''}${delta} (${body.reason})` });
}

function onDetailThreshold(e) {
  e.preventDefault();
  const threshold = Number(e.currentTarget.elements.threshold.value);
  return saveAgainstBase({ path: `/items/${state.detail.id}/threshold`, body: { threshold }, label: `set threshold to ${threshold}` });
}

function onDetailRename(e) {
  e.preventDefault();
  const name = e.currentTarget.elements.name.value.trim();
  return saveAgainstBase({ path: `/items/${state.detail.id}/rename`, body: { name }, label: `rename to “${name}”` });
}

async function onRemove() {
  const detail = state.detail;
  if (!detail.removing) { detail.removing = true; renderDetail(); return; }
  try {
    await api(`/items/${detail.id}/remove`, { method: 'POST' });
    // The live ItemRemoved (or this) takes the view back to the list.
    const item = detail.base;
    state.store.items.set(detail.id, { ...item, status: 'removed' });
    renderTable();
    itemGone(item, null);
  } catch (err) {
    detail.error = err.message;
    detail.removing = false;
    renderDetail();
  }
}

// ---- sign-in -------------------------------------------------------------------------------

function renderSignIn(message) {
  $('#whoami').textContent = '';
  $('#signout').hidden = true;
  const form = h('form', { className: 'card signin', testid: 'signin', onsubmit: onSignIn },
    h('h1', {}, 'Sign in (demo)'),
    h('p', { className: 'muted' }, 'Demo mode: pick a tenant, a user and a role; the server mints a token.'),
    h('label', {}, 'Tenant', h('input', { name: 'tenant', required: true, value: 'acme', pattern: '[a-z0-9_\\-]{1,64}', testid: 'signin-tenant' })),
    h('label', {}, 'User', h('input', { name: 'sub', required: true, value: 'alice', testid: 'signin-user' })),
    h('label', {}, 'Role', h('select', { name: 'role', testid: 'signin-role' },
      ['viewer', 'staff', 'manager', 'admin'].map((r) => h('option', { value: r, selected: r === 'manager' }, r)))),
    h('button', { type: 'submit', testid: 'signin-submit' }, 'Sign in'),
    h('p', { className: 'error', testid: 'signin-error' }, message ?? ''));
  $('#app').replaceChildren(form);
}

async function onSignIn(e) {
  e.preventDefault();
  const f = e.currentTarget.elements;
  const who = { tenant: f.tenant.value.trim(), sub: f.sub.value.trim(), role: f.role.value };
  try {
    const minted = await mintToken(who);
    saveSession({ ...who, token: minted.token, expires_at: minted.expires_at });
    await start();
  } catch (err) {
    renderSignIn(err.status === 404 ? 'This server is not in demo mode: sign in through your identity provider.' : err.message);
  }
}

function signOut() {
  state.client?.close();
  state.client = null;
  state.store = null;
  state.detail = null;
  state.tenantSub = null;
  saveSession(null);
  renderConnection();
  renderQueue();
  $('#latency').textContent = '';
  location.hash = '';
  renderSignIn();
}

async function start() {
  renderShell();
  startClient();
  try {
    await loadStores();
  } catch (err) {
    if (err.status === 401) { signOut(); renderSignIn('Your session ended: sign in again.'); return; }
    toast('error', `Could not load stores: ${err.message}`);
  }
  subscribeTenant();
  route();
}

window.addEventListener('hashchange', route);
window.addEventListener('DOMContentLoaded', () => {
  $('#signout').addEventListener('click', signOut);
  $('#queue').addEventListener('click', toggleQueue);
  if (session?.token) start();
  else renderSignIn();
});

// The web app's store view: opening a store (REST reads, then its live
// subscription from their position), the inventory table, presence, the
// live events of the store applied to the rows, adding items and the − / +
// quick adjustments.

import { $, h, REASONS, STATUS_LABEL } from './app-dom.js';
import { api, session, state, track } from './app-state.js';
import { renderStoreList, scheduleStoresRefetch } from './app-stores.js';
import { renderActivity } from './app-activity.js';
import { queueCommand } from './app-queue.js';
import { onDetailEvent, openDetail } from './app-detail.js';
import { storeNav } from './app-orders-api.js';

const HIGHLIGHT_MS = 2000;
const ACTIVITY_LIMIT = 50;

// ---- store view ------------------------------------------------------------------------

export function closeStore() {
  if (!state.store) return;
  state.store.sub?.unsubscribe();
  state.client?.leave(state.store.id);
  state.store = null;
  state.detail = null;
}

export async function openStore(storeId, itemId) {
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
      storeNav(store.id, 'inventory'),
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

export function renderStoreHeader() {
  const el = $('#store-title');
  if (el && state.store) el.textContent = state.store.summary.name + (state.store.summary.status === 'closed' ? ' (closed)' : '');
}

export function renderBanner() {
  const el = $('#banner');
  if (!el) return;
  el.replaceChildren();
  if (state.banner) {
    el.append(h('div', { className: 'notice', testid: state.banner.testid, role: 'status' },
      h('span', {}, state.banner.text),
      h('button', { type: 'button', className: 'link', onclick: () => { state.banner = null; renderBanner(); } }, 'Dismiss')));
  }
}

export function renderPresence() {
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

export function renderTable() {
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

function statusOf(quantity, threshold) {
  if (quantity <= 0) return 'out';
  if (quantity <= threshold) return 'low';
  return 'in_stock';
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

export async function fetchItem(itemId, minPosition) {
  const body = await api(`/items/${itemId}${minPosition ? `?min_position=${minPosition}` : ''}`);
  return body.item;
}

/** Puts a REST read of an item into the table, unless the table already has something newer. */
export function applyItem(item, { byOther } = {}) {
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

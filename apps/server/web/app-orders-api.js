// What the order pages (till, kitchen display, order board) share: their
// REST reads and commands (every command through `api`, so with an
// Idempotency-Key kept across its retries), the open page's life cycle (one
// at a time: opening another closes its subscriptions and timers), the
// links between a store's pages, and the tenant events they listen to.

import { h, toast } from './app-dom.js';
import { api, state } from './app-state.js';
import { newIdempotencyKey } from './larder-client.js';

// ---- reads ---------------------------------------------------------------------------

/** The list in a query's answer, whether it is the body itself or under `key`. */
function listOf(body, key) {
  if (Array.isArray(body)) return body;
  return body?.[key] ?? body?.items ?? [];
}

/** `{position, stations, items}`: the store's menu (stations with their timers; items active or not). */
export const readMenu = (storeId) => api(`/stores/${storeId}/menu`);

/**
 * `{position, items}`: each menu item and whether a portion can be made now
 * (false: 86'd); with `minPosition`, once the read models have caught up with it.
 */
export async function readAvailability(storeId, minPosition) {
  const body = await api(`/stores/${storeId}/menu/availability${minPosition ? `?min_position=${minPosition}` : ''}`);
  return { position: body?.position ?? 0, items: listOf(body, 'items') };
}

/** `{position, tickets}`: a station's lines fired and not ready, rush first, then in fire order. */
export async function readTickets(storeId, station) {
  const body = await api(`/stores/${storeId}/kitchen/${encodeURIComponent(station)}/tickets`);
  return { position: body?.position ?? 0, tickets: listOf(body, 'tickets') };
}

/** `{position, orders}`: the store's orders not completed or cancelled. */
export async function readBoard(storeId) {
  const body = await api(`/stores/${storeId}/orders/board`);
  return { position: body?.position ?? 0, orders: listOf(body, 'orders') };
}

/** An order as folded from its stream, with `position` and `version`. */
export async function readOrder(orderId) {
  const body = await api(`/orders/${orderId}`);
  return { ...body.order, position: body.position, version: body.version };
}

// ---- commands ------------------------------------------------------------------------

/** Opens an order; its id is chosen here so a retry names the same order. */
export async function openOrder(storeId, { service, covers, currency }) {
  const orderId = newIdempotencyKey();
  await api(`/stores/${storeId}/orders`, { method: 'POST', body: { order_id: orderId, service, covers, currency } });
  return orderId;
}

export function addLine(orderId, menuItemId, { quantity = 1, modifiers = [], note = null, course } = {}) {
  const body = { line_id: newIdempotencyKey(), menu_item_id: menuItemId, quantity, modifiers };
  if (note) body.note = note;
  if (course) body.course = course;
  return api(`/orders/${orderId}/lines`, { method: 'POST', body });
}

/** `void`, `start`, `ready` or `recall` of one line. */
export const lineAction = (orderId, lineId, action) => api(`/orders/${orderId}/lines/${lineId}/${action}`, { method: 'POST' });

export const fireOrder = (orderId, course) => api(`/orders/${orderId}/fire`, { method: 'POST', body: course ? { course } : {} });

/** `serve` or `complete`. */
export const orderAction = (orderId, action) => api(`/orders/${orderId}/${action}`, { method: 'POST' });

export const cancelOrder = (orderId, reason) => api(`/orders/${orderId}/cancel`, { method: 'POST', body: { reason } });

export const rushOrder = (orderId, rush) => api(`/orders/${orderId}/rush`, { method: 'POST', body: { rush } });

/** What a refusal says to the user. */
const REFUSALS = {
  nothing_to_fire: 'nothing waits to be fired',
  menu_item_inactive: 'it is off sale',
  order_not_ready: 'the order is not ready yet',
  order_not_served: 'the order has not been served',
  order_already_served: 'the order was served already',
  order_already_completed: 'the order is completed',
  order_already_cancelled: 'the order was cancelled',
  line_already_started: 'the kitchen started it',
  line_already_ready: 'it is ready already',
  line_not_ready: 'it is not ready',
  line_not_fired: 'it was not fired',
  line_voided: 'it was voided',
  store_closed: 'the store is closed',
  forbidden: 'your role may not do this',
};

/** Runs a command; a refusal or failure is said in a toast. Resolves with the answer, or null. */
export async function attempt(what, command) {
  try {
    return await command();
  } catch (error) {
    toast('error', `Could not ${what}: ${REFUSALS[error.code] ?? error.message}.`);
    return null;
  }
}

// ---- the open page ----------------------------------------------------------------------

/**
 * Makes `page` the open order page ({kind, storeId, close(), onTenantEvent?}),
 * closing the one before. Returns a sequence number: a page checks
 * `isCurrent(seq)` after every await, so a slow read of a page already left
 * changes nothing.
 */
export function setPage(page) {
  closePage();
  state.page = page;
  page.seq = ++state.viewSeq;
  document.body.dataset.page = page.kind;
  return page.seq;
}

export const isCurrent = (page) => state.page === page && page.seq === state.viewSeq;

/** Closes the open order page, if any: its subscriptions, timers and key handlers. */
export function closePage() {
  const page = state.page;
  if (!page) return;
  state.page = null;
  delete document.body.dataset.page;
  try { page.close(); } catch (error) { console.warn('larder: closing a page failed', error); }
}

/** The tenant's live events (app-connection.js): the open page may care (menu, stock, stations). */
export function onTenantEvent(event, position) {
  const page = state.page;
  if (page?.onTenantEvent && event.metadata?.store === page.storeId) page.onTenantEvent(event, position);
}

/** Links between a store's pages: inventory, till, kitchen, board, dashboard. */
export function storeNav(storeId, current) {
  const link = (kind, href, text) => h('a', {
    href, testid: `nav-${kind}`, className: kind === current ? 'current' : null, 'aria-current': kind === current ? 'page' : null,
  }, text);
  return h('nav', { className: 'store-nav', 'aria-label': 'Store pages' },
    link('inventory', `#/stores/${storeId}`, 'Inventory'),
    link('till', `#/stores/${storeId}/till`, 'Till'),
    link('kitchen', `#/stores/${storeId}/kitchen`, 'Kitchen'),
    link('board', `#/stores/${storeId}/board`, 'Order board'),
    link('dashboard', `#/stores/${storeId}/dashboard`, 'Dashboard'));
}

/** Calls `fn` once, `ms` after the first of a burst of calls (one read for a burst of events). */
export function debounce(fn, ms) {
  let timer = null;
  const run = () => { timer = null; fn(); };
  const call = () => { if (timer == null) timer = setTimeout(run, ms); };
  call.cancel = () => { clearTimeout(timer); timer = null; };
  return call;
}

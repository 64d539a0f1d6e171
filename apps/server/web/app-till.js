// The till: the store's menu as a grid of large buttons (86'd dishes, those
// an ingredient is out of stock for, greyed out live), the order in progress
// (lines with their kitchen status, total, fire, serve, complete, cancel,
// rush) and the store's open orders to switch between. Reads build the page
// (menu, availability, board); the `orders:{store}` topic, from the board's
// position, keeps the open orders and the order in progress live.

import { $, h, toast } from './app-dom.js';
import { state, track } from './app-state.js';
import {
  addLine, attempt, cancelOrder, debounce, fireOrder, isCurrent, lineAction, openOrder, orderAction, readAvailability,
  readBoard, readMenu, readOrder, rushOrder, setPage, storeNav,
} from './app-orders-api.js';
import { boardOrder, foldBoard, foldOrder, formatMoney, serviceLabel } from './app-orders-model.js';

const LINE_STATUS = { pending: 'Not fired', fired: 'Fired', started: 'Cooking', ready: 'Ready', voided: 'Voided' };
const ORDER_STATUS = { open: 'Open', fired: 'In the kitchen', ready: 'Ready', served: 'Served', completed: 'Completed', cancelled: 'Cancelled' };
/** How often a stale availability read is tried again (the read model follows stock a moment later). */
const AVAILABILITY_RETRY_MS = 500;
const AVAILABILITY_TRIES = 5;

export async function openTill(storeId) {
  const page = { kind: 'till', storeId, board: new Map(), order: null, loading: null, buffered: [], sub: null };
  page.close = () => { page.sub?.unsubscribe(); page.refreshAvailability?.cancel(); };
  setPage(page);
  $('#view').replaceChildren(h('p', { className: 'muted' }, 'Loading the till…'));
  let menu, availability, board;
  try {
    [menu, availability, board] = await Promise.all([readMenu(storeId), readAvailability(storeId).catch(() => null), readBoard(storeId)]);
  } catch (error) {
    if (isCurrent(page)) $('#view').replaceChildren(h('p', { className: 'error', testid: 'till-error' }, `Could not load the till: ${error.message}`));
    return;
  }
  if (!isCurrent(page)) return;
  page.menu = menu;
  page.available = availabilityMap(availability);
  page.board = new Map(board.orders.map((o) => [o.order_id, { ...o, position: board.position }]));
  renderTill(page);
  page.refreshAvailability = debounce(() => refreshAvailability(page, page.wantPosition ?? 0, 0), 150);
  page.onTenantEvent = (event, position) => {
    const kind = event.metadata?.entity_type;
    page.wantPosition = Math.max(page.wantPosition ?? 0, position);
    if (kind === 'menu') readMenu(storeId).then((m) => { if (isCurrent(page)) { page.menu = m; renderMenu(page); } }).catch(() => {});
    if (kind === 'menu' || kind === 'item') page.refreshAvailability();
  };
  page.sub = state.client.subscribe(`orders:${storeId}`, {
    since: board.position,
    onEvent: (event, frame) => { track(frame); onOrderEvent(page, event, frame.position); },
    onReset: () => reloadBoard(page),
  });
}

function availabilityMap(read) {
  return read ? new Map(read.items.map((a) => [a.menu_item_id, a])) : new Map();
}

/**
 * Reads availability again, once the read models have the change that asked
 * for it; a read still older (the server waits a bounded time) is tried again shortly.
 */
async function refreshAvailability(page, wanted, tries) {
  try {
    const read = await readAvailability(page.storeId, wanted);
    if (!isCurrent(page)) return;
    page.available = availabilityMap(read);
    renderMenu(page);
    if (read.position < wanted && tries < AVAILABILITY_TRIES) setTimeout(() => refreshAvailability(page, wanted, tries + 1), AVAILABILITY_RETRY_MS);
  } catch { /* the next change reads it again */ }
}

async function reloadBoard(page) {
  try {
    const board = await readBoard(page.storeId);
    if (!isCurrent(page)) return;
    page.board = new Map(board.orders.map((o) => [o.order_id, { ...o, position: board.position }]));
    page.sub?.setPosition(board.position);
    renderOpenOrders(page);
    if (page.order) await loadOrder(page, page.order.order_id);
  } catch { /* the next reconnect tries again */ }
}

function onOrderEvent(page, event, position) {
  foldBoard(page.board, event, position);
  renderOpenOrders(page);
  const orderId = event.data?.order_id ?? event.metadata?.entity_id;
  if (page.loading === orderId) { page.buffered.push({ event, position }); return; }
  if (page.order?.order_id === orderId) {
    page.order = foldOrder(page.order, event, position);
    renderOrder(page);
  }
}

/** Makes an order the one in progress: read whole, then the events that came meanwhile. */
async function loadOrder(page, orderId) {
  page.loading = orderId;
  page.buffered = [];
  try {
    let order = await readOrder(orderId);
    if (!isCurrent(page) || page.loading !== orderId) return;
    for (const { event, position } of page.buffered) order = foldOrder(order, event, position);
    page.order = order;
  } catch (error) {
    toast('error', `Could not read the order: ${error.message}`);
  } finally {
    if (page.loading === orderId) { page.loading = null; page.buffered = []; }
  }
  renderOrder(page);
  renderOpenOrders(page);
}

/** After a command on the order in progress: read it back (the page stays right without the live connection). */
async function refreshOrder(page) {
  const current = page.order;
  if (!current) return;
  try {
    const order = await readOrder(current.order_id);
    if (!isCurrent(page) || page.order?.order_id !== order.order_id || order.position <= (page.order.position ?? 0)) return;
    page.order = order;
    renderOrder(page);
  } catch { /* the live event brings it */ }
}

// ---- rendering -----------------------------------------------------------------------

function renderTill(page) {
  const store = state.stores.get(page.storeId);
  $('#view').replaceChildren(
    h('div', { className: 'store-head' },
      h('h1', { testid: 'till-title' }, `Till · ${store?.name ?? 'Store'}`),
      storeNav(page.storeId, 'till')),
    h('div', { className: 'till', testid: 'till' },
      h('section', { className: 'menu-grid', id: 'menu-grid', testid: 'menu-grid', 'aria-label': 'Menu' }),
      h('section', { className: 'order-panel card', id: 'order-panel', testid: 'order-panel', 'aria-label': 'Order in progress', 'aria-live': 'polite' }),
      h('aside', { className: 'open-orders card', 'aria-label': 'Open orders' },
        h('h2', {}, 'Open orders'),
        h('ol', { id: 'open-orders', className: 'open-orders-list', testid: 'open-orders' }))));
  renderMenu(page);
  renderOrder(page);
  renderOpenOrders(page);
}

function renderMenu(page) {
  const grid = $('#menu-grid');
  if (!grid || !page.menu) return;
  const stations = new Map(page.menu.stations.map((s) => [s.key, s.name]));
  const items = [...page.menu.items].sort((a, b) => a.station.localeCompare(b.station) || a.name.localeCompare(b.name));
  if (items.length === 0) {
    grid.replaceChildren(h('p', { className: 'muted', testid: 'menu-empty' }, 'The menu is empty: a manager adds dishes through the API.'));
    return;
  }
  grid.replaceChildren(...items.map((item) => {
    const availability = page.available.get(item.menu_item_id);
    const out = availability ? !availability.available : false;
    const off = !item.active;
    return h('button', {
      type: 'button', className: `menu-item${out ? ' out' : ''}${off ? ' off' : ''}`, testid: 'menu-item',
      dataset: { menuItemId: item.menu_item_id, available: String(!out), active: String(item.active) },
      disabled: out || off, onclick: () => onMenuItem(page, item),
      title: out ? 'Out of an ingredient (86)' : off ? 'Off sale' : `Add ${item.name}`,
    },
    h('span', { className: 'menu-item-name' }, item.name),
    h('span', { className: 'menu-item-price' }, formatMoney(item.price.amount_minor, item.price.currency)),
    h('span', { className: 'menu-item-station muted' }, stations.get(item.station) ?? item.station),
    out ? h('span', { className: 'badge out', testid: 'menu-item-86' }, '86') : null,
    off ? h('span', { className: 'badge', testid: 'menu-item-off' }, 'off') : null);
  }));
}

function renderOrder(page) {
  const panel = $('#order-panel');
  if (!panel) return;
  const order = page.order;
  if (!order) {
    panel.replaceChildren(newOrderForm(page));
    return;
  }
  const done = ['completed', 'cancelled'].includes(order.status);
  const kitchenOpen = ['open', 'ready'].includes(order.status);
  const pending = order.lines.filter((l) => l.status === 'pending').length;
  panel.replaceChildren(
    h('div', { className: 'order-head' },
      h('h2', { testid: 'order-label' }, `${serviceLabel(order.service)}${order.covers ? ` · ${order.covers} covers` : ''}`),
      h('span', { className: `order-status ${order.status}`, testid: 'order-status', dataset: { status: order.status } }, ORDER_STATUS[order.status] ?? order.status),
      order.rush ? h('span', { className: 'badge rush', testid: 'order-rush' }, 'Rush') : null),
    h('ol', { className: 'order-lines', testid: 'order-lines' },
      order.lines.length === 0 ? h('li', { className: 'muted' }, 'Tap a dish to add it.') : null,
      order.lines.map((line) => h('li', { className: `order-line ${line.status}`, testid: 'order-line', dataset: { lineId: line.line_id, status: line.status } },
        h('span', { className: 'line-qty' }, `${line.quantity}×`),
        h('span', { className: 'line-name' }, line.name, line.modifiers.length ? h('small', { className: 'muted' }, ` ${line.modifiers.join(', ')}`) : null),
        h('span', { className: `line-status ${line.status}`, testid: 'line-status' }, LINE_STATUS[line.status] ?? line.status),
        h('span', { className: 'line-price' }, formatMoney(line.unit_price.amount_minor * line.quantity, line.unit_price.currency)),
        ['pending', 'fired'].includes(line.status) && !done
          ? h('button', { type: 'button', className: 'link', testid: 'line-void', 'aria-label': `Void ${line.name}`, onclick: () => run(page, 'void the line', () => lineAction(order.order_id, line.line_id, 'void')) }, 'Void')
          : null))),
    h('div', { className: 'order-total' }, h('span', {}, 'Total'), h('strong', { testid: 'order-total' }, formatMoney(order.total.amount_minor, order.total.currency))),
    h('div', { className: 'order-actions' },
      kitchenOpen ? h('button', { type: 'button', className: 'primary', testid: 'order-fire', disabled: pending === 0, onclick: () => run(page, 'fire the order', () => fireOrder(order.order_id)) }, pending ? `Fire ${pending}` : 'Fire') : null,
      order.status === 'ready' ? h('button', { type: 'button', className: 'primary', testid: 'order-serve', onclick: () => run(page, 'serve the order', () => orderAction(order.order_id, 'serve')) }, 'Served') : null,
      order.status === 'served' ? h('button', { type: 'button', className: 'primary', testid: 'order-complete', onclick: () => run(page, 'complete the order', () => orderAction(order.order_id, 'complete')) }, 'Complete') : null,
      !done && order.status !== 'served' ? h('button', { type: 'button', testid: 'order-rush-toggle', onclick: () => run(page, 'change the rush', () => rushOrder(order.order_id, !order.rush)) }, order.rush ? 'No rush' : 'Rush') : null,
      !done ? h('button', { type: 'button', className: 'danger', testid: 'order-cancel', onclick: () => onCancel(page) }, 'Cancel order') : null,
      h('button', { type: 'button', testid: 'order-close', onclick: () => { page.order = null; renderOrder(page); renderOpenOrders(page); } }, 'New order')));
}

function newOrderForm(page) {
  const table = h('input', { name: 'table', placeholder: 'Table', maxlength: 16, testid: 'order-table', 'aria-label': 'Table', inputmode: 'numeric' });
  const service = h('select', { name: 'service', testid: 'order-service', 'aria-label': 'Service', onchange: () => { table.disabled = service.value !== 'dine_in'; } },
    h('option', { value: 'dine_in' }, 'Dine in'), h('option', { value: 'takeaway' }, 'Takeaway'));
  return h('form', { className: 'new-order', testid: 'new-order', onsubmit: (e) => { e.preventDefault(); startOrder(page); } },
    h('h2', {}, 'New order'),
    h('label', {}, 'Service ', service),
    h('label', {}, 'Table ', table),
    h('label', {}, 'Covers ', h('input', { name: 'covers', type: 'number', min: 0, max: 999, value: 2, testid: 'order-covers', 'aria-label': 'Covers' })),
    h('button', { type: 'submit', className: 'primary', testid: 'order-new' }, 'Start order'),
    h('p', { className: 'muted' }, 'Or tap a dish: the order starts with it.'));
}

function renderOpenOrders(page) {
  const list = $('#open-orders');
  if (!list) return;
  const orders = [...page.board.values()].sort(boardOrder);
  list.replaceChildren(...orders.map((o) => h('li', {},
    h('button', {
      type: 'button', className: `open-order ${o.status}${page.order?.order_id === o.order_id ? ' current' : ''}`, testid: 'open-order',
      dataset: { orderId: o.order_id, status: o.status }, onclick: () => loadOrder(page, o.order_id),
    },
    h('span', {}, serviceLabel(o.service, o.table)),
    o.rush ? h('span', { className: 'badge rush' }, 'Rush') : null,
    h('span', { className: `order-status ${o.status}` }, ORDER_STATUS[o.status] ?? o.status),
    o.lines_fired ? h('span', { className: 'muted' }, `${o.lines_ready}/${o.lines_fired} ready`) : null))));
  if (orders.length === 0) list.append(h('li', { className: 'muted' }, 'No open orders.'));
}

// ---- actions ---------------------------------------------------------------------------

/** A command on the order in progress, then the order read back. */
async function run(page, what, command) {
  const answer = await attempt(what, command);
  if (answer && isCurrent(page)) await refreshOrder(page);
}

function newOrderValues(page) {
  const form = $('[data-testid="new-order"]');
  const f = form?.elements;
  const kind = f?.service.value ?? 'takeaway';
  const table = f?.table.value.trim() ?? '';
  if (kind === 'dine_in' && !table) return null;
  const service = kind === 'dine_in' ? { kind, table } : { kind: 'takeaway' };
  const currency = page.menu?.items[0]?.price.currency ?? 'GBP';
  return { service, covers: Math.max(0, Math.min(999, Number(f?.covers.value || 0))), currency };
}

async function startOrder(page) {
  const values = newOrderValues(page);
  if (!values) {
    toast('error', 'Enter the table, or choose takeaway.');
    $('[data-testid="order-table"]')?.focus();
    return null;
  }
  const orderId = await attempt('open the order', () => openOrder(page.storeId, values));
  if (orderId && isCurrent(page)) await loadOrder(page, orderId);
  return orderId;
}

async function onMenuItem(page, item) {
  if (!page.order || ['completed', 'cancelled', 'served'].includes(page.order.status)) {
    if (!(await startOrder(page))) return;
  }
  const order = page.order;
  if (!order) return;
  await run(page, `add ${item.name}`, () => addLine(order.order_id, item.menu_item_id));
}

async function onCancel(page) {
  const order = page.order;
  const reason = window.prompt('Why is the order cancelled?', 'guest left');
  if (!order || !reason?.trim()) return;
  await run(page, 'cancel the order', () => cancelOrder(order.order_id, reason.trim()));
}

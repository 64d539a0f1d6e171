// The order board: a store's orders not completed or cancelled, in three
// columns (in the kitchen, ready, served), rush orders first, then oldest
// first, each with how many of its fired lines are ready and how long ago it
// was opened. Made for a screen at the pass or in the dining room: large
// cards, no controls but the order to serve. Read over REST, then kept live
// by the `orders:{store}` topic from the read's position.

import { $, h } from './app-dom.js';
import { state, track } from './app-state.js';
import { attempt, isCurrent, orderAction, readBoard, setPage, storeNav } from './app-orders-api.js';
import { boardOrder, foldBoard, serviceLabel } from './app-orders-model.js';

const COLUMNS = [
  { key: 'kitchen', title: 'In the kitchen', statuses: ['open', 'fired'] },
  { key: 'ready', title: 'Ready', statuses: ['ready'] },
  { key: 'served', title: 'Served', statuses: ['served'] },
];
const TICK_MS = 10000;

export async function openBoard(storeId) {
  const page = { kind: 'board', storeId, board: new Map(), sub: null, ticker: null };
  page.close = () => { page.sub?.unsubscribe(); clearInterval(page.ticker); };
  setPage(page);
  $('#view').replaceChildren(h('p', { className: 'muted' }, 'Loading the board…'));
  let read;
  try {
    read = await readBoard(storeId);
  } catch (error) {
    if (isCurrent(page)) $('#view').replaceChildren(h('p', { className: 'error', testid: 'board-error' }, `Could not load the board: ${error.message}`));
    return;
  }
  if (!isCurrent(page)) return;
  page.board = new Map(read.orders.map((o) => [o.order_id, { ...o, position: read.position }]));
  const store = state.stores.get(storeId);
  $('#view').replaceChildren(
    h('div', { className: 'store-head' }, h('h1', { testid: 'board-title' }, `Orders · ${store?.name ?? 'Store'}`), storeNav(storeId, 'board')),
    h('div', { className: 'board', id: 'board', testid: 'board', 'aria-live': 'polite' }));
  renderBoard(page);
  // Ages move slowly: a coarse tick is enough.
  page.ticker = setInterval(() => renderBoard(page), TICK_MS);
  page.sub = state.client.subscribe(`orders:${storeId}`, {
    since: read.position,
    onEvent: (event, frame) => { track(frame); foldBoard(page.board, event, frame.position); renderBoard(page); },
    onReset: () => reloadBoard(page),
  });
}

async function reloadBoard(page) {
  try {
    const read = await readBoard(page.storeId);
    if (!isCurrent(page)) return;
    page.board = new Map(read.orders.map((o) => [o.order_id, { ...o, position: read.position }]));
    page.sub?.setPosition(read.position);
    renderBoard(page);
  } catch { /* the next reconnect tries again */ }
}

/** How long ago an order was opened, in words a glance can read: "just now", "12 min", "1 h 5 min". */
function age(iso) {
  const at = Date.parse(iso);
  const mins = Number.isNaN(at) ? 0 : Math.floor((Date.now() - at) / 60000);
  if (mins < 1) return 'just now';
  return mins < 60 ? `${mins} min ago` : `${Math.floor(mins / 60)} h ${mins % 60} min ago`;
}

function renderBoard(page) {
  const el = $('#board');
  if (!el) return;
  const orders = [...page.board.values()].sort(boardOrder);
  el.replaceChildren(...COLUMNS.map((column) => {
    const mine = orders.filter((o) => column.statuses.includes(o.status));
    return h('section', { className: `board-column ${column.key}`, testid: `board-${column.key}` },
      h('h2', {}, `${column.title} `, h('span', { className: 'count' }, String(mine.length))),
      h('ol', { className: 'board-list' }, mine.map((o) => h('li', {
        className: `board-card ${o.status}${o.rush ? ' rush' : ''}`, testid: 'board-order', dataset: { orderId: o.order_id, status: o.status },
      },
      h('strong', { className: 'board-label', testid: 'board-label' }, serviceLabel(o.service, o.table)),
      o.rush ? h('span', { className: 'badge rush' }, 'Rush') : null,
      h('span', { className: 'muted' }, `${o.covers ? `${o.covers} covers · ` : ''}${age(o.opened_at)}`),
      o.lines_fired ? h('span', { className: 'board-progress', testid: 'board-progress' }, `${o.lines_ready}/${o.lines_fired} ready`) : h('span', { className: 'muted' }, 'Not fired yet'),
      o.status === 'ready'
        ? h('button', { type: 'button', className: 'primary', testid: 'board-serve', onclick: () => attempt('serve the order', () => orderAction(o.order_id, 'serve')) }, 'Served')
        : null))),
      mine.length === 0 ? h('p', { className: 'muted' }, 'None.') : null);
  }));
}

// The order pages' state, as pure functions of REST reads and live events
// (no DOM, no fetch, so Node's tests run them): an order folded from its
// events for the till, the order board, a station's tickets, money and the
// timer colours of the kitchen display. Each holds the position of the last
// event applied, so an event a REST read already had is never applied twice.
// The event shapes are those of docs/events.md ("Order events").

/** A money amount in minor units as text: 1250 GBP -> "£12.50". */
export function formatMoney(amountMinor, currency) {
  if (!Number.isFinite(amountMinor)) return '';
  try {
    const format = new Intl.NumberFormat(undefined, { style: 'currency', currency });
    const digits = format.resolvedOptions().maximumFractionDigits;
    return format.format(amountMinor / 10 ** digits);
  } catch {
    return `${(amountMinor / 100).toFixed(2)} ${currency ?? ''}`.trim();
  }
}

/** How a ticket or order is named on screens: "Table 12" or "Takeaway". */
export function serviceLabel(service, table) {
  const kind = typeof service === 'object' && service ? service.kind : service;
  const label = typeof service === 'object' && service ? service.table : table;
  return kind === 'dine_in' ? `Table ${label ?? '?'}` : 'Takeaway';
}

// ---- one order (the till) ------------------------------------------------------

/** The order's total: the lines not voided, price times quantity. */
export function orderTotal(order) {
  const amount = order.lines
    .filter((l) => l.status !== 'voided')
    .reduce((sum, l) => sum + l.unit_price.amount_minor * l.quantity, 0);
  return { amount_minor: amount, currency: order.currency };
}

/**
 * An order (the `order` of `GET /orders/{id}`, with `position`) after one
 * event of its stream. Returns a new object; the same one when the event is
 * at or below the order's position (already in it).
 */
export function foldOrder(order, event, position) {
  const d = event.data ?? {};
  if (event.type === 'OrderOpened') {
    if (order) return order;
    const opened = {
      order_id: d.order_id, store_id: d.store_id, service: d.service, covers: d.covers, currency: d.currency,
      rush: !!d.rush, status: 'open', lines: [], position, version: event.version,
    };
    return { ...opened, total: orderTotal(opened) };
  }
  if (!order || position <= (order.position ?? 0)) return order;
  const next = { ...order, lines: order.lines.map((l) => ({ ...l })), position, version: event.version };
  const line = (id) => next.lines.find((l) => l.line_id === id);
  switch (event.type) {
    case 'OrderLineAdded':
      if (!line(d.line_id)) {
        next.lines.push({
          line_id: d.line_id, menu_item_id: d.menu_item_id, name: d.name, unit_price: d.unit_price, station: d.station,
          quantity: d.quantity, modifiers: d.modifiers ?? [], note: d.note ?? null, course: d.course ?? 1, status: 'pending',
        });
      }
      if (next.status === 'ready') next.status = 'open';
      break;
    case 'OrderLineVoided': { const l = line(d.line_id); if (l) l.status = 'voided'; break; }
    case 'OrderFired':
      for (const fired of d.lines ?? []) { const l = line(fired.line_id); if (l) l.status = 'fired'; }
      break;
    case 'OrderLineStarted': { const l = line(d.line_id); if (l) l.status = 'started'; break; }
    case 'OrderLineReady': { const l = line(d.line_id); if (l) l.status = 'ready'; break; }
    case 'OrderLineRecalled': {
      const l = line(d.line_id);
      if (l) l.status = d.back_to === 'started' ? 'started' : 'fired';
      if (next.status === 'ready') next.status = 'open';
      break;
    }
    case 'OrderReady': next.status = 'ready'; break;
    case 'OrderServed': next.status = 'served'; break;
    case 'OrderCompleted': next.status = 'completed'; break;
    case 'OrderCancelled': next.status = 'cancelled'; break;
    case 'OrderRushed': next.rush = true; break;
    case 'OrderRushCleared': next.rush = false; break;
    default: return order;
  }
  next.total = orderTotal(next);
  return next;
}

// ---- the order board -----------------------------------------------------------------

/** Statuses that keep an order on the board (the others leave it). */
const ON_BOARD = ['open', 'fired', 'ready', 'served'];

/** Board order of the read model: rush first, then oldest first. */
export function boardOrder(a, b) {
  return (b.rush - a.rush) || a.opened_at.localeCompare(b.opened_at) || a.order_id.localeCompare(b.order_id);
}

/**
 * The board (a Map order_id -> BoardOrder of `GET .../orders/board`, each
 * with `position`) after one event. Mutates and returns the map. An order
 * that was not on the board and is not opened by this event is left out: the
 * board read had it already gone, or it is older than the board read.
 */
export function foldBoard(board, event, position) {
  const d = event.data ?? {};
  const id = d.order_id ?? event.metadata?.entity_id;
  if (event.type === 'OrderOpened') {
    if (!board.has(id)) {
      board.set(id, {
        order_id: id, service: d.service?.kind ?? 'takeaway', table: d.service?.table ?? null, covers: d.covers ?? 0,
        rush: !!d.rush, status: 'open', lines_fired: 0, lines_ready: 0, opened_at: event.recorded_at,
        updated_at: event.recorded_at, version: event.version, position,
      });
    }
    return board;
  }
  const order = board.get(id);
  if (!order || position <= (order.position ?? 0)) return board;
  const next = { ...order, version: event.version, updated_at: event.recorded_at, position };
  switch (event.type) {
    case 'OrderLineAdded': if (next.status === 'ready') next.status = 'open'; break;
    case 'OrderFired': next.lines_fired += (d.lines ?? []).length; next.status = 'fired'; break;
    // A voided line that gives stock back had been fired (a started one cannot be voided).
    case 'OrderLineVoided': if ((d.returned ?? []).length > 0) next.lines_fired = Math.max(0, next.lines_fired - 1); break;
    case 'OrderLineReady': next.lines_ready = Math.min(next.lines_fired, next.lines_ready + 1); break;
    case 'OrderLineRecalled':
      next.lines_ready = Math.max(0, next.lines_ready - 1);
      if (next.status === 'ready') next.status = 'fired';
      break;
    case 'OrderReady': next.status = 'ready'; break;
    case 'OrderServed': next.status = 'served'; break;
    case 'OrderCompleted': next.status = 'completed'; break;
    case 'OrderCancelled': next.status = 'cancelled'; break;
    case 'OrderRushed': next.rush = true; break;
    case 'OrderRushCleared': next.rush = false; break;
    default: break;
  }
  if (ON_BOARD.includes(next.status)) board.set(id, next);
  else board.delete(id);
  return board;
}

// ---- a station's tickets (the kitchen display) --------------------------------------

/**
 * A station's tickets: `lines` (line_id -> KitchenTicket of `GET
 * .../kitchen/{station}/tickets`, plus `seq`, its place in fire order),
 * `orders` (order_id -> {service, table, rush} for tickets to come),
 * `bumped` (the lines made ready here or seen ready, newest last, for
 * recall), and `position`.
 */
export function ticketsFromRead(station, tickets, position) {
  const model = { station, lines: new Map(), orders: new Map(), bumped: [], position };
  // Before any live event: negative ranks keep the read's order (rush first,
  // then fire order) ahead of lines fired later, whose rank is their position.
  tickets.forEach((t, i) => {
    model.lines.set(t.line_id, { ...t, seq: i - tickets.length });
    model.orders.set(t.order_id, { service: t.service, table: t.table ?? null, rush: !!t.rush });
  });
  return model;
}

/** At most this many bumped lines are kept for recall. */
export const RECALL_LIMIT = 12;

/**
 * The tickets after one event of the station's topic. Mutates and returns
 * the model, and says what changed: `{model, fired, unknownOrder, reread}`:
 * `fired` counts the new lines for this station (a sound), `unknownOrder`
 * names an order whose table is not known yet (the page reads it and calls
 * `setOrderInfo`), `reread` asks for the tickets to be read again.
 */
export function foldTickets(model, event, position) {
  const result = { model, fired: 0, unknownOrder: null, reread: false };
  if (position <= model.position) return result;
  model.position = position;
  const d = event.data ?? {};
  const orderId = d.order_id ?? event.metadata?.entity_id;
  const mine = d.station === model.station;
  switch (event.type) {
    case 'OrderOpened':
      model.orders.set(orderId, { service: d.service?.kind ?? 'takeaway', table: d.service?.table ?? null, rush: !!d.rush });
      break;
    case 'OrderFired': {
      const order = model.orders.get(orderId);
      if (!order) result.unknownOrder = orderId;
      (d.lines ?? []).filter((l) => l.station === model.station).forEach((l, i) => {
        if (model.lines.has(l.line_id)) return;
        model.lines.set(l.line_id, {
          order_id: orderId, line_id: l.line_id, service: order?.service ?? 'takeaway', table: order?.table ?? null,
          menu_item_id: l.menu_item_id, name: l.name, quantity: l.quantity, modifiers: l.modifiers ?? [], note: l.note ?? null,
          course: l.course ?? 1, rush: order?.rush ?? false, status: 'fired', fired_at: event.recorded_at, started_at: null,
          seq: position + i / 1000,
        });
        result.fired++;
      });
      break;
    }
    case 'OrderLineStarted': {
      const l = mine && model.lines.get(d.line_id);
      if (l) { l.status = 'started'; l.started_at = event.recorded_at; }
      break;
    }
    case 'OrderLineReady': {
      const l = mine && model.lines.get(d.line_id);
      if (l) {
        model.lines.delete(d.line_id);
        model.bumped = model.bumped.filter((b) => b.line_id !== d.line_id);
        model.bumped.push({ ...l, ready_at: event.recorded_at });
        if (model.bumped.length > RECALL_LIMIT) model.bumped.shift();
      }
      break;
    }
    case 'OrderLineRecalled': {
      if (!mine) break;
      const b = model.bumped.find((x) => x.line_id === d.line_id);
      model.bumped = model.bumped.filter((x) => x.line_id !== d.line_id);
      if (b) {
        const { ready_at: _readyAt, ...line } = b;
        model.lines.set(d.line_id, { ...line, status: d.back_to === 'started' ? 'started' : 'fired' });
      } else {
        result.reread = true; // a line bumped before this screen opened: read the tickets again
      }
      break;
    }
    case 'OrderLineVoided':
      if (mine) model.lines.delete(d.line_id);
      break;
    case 'OrderCancelled':
    case 'OrderServed':
    case 'OrderCompleted':
      for (const [id, l] of model.lines) if (l.order_id === orderId) model.lines.delete(id);
      model.bumped = model.bumped.filter((b) => b.order_id !== orderId);
      model.orders.delete(orderId);
      break;
    case 'OrderRushed':
    case 'OrderRushCleared': {
      const rush = event.type === 'OrderRushed';
      const order = model.orders.get(orderId);
      if (order) order.rush = rush;
      for (const l of model.lines.values()) if (l.order_id === orderId) l.rush = rush;
      break;
    }
    default: break;
  }
  return result;
}

/** What the page read of an order fired before this screen knew it (table, rush). */
export function setOrderInfo(model, orderId, info) {
  model.orders.set(orderId, info);
  for (const l of model.lines.values()) {
    if (l.order_id === orderId) Object.assign(l, { service: info.service, table: info.table, rush: info.rush });
  }
}

/**
 * The station's tiles: one per order, its lines in fire order; rush orders
 * first, then by their first line's place in fire order. A tile's
 * `fired_at` is its oldest line's.
 */
export function ticketTiles(model) {
  const byOrder = new Map();
  const lines = [...model.lines.values()].sort((a, b) => a.seq - b.seq);
  for (const line of lines) {
    if (!byOrder.has(line.order_id)) {
      byOrder.set(line.order_id, {
        order_id: line.order_id, service: line.service, table: line.table, rush: line.rush,
        fired_at: line.fired_at, seq: line.seq, lines: [],
      });
    }
    const tile = byOrder.get(line.order_id);
    tile.lines.push(line);
    tile.rush = tile.rush || line.rush;
    if (line.fired_at < tile.fired_at) tile.fired_at = line.fired_at;
  }
  return [...byOrder.values()].sort((a, b) => (b.rush - a.rush) || (a.seq - b.seq));
}

/** `ok`, `warn` or `late`: how long a ticket has waited against its station's timers. */
export function timerLevel(elapsedSecs, timers) {
  if (timers && elapsedSecs >= timers.late_after_secs) return 'late';
  if (timers && elapsedSecs >= timers.warn_after_secs) return 'warn';
  return 'ok';
}

/** Elapsed seconds as "m:ss" (or "h:mm:ss"). */
export function formatElapsed(secs) {
  const s = Math.max(0, Math.floor(secs));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const rest = String(s % 60).padStart(2, '0');
  return h ? `${h}:${String(m).padStart(2, '0')}:${rest}` : `${m}:${rest}`;
}

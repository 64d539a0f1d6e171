// Unit tests of the order pages' state (app-orders-model.js): an order, the
// board and a station's tickets folded from REST reads and live events as
// docs/events.md shapes them, each event applied once.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import {
  foldBoard, foldOrder, foldTickets, formatElapsed, formatMoney, serviceLabel, setOrderInfo, ticketTiles,
  ticketsFromRead, timerLevel,
} from '../app-orders-model.js';

const ORDER = 'o-1';
const STORE = 's-1';
let version = 0;
const ev = (type, data, at = '2026-12-02T12:00:00.000000Z') => ({
  type, version: ++version, recorded_at: at, data: { order_id: ORDER, store_id: STORE, ...data },
  metadata: { store: STORE, entity_type: 'order', entity_id: ORDER },
});
const price = { amount_minor: 1250, currency: 'GBP' };
const added = (lineId, station = 'grill', quantity = 1) => ev('OrderLineAdded', {
  line_id: lineId, menu_item_id: `m-${lineId}`, name: `Dish ${lineId}`, unit_price: price, station, recipe: [], quantity, modifiers: [], note: null, course: 1,
});
const fired = (...lines) => ev('OrderFired', {
  course: null, lines: lines.map(([lineId, station]) => ({ line_id: lineId, menu_item_id: `m-${lineId}`, name: `Dish ${lineId}`, station, course: 1, quantity: 1, modifiers: [], note: null, stock: [] })),
});

describe('an order folded for the till', () => {
  it('follows a line from added to ready, and the order to ready, with its total', () => {
    let order = foldOrder(null, ev('OrderOpened', { service: { kind: 'dine_in', table: '12' }, covers: 2, currency: 'GBP', rush: false }), 1);
    order = foldOrder(order, added('a', 'grill', 2), 2);
    order = foldOrder(order, added('b', 'bar'), 3);
    assert.deepEqual(order.lines.map((l) => l.status), ['pending', 'pending']);
    assert.equal(order.total.amount_minor, 3750);
    order = foldOrder(order, fired(['a', 'grill'], ['b', 'bar']), 4);
    order = foldOrder(order, ev('OrderLineReady', { line_id: 'a', station: 'grill' }), 5);
    assert.deepEqual(order.lines.map((l) => l.status), ['ready', 'fired']);
    assert.equal(order.status, 'open');
    order = foldOrder(order, ev('OrderLineReady', { line_id: 'b', station: 'bar' }), 6);
    order = foldOrder(order, ev('OrderReady', {}), 7);
    assert.equal(order.status, 'ready');
  });

  it('skips an event at or below the position of the read it was built from', () => {
    const read = { order_id: ORDER, currency: 'GBP', status: 'open', rush: false, position: 10, lines: [{ line_id: 'a', unit_price: price, quantity: 1, status: 'fired' }] };
    const same = foldOrder(read, ev('OrderLineReady', { line_id: 'a', station: 'grill' }), 10);
    assert.equal(same, read);
    const next = foldOrder(read, ev('OrderLineReady', { line_id: 'a', station: 'grill' }), 11);
    assert.equal(next.lines[0].status, 'ready');
    assert.equal(read.lines[0].status, 'fired', 'the read is not changed in place');
  });

  it('a recall opens a ready order again and a void leaves the total', () => {
    let order = foldOrder(null, ev('OrderOpened', { service: { kind: 'takeaway' }, covers: 0, currency: 'GBP', rush: false }), 1);
    order = foldOrder(order, added('a'), 2);
    order = foldOrder(order, added('b'), 3);
    order = foldOrder(order, ev('OrderLineVoided', { line_id: 'b', station: 'grill', returned: [] }), 4);
    assert.equal(order.total.amount_minor, 1250);
    order = foldOrder(order, fired(['a', 'grill']), 5);
    order = foldOrder(order, ev('OrderLineReady', { line_id: 'a', station: 'grill' }), 6);
    order = foldOrder(order, ev('OrderReady', {}), 7);
    order = foldOrder(order, ev('OrderLineRecalled', { line_id: 'a', station: 'grill', back_to: 'fired' }), 8);
    assert.equal(order.status, 'open');
    assert.equal(order.lines[0].status, 'fired');
  });
});

describe('the order board', () => {
  it('counts fired and ready lines and drops completed and cancelled orders', () => {
    const board = new Map();
    foldBoard(board, ev('OrderOpened', { service: { kind: 'dine_in', table: '4' }, covers: 3, currency: 'GBP', rush: false }), 1);
    assert.equal(board.get(ORDER).table, '4');
    foldBoard(board, fired(['a', 'grill'], ['b', 'bar']), 2);
    foldBoard(board, ev('OrderLineReady', { line_id: 'a', station: 'grill' }), 3);
    assert.deepEqual([board.get(ORDER).status, board.get(ORDER).lines_fired, board.get(ORDER).lines_ready], ['fired', 2, 1]);
    foldBoard(board, ev('OrderLineReady', { line_id: 'a', station: 'grill' }), 3);
    assert.equal(board.get(ORDER).lines_ready, 1, 'an event at the same position is not applied twice');
    foldBoard(board, ev('OrderLineRecalled', { line_id: 'a', station: 'grill', back_to: 'fired' }), 4);
    assert.equal(board.get(ORDER).lines_ready, 0);
    foldBoard(board, ev('OrderCancelled', { reason: 'guest left', returned: [] }), 5);
    assert.equal(board.has(ORDER), false);
  });
});

describe('a station\'s tickets', () => {
  const read = [{
    order_id: 'old', line_id: 'x', service: 'dine_in', table: '7', menu_item_id: 'm', name: 'Soup', quantity: 1,
    modifiers: [], note: null, course: 1, rush: false, status: 'fired', fired_at: '2026-12-02T11:59:00.000000Z', started_at: null,
  }];

  it('adds only its own fired lines, with the table of the opened order, and counts them for the sound', () => {
    const model = ticketsFromRead('grill', read, 10);
    foldTickets(model, ev('OrderOpened', { service: { kind: 'dine_in', table: '12' }, covers: 2, currency: 'GBP', rush: false }), 11);
    const result = foldTickets(model, fired(['a', 'grill'], ['b', 'bar']), 12);
    assert.equal(result.fired, 1);
    assert.equal(result.unknownOrder, null);
    const tiles = ticketTiles(model);
    assert.deepEqual(tiles.map((t) => [t.order_id, t.table, t.lines.map((l) => l.line_id)]), [['old', '7', ['x']], [ORDER, '12', ['a']]]);
  });

  it('puts rush orders first, and a bump goes to the recall list and back on recall', () => {
    const model = ticketsFromRead('grill', read, 10);
    const result = foldTickets(model, fired(['a', 'grill']), 11);
    assert.equal(result.unknownOrder, ORDER, 'an order opened before the read is looked up');
    setOrderInfo(model, ORDER, { service: 'takeaway', table: null, rush: false });
    foldTickets(model, ev('OrderRushed', {}), 12);
    assert.deepEqual(ticketTiles(model).map((t) => t.order_id), [ORDER, 'old']);
    foldTickets(model, ev('OrderLineStarted', { line_id: 'a', station: 'grill' }), 13);
    foldTickets(model, ev('OrderLineReady', { line_id: 'a', station: 'grill' }), 14);
    assert.deepEqual(ticketTiles(model).map((t) => t.order_id), ['old']);
    assert.deepEqual(model.bumped.map((b) => b.line_id), ['a']);
    foldTickets(model, ev('OrderLineRecalled', { line_id: 'a', station: 'grill', back_to: 'started' }), 15);
    assert.equal(model.lines.get('a').status, 'started');
    assert.equal(model.bumped.length, 0);
    const unknown = foldTickets(model, ev('OrderLineRecalled', { line_id: 'zz', station: 'grill', back_to: 'fired' }), 16);
    assert.equal(unknown.reread, true);
  });

  it('ignores another station\'s line events and drops a cancelled order\'s tickets', () => {
    const model = ticketsFromRead('grill', read, 10);
    foldTickets({ ...model }, ev('OrderLineReady', { line_id: 'x', station: 'bar' }), 11);
    assert.equal(model.lines.has('x'), true);
    foldTickets(model, { ...ev('OrderCancelled', { reason: 'r', returned: [] }), data: { order_id: 'old', store_id: STORE, reason: 'r', returned: [] } }, 12);
    assert.equal(model.lines.size, 0);
  });
});

describe('labels and timers', () => {
  it('colours a ticket at the station\'s warn and late times', () => {
    const timers = { warn_after_secs: 300, late_after_secs: 600 };
    assert.equal(timerLevel(299, timers), 'ok');
    assert.equal(timerLevel(300, timers), 'warn');
    assert.equal(timerLevel(600, timers), 'late');
    assert.equal(timerLevel(5000, null), 'ok');
  });

  it('formats money, elapsed time and service', () => {
    assert.match(formatMoney(1250, 'GBP'), /12\.50/);
    assert.match(formatMoney(500, 'JPY'), /500/);
    assert.equal(formatElapsed(65), '1:05');
    assert.equal(formatElapsed(3725), '1:02:05');
    assert.equal(serviceLabel({ kind: 'dine_in', table: '12' }), 'Table 12');
    assert.equal(serviceLabel('takeaway', null), 'Takeaway');
  });
});

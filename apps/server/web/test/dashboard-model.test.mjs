// Unit tests of the dashboard page's charts (app-dashboard-model.js): the
// series drawn from a dashboard as docs/api.md shapes it, and the bars'
// geometry.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import {
  BUCKETS_PER_DAY, alertsSeries, bars, formatSecs, headline, isNewer, ordersSeries, stackedBars,
} from '../app-dashboard-model.js';

const dashboard = {
  store_id: 's-1',
  day_start: '2026-12-02T00:00:00.000000Z',
  day_end: '2026-12-03T00:00:00.000000Z',
  orders_opened: 7,
  orders_completed: 3,
  orders_cancelled: 1,
  revenue: [{ currency: 'EUR', orders: 3, total_minor: 3000, average_ticket_minor: 1000 }],
  open_orders: 3,
  stations: [{ station: 'grill', lines: 2, average_secs: 95.4 }],
  low_stock: 1,
  out_of_stock: 0,
  top_items: [],
  orders_per_5_minutes: [
    { start: '2026-12-02T00:00:00.000000Z', orders: 2 },
    { start: '2026-12-02T00:15:00.000000Z', orders: 5 },
  ],
  stock_alerts: [
    { start: '2026-12-02T00:05:00.000000Z', low: 1, out: 0, restocked: 0 },
    { start: '2026-12-02T00:55:00.000000Z', low: 0, out: 2, restocked: 1 },
    { start: '2026-12-02T13:00:00.000000Z', low: 1, out: 0, restocked: 0 },
  ],
  position: 42,
};

describe('the orders chart', () => {
  it('has a slot per 5 minutes up to now, zeros where nothing was opened', () => {
    const now = Date.parse('2026-12-02T00:21:00Z');
    assert.deepEqual(ordersSeries(dashboard, now), [2, 0, 0, 5, 0]);
  });

  it('covers the whole day once it is over, and never more', () => {
    const series = ordersSeries(dashboard, Date.parse('2026-12-05T00:00:00Z'));
    assert.equal(series.length, BUCKETS_PER_DAY);
    assert.equal(series.reduce((a, b) => a + b, 0), 7);
  });

  it('scales the tallest bar to the box and a zero to nothing', () => {
    const { max, bars: drawn } = bars([2, 0, 4], { width: 30, height: 100, gap: 0 });
    assert.equal(max, 4);
    assert.deepEqual(drawn.map((b) => [b.x, b.y, b.w, b.h]), [[0, 50, 10, 50], [10, 100, 10, 0], [20, 0, 10, 100]]);
  });

  it('draws an empty day flat, without dividing by zero', () => {
    const { max, bars: drawn } = bars([0, 0], { width: 10, height: 10 });
    assert.equal(max, 1);
    assert.ok(drawn.every((b) => b.h === 0 && Number.isFinite(b.y)));
  });
});

describe('the stock alerts chart', () => {
  it('adds the alerts up per hour of the day', () => {
    const series = alertsSeries(dashboard);
    assert.equal(series.length, 24);
    assert.deepEqual(series[0], { low: 1, out: 2, restocked: 1 });
    assert.deepEqual(series[13], { low: 1, out: 0, restocked: 0 });
    assert.deepEqual(series[1], { low: 0, out: 0, restocked: 0 });
  });

  it('stacks each hour\'s kinds bottom up, the fullest hour the box\'s height', () => {
    const { max, segments } = stackedBars(alertsSeries(dashboard), { width: 240, height: 40, gap: 0 });
    assert.equal(max, 4);
    const first = segments.filter((s) => s.x === 0);
    assert.deepEqual(first.map((s) => [s.kind, s.y, s.h]), [['out', 20, 20], ['low', 10, 10], ['restocked', 0, 10]]);
  });
});

describe('the figures', () => {
  it('reads the headline and says preparation times in words', () => {
    const figures = headline(dashboard);
    assert.equal(figures.ordersOpened, 7);
    assert.deepEqual(figures.revenue, [{ currency: 'EUR', total: 3000, average: 1000, orders: 3 }]);
    assert.equal(formatSecs(95.4), '1 min 35 s');
    assert.equal(formatSecs(42), '42 s');
    assert.equal(formatSecs(120), '2 min');
  });

  it('keeps the newest state: an older position never replaces a newer one', () => {
    assert.ok(isNewer(null, 3));
    assert.ok(isNewer(3, 3));
    assert.ok(!isNewer(4, 3));
  });
});

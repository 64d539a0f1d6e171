// The dashboard page's figures and charts as pure functions of a dashboard
// (GET /api/v1/stores/{id}/dashboard, a `dashboard:{store}` snapshot or
// `state` frame; docs/api.md shapes it): the series of its two charts and
// their bars' geometry, so the page only turns shapes into SVG.

/** A chart bucket: 5 minutes. */
export const BUCKET_MS = 5 * 60 * 1000;
/** 5-minute buckets in a day. */
export const BUCKETS_PER_DAY = 288;

/** The bucket index of an instant within the day starting at `dayStart` (ms). */
const bucketOf = (iso, dayStart) => Math.floor((Date.parse(iso) - dayStart) / BUCKET_MS);

/**
 * Orders opened per 5 minutes, from the day's start up to the bucket of
 * `now` (the whole day once it is over): zeros where the dashboard lists no
 * bucket.
 */
export function ordersSeries(dashboard, now = Date.now()) {
  const dayStart = Date.parse(dashboard.day_start);
  const upTo = Math.min(BUCKETS_PER_DAY, Math.max(1, Math.floor((now - dayStart) / BUCKET_MS) + 1));
  const series = new Array(upTo).fill(0);
  for (const bucket of dashboard.orders_per_5_minutes ?? []) {
    const i = bucketOf(bucket.start, dayStart);
    if (i >= 0 && i < BUCKETS_PER_DAY) {
      while (series.length <= i) series.push(0);
      series[i] = bucket.orders;
    }
  }
  return series;
}

/**
 * Stock alerts per hour of the day (24 slots of `{low, out, restocked}`):
 * alerts are rarer than orders, so an hour is the grain a glance reads.
 */
export function alertsSeries(dashboard) {
  const dayStart = Date.parse(dashboard.day_start);
  const series = Array.from({ length: 24 }, () => ({ low: 0, out: 0, restocked: 0 }));
  for (const bucket of dashboard.stock_alerts ?? []) {
    const hour = Math.floor(bucketOf(bucket.start, dayStart) / 12);
    if (hour < 0 || hour >= 24) continue;
    series[hour].low += bucket.low;
    series[hour].out += bucket.out;
    series[hour].restocked += bucket.restocked;
  }
  return series;
}

/**
 * Bars for `values` in a `width` × `height` box: each `{x, y, w, h, value}`,
 * the tallest bar the box's height, a zero a bar of height 0. `max` is the
 * scale's top (at least 1).
 */
export function bars(values, { width, height, gap = 1 }) {
  const max = Math.max(1, ...values);
  const step = values.length ? width / values.length : width;
  const w = Math.max(0.5, step - gap);
  return {
    max,
    bars: values.map((value, i) => {
      const barHeight = (value / max) * height;
      return { x: i * step, y: height - barHeight, w, h: barHeight, value };
    }),
  };
}

/** The kinds of a stacked alerts bar, bottom up. */
export const ALERT_KINDS = ['out', 'low', 'restocked'];

/** Stacked bars for the alerts series: each slot's segments `{kind, x, y, w, h}`, bottom up. */
export function stackedBars(series, { width, height, gap = 2 }) {
  const totals = series.map((s) => ALERT_KINDS.reduce((sum, kind) => sum + s[kind], 0));
  const max = Math.max(1, ...totals);
  const step = series.length ? width / series.length : width;
  const w = Math.max(0.5, step - gap);
  const segments = [];
  series.forEach((slot, i) => {
    let top = height;
    for (const kind of ALERT_KINDS) {
      if (!slot[kind]) continue;
      const h = (slot[kind] / max) * height;
      top -= h;
      segments.push({ kind, x: i * step, y: top, w, h, value: slot[kind] });
    }
  });
  return { max, segments };
}

/** A preparation time in words: "45 s", "3 min 20 s". */
export function formatSecs(secs) {
  if (!Number.isFinite(secs)) return '';
  const whole = Math.round(secs);
  if (whole < 60) return `${whole} s`;
  const s = whole % 60;
  return s ? `${Math.floor(whole / 60)} min ${s} s` : `${Math.floor(whole / 60)} min`;
}

/** The headline figures: orders, revenue and average ticket per currency, open orders, stock. */
export function headline(dashboard) {
  return {
    ordersOpened: dashboard.orders_opened ?? 0,
    ordersCompleted: dashboard.orders_completed ?? 0,
    ordersCancelled: dashboard.orders_cancelled ?? 0,
    openOrders: dashboard.open_orders ?? 0,
    lowStock: dashboard.low_stock ?? 0,
    outOfStock: dashboard.out_of_stock ?? 0,
    revenue: (dashboard.revenue ?? []).map((r) => ({
      currency: r.currency, total: r.total_minor, average: r.average_ticket_minor, orders: r.orders,
    })),
  };
}

/** Whether `next` (a state frame's or snapshot's position) should replace what the page shows at `shown`. */
export const isNewer = (shown, next) => shown == null || next >= shown;

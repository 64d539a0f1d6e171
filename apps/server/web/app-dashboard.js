// The dashboard: today's figures of a store (#/stores/{id}/dashboard) or of
// the whole tenant (#/dashboard): orders, revenue and average ticket, open
// orders, preparation time per station, stock alerts, top items, and two
// small charts drawn by hand in SVG (orders per 5 minutes today, stock
// alerts per hour). Read over REST first, then kept live by the
// `dashboard:{store}` (or `dashboard`) topic: a snapshot on every
// (re)subscribe, then the server's coalesced `state` frames (at most one
// per second). Over SSE, which carries no dashboards, it reads REST again
// every few seconds.

import { $, h } from './app-dom.js';
import { api, state } from './app-state.js';
import { isCurrent, setPage, storeNav } from './app-orders-api.js';
import { formatMoney } from './app-orders-model.js';
import {
  alertsSeries, bars, formatSecs, headline, isNewer, ordersSeries, stackedBars,
} from './app-dashboard-model.js';

const SVG = 'http://www.w3.org/2000/svg';
/** How often the page reads REST when the connection carries no dashboards (SSE) or is down. */
const FALLBACK_MS = 5000;
const CHART = { width: 576, height: 80 };

/** Creates an SVG element. */
function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === 'testid') el.dataset.testid = value;
    else if (value != null) el.setAttribute(key, String(value));
  }
  for (const child of children.flat()) if (child != null) el.append(child);
  return el;
}

export async function openDashboard(storeId) {
  const page = { kind: 'dashboard', storeId, data: null, sub: null, ticker: null };
  page.close = () => { page.sub?.unsubscribe(); clearInterval(page.ticker); };
  setPage(page);
  const store = storeId ? state.stores.get(storeId) : null;
  const title = storeId ? `Dashboard · ${store?.name ?? 'Store'}` : 'Dashboard · all stores';
  $('#view').replaceChildren(
    h('div', { className: 'store-head' }, h('h1', { testid: 'dashboard-title' }, title), storeId ? storeNav(storeId, 'dashboard') : null),
    h('div', { id: 'dashboard', className: 'dashboard', testid: 'dashboard', 'aria-live': 'polite' }, h('p', { className: 'muted' }, 'Loading…')));
  await reload(page);
  if (!isCurrent(page)) return;
  page.sub = state.client.subscribe(storeId ? `dashboard:${storeId}` : 'dashboard', {
    onSnapshot: (snapshot) => show(page, snapshot.data),
    onState: (data) => show(page, data),
  });
  page.ticker = setInterval(() => {
    if (state.client?.state !== 'connected' || state.client?.transport !== 'websocket') reload(page);
  }, FALLBACK_MS);
}

async function reload(page) {
  const path = page.storeId ? `/stores/${page.storeId}/dashboard` : '/dashboard';
  try {
    const data = await api(path);
    if (isCurrent(page)) show(page, data);
  } catch (error) {
    if (isCurrent(page) && !page.data) {
      $('#dashboard')?.replaceChildren(h('p', { className: 'error', testid: 'dashboard-error' }, `Could not load the dashboard: ${error.message}`));
    }
  }
}

function show(page, data) {
  if (!data || !isCurrent(page) || !isNewer(page.data?.position, data.position)) return;
  page.data = data;
  render(page);
}

const figure = (testid, label, value, extra) => h('div', { className: 'figure', testid },
  h('span', { className: 'figure-value', testid: `${testid}-value` }, String(value)),
  h('span', { className: 'figure-label' }, label),
  extra ? h('span', { className: 'muted' }, extra) : null);

function render(page) {
  const el = $('#dashboard');
  if (!el) return;
  const d = page.data;
  const top = headline(d);
  const revenue = top.revenue.length ? top.revenue : [{ currency: null, total: 0, average: 0, orders: 0 }];
  el.dataset.position = String(d.position);
  el.replaceChildren(
    h('div', { className: 'figures' },
      figure('dash-orders', 'orders today', top.ordersOpened, `${top.ordersCompleted} completed · ${top.ordersCancelled} cancelled`),
      ...revenue.map((r) => figure('dash-revenue', `revenue${r.currency ? ` (${r.currency})` : ''}`,
        r.currency ? formatMoney(r.total, r.currency) : '0',
        `average ticket ${r.currency ? formatMoney(r.average, r.currency) : '0'}`)),
      figure('dash-open', 'open orders', top.openOrders),
      figure('dash-low', 'low stock', top.lowStock),
      figure('dash-out', 'out of stock', top.outOfStock)),
    h('div', { className: 'charts' },
      h('figure', { className: 'chart' }, h('figcaption', {}, 'Orders per 5 minutes today'), ordersChart(d)),
      h('figure', { className: 'chart' }, h('figcaption', {}, 'Stock alerts per hour today'), alertsChart(d))),
    h('div', { className: 'tables' },
      h('section', {}, h('h2', {}, 'Preparation time'),
        d.stations.length
          ? h('table', { testid: 'dash-stations' }, h('tbody', {}, d.stations.map((st) => h('tr', {},
            h('th', {}, st.station), h('td', {}, formatSecs(st.average_secs)), h('td', { className: 'muted' }, `${st.lines} lines`)))))
          : h('p', { className: 'muted' }, 'Nothing made ready today.')),
      h('section', {}, h('h2', {}, 'Top items'),
        d.top_items.length
          ? h('ol', { testid: 'dash-top' }, d.top_items.map((t) => h('li', {}, `${t.name} `, h('span', { className: 'muted' }, `× ${t.quantity}`))))
          : h('p', { className: 'muted' }, 'Nothing fired today.'))));
}

function ordersChart(d) {
  const series = ordersSeries(d);
  const { max, bars: drawn } = bars(series, CHART);
  return s('svg', { viewBox: `0 0 ${CHART.width} ${CHART.height}`, class: 'chart-svg', role: 'img', testid: 'dash-orders-chart',
    'aria-label': `Orders per 5 minutes, at most ${max}` },
  s('line', { x1: 0, y1: CHART.height, x2: CHART.width, y2: CHART.height, class: 'axis' }),
  drawn.filter((b) => b.value > 0).map((b) => s('rect', { x: b.x, y: b.y, width: b.w, height: b.h, class: 'bar' },
    s('title', {}, `${b.value} orders`))));
}

function alertsChart(d) {
  const { max, segments } = stackedBars(alertsSeries(d), CHART);
  return s('svg', { viewBox: `0 0 ${CHART.width} ${CHART.height}`, class: 'chart-svg', role: 'img', testid: 'dash-alerts-chart',
    'aria-label': `Stock alerts per hour, at most ${max}` },
  s('line', { x1: 0, y1: CHART.height, x2: CHART.width, y2: CHART.height, class: 'axis' }),
  segments.map((seg) => s('rect', { x: seg.x, y: seg.y, width: seg.w, height: seg.h, class: `bar alert-${seg.kind}` },
    s('title', {}, `${seg.value} ${seg.kind}`))));
}

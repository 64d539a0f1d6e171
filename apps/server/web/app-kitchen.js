// The kitchen display: a station's tickets as large tiles (one per order,
// rush orders first, then in fire order), each with a timer that turns amber
// and red at the warn / late times the store set for the station. Bump a
// tile (every line ready) or one line by tap, or by keyboard: 1-9 bump that
// tile, Enter bumps the focused one, R recalls the last bump. Recent bumps
// can be recalled. An optional sound plays when a new ticket arrives.
//
// The tickets are read over REST, then kept live by the
// `station:{store}:{station}` topic from the read's position. Without a
// station in the address, the page lists the store's stations to pick from.

import { $, h } from './app-dom.js';
import { debug, state, track } from './app-state.js';
import { attempt, isCurrent, lineAction, readMenu, readOrder, readTickets, setPage, storeNav } from './app-orders-api.js';
import {
  foldTickets, formatElapsed, serviceLabel, setOrderInfo, ticketTiles, ticketsFromRead, timerLevel,
} from './app-orders-model.js';

const SOUND_KEY = 'larder.kitchen.sound';
const TICK_MS = 1000;
const LEVEL_LABEL = { ok: 'on time', warn: 'running late', late: 'late' };

export async function openKitchen(storeId, station) {
  const page = { kind: 'kitchen', storeId, station, sub: null, ticker: null, keys: null, audio: null };
  page.close = () => {
    page.sub?.unsubscribe();
    clearInterval(page.ticker);
    if (page.keys) document.removeEventListener('keydown', page.keys);
    page.audio?.close?.().catch(() => {});
  };
  setPage(page);
  $('#view').replaceChildren(h('p', { className: 'muted' }, 'Loading the kitchen…'));
  let menu;
  try {
    menu = await readMenu(storeId);
  } catch (error) {
    if (isCurrent(page)) $('#view').replaceChildren(h('p', { className: 'error', testid: 'kitchen-error' }, `Could not load the menu: ${error.message}`));
    return;
  }
  if (!isCurrent(page)) return;
  page.stations = menu.stations;
  if (!station) { renderStationPicker(page); return; }
  page.timers = menu.stations.find((s) => s.key === station) ?? null;
  page.onTenantEvent = (event) => {
    if (event.type !== 'StationSet' || event.data?.station !== station) return;
    page.timers = { ...page.timers, name: event.data.name, ...event.data.timers };
    renderHead(page);
    tick(page);
  };
  let read;
  try {
    read = await readTickets(storeId, station);
  } catch (error) {
    if (isCurrent(page)) $('#view').replaceChildren(h('p', { className: 'error', testid: 'kitchen-error' }, `Could not load the tickets: ${error.message}`));
    return;
  }
  if (!isCurrent(page)) return;
  page.model = ticketsFromRead(station, read.tickets, read.position);
  renderKitchen(page);
  page.ticker = setInterval(() => tick(page), TICK_MS);
  page.keys = (e) => onKey(page, e);
  document.addEventListener('keydown', page.keys);
  page.sub = state.client.subscribe(`station:${storeId}:${station}`, {
    since: read.position,
    onEvent: (event, frame) => { track(frame); onStationEvent(page, event, frame.position); },
    onReset: () => reloadTickets(page),
  });
}

async function reloadTickets(page) {
  try {
    const read = await readTickets(page.storeId, page.station);
    if (!isCurrent(page)) return;
    const bumped = page.model?.bumped ?? [];
    page.model = ticketsFromRead(page.station, read.tickets, read.position);
    page.model.bumped = bumped.filter((b) => !page.model.lines.has(b.line_id));
    page.sub?.setPosition(read.position);
    renderTiles(page);
  } catch { /* the next reconnect tries again */ }
}

function onStationEvent(page, event, position) {
  const result = foldTickets(page.model, event, position);
  if (result.unknownOrder) {
    const orderId = result.unknownOrder;
    readOrder(orderId).then((order) => {
      if (!isCurrent(page)) return;
      setOrderInfo(page.model, orderId, { service: order.service.kind, table: order.service.table ?? null, rush: order.rush });
      renderTiles(page);
    }).catch(() => {});
  }
  if (result.reread) reloadTickets(page);
  if (result.fired > 0) beep(page);
  renderTiles(page);
}

// ---- rendering -----------------------------------------------------------------------

function renderStationPicker(page) {
  const store = state.stores.get(page.storeId);
  $('#view').replaceChildren(
    h('div', { className: 'store-head' }, h('h1', {}, `Kitchen · ${store?.name ?? 'Store'}`), storeNav(page.storeId, 'kitchen')),
    page.stations.length
      ? h('div', { className: 'station-picker', testid: 'station-picker' },
        h('p', {}, 'Which station is this screen?'),
        page.stations.map((s) => h('a', { className: 'station-link', href: `#/stores/${page.storeId}/kitchen/${encodeURIComponent(s.key)}`, testid: 'station-link', dataset: { station: s.key } }, s.name)))
      : h('p', { className: 'muted', testid: 'station-none' }, 'This store has no kitchen stations yet: a manager sets them on the menu.'));
}

function renderKitchen(page) {
  $('#view').replaceChildren(
    h('div', { className: 'store-head kitchen-head', id: 'kitchen-head' }),
    h('div', { className: 'kitchen-tiles', id: 'kitchen-tiles', testid: 'kitchen-tiles', 'aria-live': 'polite' }),
    h('section', { className: 'kitchen-recall', 'aria-label': 'Recently bumped' },
      h('h2', {}, 'Bumped'),
      h('ol', { id: 'kitchen-recall', className: 'recall-list', testid: 'kitchen-recall' })),
    h('p', { className: 'muted kitchen-help' }, 'Tap a tile\'s Bump (or a line) when it is ready. Keys: 1–9 bump that ticket, Enter bumps the focused one, R recalls the last bump.'));
  renderHead(page);
  renderTiles(page);
}

function renderHead(page) {
  const head = $('#kitchen-head');
  if (!head) return;
  const others = page.stations.filter((s) => s.key !== page.station);
  const sound = h('input', { type: 'checkbox', testid: 'kitchen-sound', checked: soundOn(), onchange: (e) => setSound(page, e.currentTarget.checked) });
  // replaceChildren, unlike h, would write a null as the text "null".
  head.replaceChildren(...[
    h('h1', { testid: 'kitchen-title' }, `Kitchen · ${page.timers?.name ?? page.station}`),
    page.timers ? h('span', { className: 'muted', testid: 'kitchen-timers' }, `amber at ${formatElapsed(page.timers.warn_after_secs)}, red at ${formatElapsed(page.timers.late_after_secs)}`) : null,
    h('label', { className: 'sound-toggle' }, sound, ' Sound on new tickets'),
    others.length ? h('nav', { className: 'station-switch', 'aria-label': 'Other stations' },
      others.map((s) => h('a', { href: `#/stores/${page.storeId}/kitchen/${encodeURIComponent(s.key)}` }, s.name))) : null,
    storeNav(page.storeId, 'kitchen')].filter(Boolean));
}

function elapsedSecs(firedAt) {
  const at = Date.parse(firedAt);
  return Number.isNaN(at) ? 0 : (Date.now() - at) / 1000;
}

function renderTiles(page) {
  const grid = $('#kitchen-tiles');
  if (!grid || !page.model) return;
  const focused = document.activeElement?.closest?.('[data-testid="ticket"]')?.dataset.orderId;
  const tiles = ticketTiles(page.model);
  grid.replaceChildren(...tiles.map((tile, i) => {
    const secs = elapsedSecs(tile.fired_at);
    const level = timerLevel(secs, page.timers);
    return h('article', {
      className: `ticket ${level}${tile.rush ? ' rush' : ''}`, testid: 'ticket', tabindex: 0,
      dataset: { orderId: tile.order_id, level, rush: String(tile.rush), firedAt: tile.fired_at, key: i < 9 ? String(i + 1) : '' },
      'aria-label': `${serviceLabel(tile.service, tile.table)}, ${tile.lines.length} lines`,
    },
    h('header', { className: 'ticket-head' },
      i < 9 ? h('kbd', { className: 'ticket-key' }, String(i + 1)) : null,
      h('strong', { className: 'ticket-label', testid: 'ticket-label' }, serviceLabel(tile.service, tile.table)),
      tile.rush ? h('span', { className: 'badge rush' }, 'Rush') : null,
      h('span', { className: 'ticket-timer', testid: 'ticket-timer', title: LEVEL_LABEL[level] }, formatElapsed(secs))),
    h('ul', { className: 'ticket-lines' }, tile.lines.map((line) => h('li', {},
      h('button', {
        type: 'button', className: `ticket-line ${line.status}`, testid: 'ticket-line',
        dataset: { lineId: line.line_id, status: line.status }, onclick: () => bumpLines(page, [line]),
        'aria-label': `Bump ${line.quantity} ${line.name}`,
      },
      h('span', { className: 'line-qty' }, `${line.quantity}×`),
      h('span', { className: 'line-name' }, line.name),
      line.modifiers.length ? h('span', { className: 'line-mods' }, line.modifiers.join(', ')) : null,
      line.note ? h('span', { className: 'line-note' }, line.note) : null,
      line.status === 'started' ? h('span', { className: 'badge' }, 'cooking') : null),
      line.status === 'fired'
        ? h('button', { type: 'button', className: 'line-start', testid: 'ticket-start', onclick: () => attempt('start the line', () => lineAction(line.order_id, line.line_id, 'start')) }, 'Start')
        : null))),
    h('button', { type: 'button', className: 'ticket-bump primary', testid: 'ticket-bump', onclick: () => bumpLines(page, tile.lines) }, 'Bump'));
  }));
  if (tiles.length === 0) grid.append(h('p', { className: 'muted kitchen-empty', testid: 'kitchen-empty' }, 'No tickets. New ones appear here as the till fires them.'));
  if (focused) grid.querySelector(`[data-order-id="${CSS.escape(focused)}"]`)?.focus();
  renderRecall(page);
}

function renderRecall(page) {
  const list = $('#kitchen-recall');
  if (!list) return;
  const bumped = [...page.model.bumped].reverse();
  list.replaceChildren(...bumped.map((b) => h('li', {},
    h('button', { type: 'button', className: 'recall', testid: 'recall-line', dataset: { lineId: b.line_id, orderId: b.order_id }, onclick: () => recall(page, b) },
      `↶ ${serviceLabel(b.service, b.table)} · ${b.quantity}× ${b.name}`))));
  if (bumped.length === 0) list.append(h('li', { className: 'muted' }, 'Nothing bumped yet.'));
}

/** Every second: timers and colours, without rebuilding the tiles (a tap in progress keeps its target). */
function tick(page) {
  for (const el of document.querySelectorAll('#kitchen-tiles [data-testid="ticket"]')) {
    const secs = elapsedSecs(el.dataset.firedAt);
    const level = timerLevel(secs, page.timers);
    const timer = el.querySelector('[data-testid="ticket-timer"]');
    if (timer) { timer.textContent = formatElapsed(secs); timer.title = LEVEL_LABEL[level]; }
    if (el.dataset.level !== level) {
      el.classList.remove('ok', 'warn', 'late');
      el.classList.add(level);
      el.dataset.level = level;
    }
  }
}

// ---- actions ---------------------------------------------------------------------------

/** Marks lines ready, one command each; a bumped line leaves the screen at once and can be recalled. */
async function bumpLines(page, lines) {
  for (const line of lines) {
    const answer = await attempt(`bump ${line.name}`, () => lineAction(line.order_id, line.line_id, 'ready'));
    if (!answer || !isCurrent(page)) continue;
    if (page.model.lines.delete(line.line_id)) {
      page.model.bumped = page.model.bumped.filter((b) => b.line_id !== line.line_id).concat([{ ...line, ready_at: new Date().toISOString() }]);
    }
    renderTiles(page);
  }
}

async function recall(page, bumped) {
  const answer = await attempt(`recall ${bumped.name}`, () => lineAction(bumped.order_id, bumped.line_id, 'recall'));
  if (!answer || !isCurrent(page)) return;
  // The live OrderLineRecalled puts it back with its status; without the
  // connection, read the tickets again.
  if (state.client?.state !== 'connected') reloadTickets(page);
}

function onKey(page, e) {
  if (e.defaultPrevented || e.altKey || e.ctrlKey || e.metaKey) return;
  if (e.target instanceof HTMLInputElement || e.target instanceof HTMLTextAreaElement || e.target instanceof HTMLSelectElement) return;
  const tiles = ticketTiles(page.model);
  if (/^[1-9]$/.test(e.key)) {
    const tile = tiles[Number(e.key) - 1];
    if (tile) { e.preventDefault(); bumpLines(page, tile.lines); }
  } else if (e.key === 'Enter' && e.target?.dataset?.testid === 'ticket') {
    const tile = tiles.find((t) => t.order_id === e.target.dataset.orderId);
    if (tile) { e.preventDefault(); bumpLines(page, tile.lines); }
  } else if (e.key === 'r' || e.key === 'R') {
    const last = page.model.bumped[page.model.bumped.length - 1];
    if (last) { e.preventDefault(); recall(page, last); }
  }
}

// ---- sound ---------------------------------------------------------------------------

function soundOn() {
  try { return localStorage.getItem(SOUND_KEY) === 'on'; } catch { return false; }
}

function setSound(page, on) {
  try { localStorage.setItem(SOUND_KEY, on ? 'on' : 'off'); } catch { /* kept for this page only */ }
  // Browsers let a page play sound only after a gesture: this tap is one.
  if (on) beep(page, true);
}

/** A short two-tone chime (Web Audio: no sound file to serve). */
function beep(page, force = false) {
  if (!force && !soundOn()) return;
  try {
    page.audio ??= new AudioContext();
    const ctx = page.audio;
    const now = ctx.currentTime;
    [880, 1320].forEach((freq, i) => {
      const osc = ctx.createOscillator();
      const gain = ctx.createGain();
      osc.frequency.value = freq;
      gain.gain.setValueAtTime(0.0001, now + i * 0.15);
      gain.gain.exponentialRampToValueAtTime(0.3, now + i * 0.15 + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, now + i * 0.15 + 0.14);
      osc.connect(gain).connect(ctx.destination);
      osc.start(now + i * 0.15);
      osc.stop(now + i * 0.15 + 0.15);
    });
    debug.chimes = (debug.chimes ?? 0) + 1;
  } catch (error) {
    console.warn('larder: could not play the new-ticket sound', error);
  }
}

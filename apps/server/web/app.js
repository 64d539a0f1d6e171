// Larder's web app: sign-in (demo tokens), the store list, a store's live
// inventory, item details with conflict handling, activity, presence and
// alert toasts. Plain DOM, no framework, no build step. Every change goes
// through the REST API; the live connection only tells the page what changed,
// so the page keeps working (and catches up) when the connection is down.
//
// This file is the entry point (index.html loads it): the page's layout,
// routing, sign-in and sign-out. The rest is split by job:
// - app-dom.js: DOM helpers, toasts, labels;
// - app-state.js: the session, the page's state, REST calls;
// - app-connection.js: the live connection, its status, alert toasts;
// - app-stores.js: the store list;
// - app-store.js: a store's view (inventory, presence, live events);
// - app-activity.js: the activity feed, undo and redo;
// - app-queue.js: the list of queued changes (the offline queue);
// - app-bell.js: the notification bell (unread count, list, preferences);
// - app-detail.js: an item's detail and its conflict handling;
// - app-dashboard.js: a store's or the tenant's dashboard, its charts
//   drawn from app-dashboard-model.js;
// - app-till.js, app-kitchen.js, app-board.js: a store's till, kitchen
//   display and order board, on app-orders-api.js (their REST calls and
//   the open page's life cycle) and app-orders-model.js (their state as
//   pure functions of reads and events).
// The views call one another, so some modules import each other; none runs
// code of another while it loads, so the order they load in does not matter.

import { $, h, toast } from './app-dom.js';
import { api, mintToken, saveSession, session, state } from './app-state.js';
import { renderConnection, startClient, subscribeTenant } from './app-connection.js';
import { loadStores, renderStoreList } from './app-stores.js';
import { closeStore, openStore } from './app-store.js';
import { renderQueue, toggleQueue } from './app-queue.js';
import { closePage } from './app-orders-api.js';
import { openTill } from './app-till.js';
import { openKitchen } from './app-kitchen.js';
import { openBoard } from './app-board.js';
import { openDashboard } from './app-dashboard.js';
import { startBell, stopBell, toggleBell } from './app-bell.js';

/** The order pages of a store: #/stores/{id}/till, #/stores/{id}/kitchen[/{station}], #/stores/{id}/board, #/stores/{id}/dashboard. */
const ORDER_PAGES = {
  till: (storeId) => openTill(storeId),
  kitchen: (storeId, station) => openKitchen(storeId, station),
  board: (storeId) => openBoard(storeId),
  dashboard: (storeId) => openDashboard(storeId),
};

// ---- layout and routing ----------------------------------------------------------------

function renderShell() {
  $('#whoami').textContent = `${session.sub} · ${session.role} · ${session.tenant}`;
  $('#signout').hidden = false;
  const createStore = session.role === 'admin'
    ? h('form', { className: 'inline', testid: 'create-store', onsubmit: onCreateStore },
      h('input', { name: 'name', placeholder: 'New store name', required: true, maxlength: 100, testid: 'create-store-name', 'aria-label': 'New store name' }),
      h('button', { type: 'submit', testid: 'create-store-submit' }, 'Add store'))
    : null;
  $('#app').replaceChildren(
    h('div', { className: 'layout' },
      h('aside', { className: 'sidebar' },
        h('h2', {}, 'Stores'),
        h('ul', { id: 'store-list', className: 'store-list', testid: 'store-list' }),
        h('a', { href: '#/dashboard', testid: 'nav-tenant-dashboard' }, 'Dashboard of all stores'),
        createStore),
      h('section', { id: 'view', className: 'view' })));
}

async function onCreateStore(e) {
  e.preventDefault();
  const form = e.currentTarget;
  const name = form.elements.name.value.trim();
  try {
    const res = await api('/stores', { method: 'POST', body: { name } });
    form.reset();
    await loadStores(res.position);
    location.hash = `#/stores/${res.id}`;
  } catch (error) {
    toast('error', `Could not create the store: ${error.message}`);
  }
}

function route() {
  if (!session) return;
  const parts = location.hash.replace(/^#\/?/, '').split('/').filter(Boolean);
  if (parts[0] === 'stores' && parts[1] && ORDER_PAGES[parts[2]]) {
    closeStore();
    renderStoreList();
    ORDER_PAGES[parts[2]](decodeURIComponent(parts[1]), parts[3] ? decodeURIComponent(parts[3]) : null);
  } else if (parts[0] === 'dashboard') {
    closeStore();
    renderStoreList();
    openDashboard(null);
  } else if (parts[0] === 'stores' && parts[1]) {
    closePage();
    openStore(decodeURIComponent(parts[1]), parts[2] === 'items' && parts[3] ? decodeURIComponent(parts[3]) : null);
  } else {
    closePage();
    closeStore();
    $('#view').replaceChildren(h('div', { className: 'empty', testid: 'home' },
      h('p', {}, state.stores.size ? 'Pick a store.' : 'No stores yet.')));
    renderStoreList();
  }
}

// ---- sign-in -------------------------------------------------------------------------------

function renderSignIn(message) {
  $('#whoami').textContent = '';
  $('#signout').hidden = true;
  const form = h('form', { className: 'card signin', testid: 'signin', onsubmit: onSignIn },
    h('h1', {}, 'Sign in (demo)'),
    h('p', { className: 'muted' }, 'Demo mode: pick a tenant, a user and a role; the server mints a token.'),
    h('label', {}, 'Tenant', h('input', { name: 'tenant', required: true, value: 'acme', pattern: '[a-z0-9_\\-]{1,64}', testid: 'signin-tenant' })),
    h('label', {}, 'User', h('input', { name: 'sub', required: true, value: 'alice', testid: 'signin-user' })),
    h('label', {}, 'Role', h('select', { name: 'role', testid: 'signin-role' },
      ['viewer', 'staff', 'manager', 'admin'].map((r) => h('option', { value: r, selected: r === 'manager' }, r)))),
    h('button', { type: 'submit', testid: 'signin-submit' }, 'Sign in'),
    h('p', { className: 'error', testid: 'signin-error' }, message ?? ''));
  $('#app').replaceChildren(form);
}

async function onSignIn(e) {
  e.preventDefault();
  const f = e.currentTarget.elements;
  const who = { tenant: f.tenant.value.trim(), sub: f.sub.value.trim(), role: f.role.value };
  try {
    const minted = await mintToken(who);
    saveSession({ ...who, token: minted.token, expires_at: minted.expires_at });
    await start();
  } catch (err) {
    renderSignIn(err.status === 404 ? 'This server is not in demo mode: sign in through your identity provider.' : err.message);
  }
}

function signOut() {
  closePage();
  stopBell();
  state.client?.close();
  state.client = null;
  state.store = null;
  state.detail = null;
  state.tenantSub = null;
  saveSession(null);
  renderConnection();
  renderQueue();
  $('#latency').textContent = '';
  location.hash = '';
  renderSignIn();
}

async function start() {
  renderShell();
  startClient();
  try {
    await loadStores();
  } catch (err) {
    if (err.status === 401) { signOut(); renderSignIn('Your session ended: sign in again.'); return; }
    toast('error', `Could not load stores: ${err.message}`);
  }
  subscribeTenant();
  startBell();
  route();
}

window.addEventListener('hashchange', route);
window.addEventListener('DOMContentLoaded', () => {
  $('#signout').addEventListener('click', signOut);
  $('#queue').addEventListener('click', toggleQueue);
  $('#bell').addEventListener('click', toggleBell);
  if (session?.token) start();
  else renderSignIn();
});

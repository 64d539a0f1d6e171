// The web app's live connection: the LarderClient started at sign-in, the
// tenant subscription behind the store list and the alert toasts, and the
// connection status and latency in the top bar.

import { AlertTypes, LarderClient } from './larder-client.js';
import { $, toast } from './app-dom.js';
import { debug, refreshToken, session, state, track } from './app-state.js';
import { loadStores, scheduleStoresRefetch } from './app-stores.js';
import { renderPresence } from './app-store.js';
import { onCommandChange, renderQueue } from './app-queue.js';
import { onTenantEvent } from './app-orders-api.js';

export function startClient() {
  const client = new LarderClient({
    url: location.origin,
    token: () => session.token,
    refreshToken,
    // The offline queue is kept per tenant and user: it survives a reload
    // and a sign-out, and is sent when the same user is back.
    queueKey: `${session.tenant}/${session.sub}`,
  });
  state.client = client;
  debug.client = client;
  client.on('command', onCommandChange);
  client.commands.clearDone(); // outcomes of an earlier page were shown there
  renderQueue();
  client.on('state', (s) => {
    debug.states.push(s.state);
    renderConnection();
  });
  client.on('latency', renderLatency);
  client.on('presence_changed', (m) => {
    if (state.store && m.store === state.store.id) {
      if (m.state === 'joined') state.store.presence.add(m.user);
      else state.store.presence.delete(m.user);
      renderPresence();
    }
  });
  client.on('error', (e) => {
    if (e.code === 'handler_error') console.warn('larder: a live update failed', e.error);
  });
  client.connect();
}

export function subscribeTenant() {
  state.tenantSub?.unsubscribe();
  state.tenantSub = state.client.subscribe('tenant', {
    since: state.storesPosition,
    onEvent: (event, frame) => {
      track(frame);
      if (AlertTypes.includes(event.type)) toastAlert(event);
      scheduleStoresRefetch(frame.position);
      onTenantEvent(event, frame.position);
    },
    onReset: () => loadStores(),
  });
}

let connTicker = null;

export function renderConnection() {
  const el = $('#conn');
  const client = state.client;
  if (!el) return;
  clearInterval(connTicker);
  connTicker = null;
  const s = client ? client.state : 'idle';
  el.dataset.state = s;
  el.dataset.transport = client?.transport ?? '';
  const info = client?.stateInfo ?? {};
  const text = () => {
    switch (s) {
      case 'connected': return client.transport === 'sse' ? 'Live (event stream)' : 'Live';
      case 'connecting': return 'Connecting…';
      case 'reconnecting': {
        if (!info.nextRetryAt) return 'Reconnecting…';
        const secs = Math.max(0, Math.ceil((info.nextRetryAt - Date.now()) / 1000));
        return secs > 0 ? `Reconnecting in ${secs} s` : 'Reconnecting…';
      }
      case 'offline': return 'Offline';
      case 'unauthorized': return 'Not authorised: sign in again';
      default: return 'Not connected';
    }
  };
  el.textContent = text();
  if (s === 'reconnecting' && info.nextRetryAt) connTicker = setInterval(() => { el.textContent = text(); }, 250);
}

function renderLatency() {
  const el = $('#latency');
  const c = state.client;
  if (!el || !c) return;
  const parts = [];
  if (c.latencyMs != null) parts.push(`last event ${c.latencyMs} ms`);
  if (c.rttMs != null) parts.push(`ping ${c.rttMs} ms`);
  el.textContent = parts.join(' · ');
  el.dataset.latency = c.latencyMs ?? '';
}

function toastAlert(event) {
  const d = event.data ?? {};
  const storeName = state.stores.get(event.metadata?.store)?.name ?? 'a store';
  const item = state.store?.items.get(d.item_id);
  const label = item ? `${item.name} (${d.sku})` : d.sku;
  const text = {
    LowStock: `${label} is low at ${storeName}: ${d.quantity} left (threshold ${d.threshold})`,
    OutOfStock: `${label} is out of stock at ${storeName}`,
    Restocked: `${label} is back in stock at ${storeName}: ${d.quantity}`,
  }[event.type];
  toast(event.type, text);
}

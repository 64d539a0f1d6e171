// The web app's queued commands. Every change goes out with one
// Idempotency-Key, kept across retries, so a retry after a lost answer is
// never applied twice (`api` in app-state.js sends the other changes at once
// through `client.command`). Quick adjustments go through the client's
// offline queue (pending until the server answers, kept across reloads); the
// list in the top bar shows each as pending, done or refused, with retry and
// dismiss.

import { $, h, toast } from './app-dom.js';
import { state } from './app-state.js';
import { scheduleStoresRefetch } from './app-stores.js';
import { applyItem, fetchItem } from './app-store.js';

const DONE_SHOW_MS = 20000;
const REFUSALS = {
  insufficient_stock: 'not enough stock',
  item_removed: 'the item was removed',
  store_closed: 'the store is closed',
  version_conflict: 'it changed meanwhile',
  forbidden: 'your role may not do this',
  not_found: 'it no longer exists',
  idempotency_key_reused: 'the key was used for another change',
};

/** Queues a command; a full queue is said in a toast. */
export function queueCommand(path, { body, label, meta }) {
  try {
    const entry = state.client.enqueue(path, { body, label, meta });
    if (!state.client.commands.get(entry.id)?.sending && state.client.state !== 'connected') state.queueOpen = true;
    renderQueue();
    return entry;
  } catch (err) {
    toast('error', err.code === 'queue_full' ? 'Too many changes wait for the connection: dismiss some or wait.' : `Could not queue: ${err.message}`);
    return null;
  }
}

function refusalText(error) {
  return REFUSALS[error?.code] ?? error?.message ?? 'refused';
}

export function onCommandChange({ entry, change }) {
  if (change === 'done') {
    const position = entry.result?.body?.position;
    if (position) scheduleStoresRefetch(position);
    const { itemId, storeId } = entry.meta ?? {};
    if (itemId && state.store?.id === storeId) fetchItem(itemId, position).then((item) => applyItem(item)).catch(() => {});
    setTimeout(() => { state.client?.commands.dismiss(entry.id); }, DONE_SHOW_MS);
  }
  if (change === 'conflicted') {
    state.queueOpen = true;
    toast('error', `${entry.label ?? 'A change'} was refused: ${refusalText(entry.error)}.`);
  }
  renderQueue();
}

export function renderQueue() {
  const badge = $('#queue');
  const panel = $('#queue-panel');
  const commands = state.client?.commands;
  if (!badge || !panel) return;
  const entries = commands ? commands.list() : [];
  const counts = commands ? commands.counts() : { pending: 0, done: 0, conflicted: 0 };
  badge.hidden = entries.length === 0;
  badge.dataset.pending = counts.pending;
  badge.dataset.conflicted = counts.conflicted;
  badge.dataset.done = counts.done;
  const parts = [];
  if (counts.pending) parts.push(`${counts.pending} pending`);
  if (counts.conflicted) parts.push(`${counts.conflicted} refused`);
  if (!parts.length && counts.done) parts.push(`${counts.done} saved`);
  badge.textContent = parts.join(' · ');
  badge.setAttribute('aria-expanded', String(!!state.queueOpen));
  panel.hidden = !state.queueOpen || entries.length === 0;
  const stateText = (e) => {
    if (e.state === 'done') return e.result?.replayed ? 'Done (confirmed on retry)' : 'Done';
    if (e.state === 'conflicted') return `Refused: ${refusalText(e.error)}`;
    if (e.sending) return 'Sending…';
    return e.error ? 'Pending: will retry' : 'Pending: waits for the connection';
  };
  panel.replaceChildren(
    h('div', { className: 'queue-head' },
      h('strong', {}, 'Your changes'),
      h('span', { className: 'spacer' }),
      counts.done ? h('button', { type: 'button', className: 'link', testid: 'queue-clear-done', onclick: () => commands.clearDone() }, 'Clear done') : null,
      h('button', { type: 'button', className: 'link', testid: 'queue-close', onclick: () => { state.queueOpen = false; renderQueue(); } }, 'Hide')),
    h('ol', { className: 'queue-list' }, [...entries].reverse().map((e) => h('li', {
      className: `queued ${e.state}`, testid: 'queued-command',
      dataset: { state: e.state, key: e.key, sending: String(!!e.sending), replayed: String(!!e.result?.replayed), code: e.error?.code ?? '' },
    },
    h('span', { className: 'queued-label', testid: 'queued-label' }, e.label ?? `${e.method} ${e.path}`),
    h('span', { className: `queued-state ${e.state}`, testid: 'queued-state' }, stateText(e)),
    e.state === 'conflicted' ? h('button', { type: 'button', testid: 'queued-retry', onclick: () => commands.retry(e.id) }, 'Retry') : null,
    e.state !== 'pending' || !e.sending
      ? h('button', { type: 'button', testid: 'queued-dismiss', onclick: () => commands.dismiss(e.id) }, e.state === 'pending' ? 'Cancel' : 'Dismiss')
      : null))));
}

export function toggleQueue() {
  state.queueOpen = !state.queueOpen;
  renderQueue();
}

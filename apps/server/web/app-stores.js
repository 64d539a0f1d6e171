// The web app's store list in the sidebar: read over REST, refetched
// (coalesced) when live events change its counts.

import { $, h } from './app-dom.js';
import { api, state } from './app-state.js';
import { renderStoreHeader } from './app-store.js';

export async function loadStores(minPosition) {
  const query = minPosition ? `?min_position=${minPosition}` : '';
  const body = await api(`/stores${query}`);
  state.stores = new Map(body.stores.map((s) => [s.store_id, s]));
  state.storesPosition = Math.max(state.storesPosition, body.position);
  renderStoreList();
  if (state.store) {
    const summary = state.stores.get(state.store.id);
    if (summary) { state.store.summary = summary; renderStoreHeader(); }
  }
  return body.position;
}

/** Counts change with many events: refetch the summaries (coalesced) rather than recount by hand. */
export function scheduleStoresRefetch(position) {
  state.refetchStoresAt = Math.max(state.refetchStoresAt, position);
  if (state.refetchStoresTimer) return;
  state.refetchStoresTimer = setTimeout(async () => {
    state.refetchStoresTimer = null;
    try { await loadStores(state.refetchStoresAt); } catch { /* offline: the next event or reconnect refetches */ }
  }, 100);
}

export function renderStoreList() {
  const list = $('#store-list');
  if (!list) return;
  const stores = [...state.stores.values()].sort((a, b) => a.name.localeCompare(b.name));
  list.replaceChildren(...stores.map((s) => h('li', {},
    h('a', {
      href: `#/stores/${s.store_id}`, testid: 'store-link', dataset: { storeId: s.store_id },
      className: (state.store?.id ?? state.page?.storeId) === s.store_id ? 'store-link current' : 'store-link',
    },
    h('span', { className: 'store-name', testid: 'store-name' }, s.name),
    s.status === 'closed' ? h('span', { className: 'badge', testid: 'store-closed' }, 'closed') : null,
    h('span', { className: 'count', testid: 'store-item-count', title: 'items' }, String(s.item_count)),
    h('span', { className: `badge low ${s.low_stock_count ? '' : 'zero'}`, testid: 'store-low-count', title: 'low stock' }, `${s.low_stock_count} low`),
    h('span', { className: `badge out ${s.out_of_stock_count ? '' : 'zero'}`, testid: 'store-out-count', title: 'out of stock' }, `${s.out_of_stock_count} out`)))));
  if (stores.length === 0) list.append(h('li', { className: 'muted' }, 'No stores yet.'));
}

// The web app's activity feed of the open store, and undo / redo of its
// entries (compensating changes, recorded and seen live like any other).

import { $, fmtTime, h, toast } from './app-dom.js';
import { api, session, state } from './app-state.js';

export function renderActivity() {
  const list = $('#activity');
  if (!list || !state.store) return;
  list.replaceChildren(...state.store.activity.map((a) => h('li', { testid: 'activity-entry', dataset: { position: a.position, type: a.type, entityId: a.entity_id, undoes: a.data?.undoes ?? '' } },
    h('span', { className: 'when' }, fmtTime(a.recorded_at)), ' ',
    h('span', { className: 'who' }, a.actor ?? 'system'), ' ',
    describe(a),
    mayUndo(a) && h('button', {
      type: 'button', className: 'link undo', testid: a.data?.undoes ? 'activity-redo' : 'activity-undo',
      title: a.data?.undoes ? 'Undo this undo: the change is made again' : 'Undo this change (a compensating change is recorded)',
      onclick: (e) => undoEntry(a, e.currentTarget),
    }, a.data?.undoes ? 'Redo' : 'Undo'))));
}

// ---- undo and redo ------------------------------------------------------------------

const UNDOABLE = new Set(['StockAdjusted', 'ThresholdChanged', 'ItemRenamed']);

/** Whether the signed-in user may undo the entry: managers any item change, staff their own stock adjustments (the server checks again). */
function mayUndo(a) {
  if (a.entity_type !== 'item' || !UNDOABLE.has(a.type)) return false;
  if (['transfer_in', 'transfer_out'].includes(a.data?.reason)) return false;
  if (['manager', 'admin'].includes(session.role)) return true;
  return session.role === 'staff' && a.type === 'StockAdjusted' && a.actor === session.sub;
}

/**
 * Undoes an activity entry: a compensating change, recorded like any other
 * and seen live. Undoing an undo is the redo. The entry's event id comes
 * from the live frame, else from the item's history (by stream version).
 */
async function undoEntry(a, button) {
  button.disabled = true;
  try {
    let eventId = a.id;
    if (!eventId) {
      const page = await api(`/items/${a.entity_id}/events?from_version=${a.version}&limit=1`);
      eventId = page.events[0]?.id;
    }
    await api(`/items/${a.entity_id}/undo`, { method: 'POST', body: { event_id: eventId } });
    toast('info', a.data?.undoes ? 'Redone' : 'Undone');
  } catch (err) {
    toast('error', err.code === 'undo_conflict' ? `${err.message}: undo the later change first` : err.message);
  } finally {
    button.disabled = false;
  }
}

function describe(a) {
  const d = a.data ?? {};
  const item = state.store?.items.get(a.entity_id);
  const name = d.name ?? item?.name ?? d.sku ?? 'item';
  switch (a.type) {
    case 'ItemAdded': return `added ${d.name} (${d.sku}), ${d.quantity} ${d.unit}`;
    case 'StockAdjusted': return `${d.undoes ? 'undid: ' : ''}${d.delta > 0 ? '+' : ''}${d.delta} ${name} (${d.reason}) → ${d.quantity}`;
    case 'ThresholdChanged': return `${d.undoes ? 'undid: ' : ''}set threshold of ${name} to ${d.threshold}`;
    case 'ItemRenamed': return `${d.undoes ? 'undid: ' : ''}renamed an item to ${d.name}`;
    case 'ItemRemoved': return `removed ${name}`;
    case 'LowStock': return `⚠ ${d.sku} low (${d.quantity})`;
    case 'OutOfStock': return `⛔ ${d.sku} out of stock`;
    case 'Restocked': return `✓ ${d.sku} restocked (${d.quantity})`;
    case 'TransferCompleted': return `transfer of ${d.quantity} ${d.sku}`;
    case 'StoreCreated': return `opened the store ${d.name}`;
    case 'StoreRenamed': return `renamed the store to ${d.name}`;
    case 'StoreClosed': return 'closed the store';
    default: return a.type;
  }
}

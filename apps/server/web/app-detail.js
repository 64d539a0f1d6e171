// The web app's item detail: the open item's facts and forms, saved against
// the version the user saw (a 409 opens the conflict panel), with notices
// when another user changes or removes the item.

import { $, h, REASONS, STATUS_LABEL } from './app-dom.js';
import { api, session, state } from './app-state.js';
import { scheduleStoresRefetch } from './app-stores.js';
import { applyItem, fetchItem, renderBanner, renderTable } from './app-store.js';

export function openDetail(itemId) {
  if (!itemId) {
    state.detail = null;
    renderDetail();
    return;
  }
  if (state.detail?.id === itemId) return;
  const item = state.store?.items.get(itemId);
  state.detail = { id: itemId, base: item ? { ...item } : null, notice: null, conflict: null, removing: false };
  renderDetail();
  if (!item) {
    fetchItem(itemId).then((it) => {
      if (state.detail?.id !== itemId) return;
      if (it.status === 'removed') { itemGone(it, null); return; }
      state.detail.base = it;
      renderDetail();
    }).catch(() => { if (state.detail?.id === itemId) itemGone({ item_id: itemId, name: 'This item' }, null); });
  }
}

function closeDetail() {
  location.hash = `#/stores/${state.store.id}`;
}

/** The viewed item changed live. */
export function onDetailEvent(item, event, byOther) {
  const detail = state.detail;
  if (!detail || detail.id !== item.item_id) return;
  if (event.type === 'ItemRemoved') { itemGone(item, event.metadata?.actor); return; }
  if (byOther) {
    // Keep showing what the user was looking at (and will save against);
    // say that it moved on, and let them pull it in. The notice keeps the
    // version it tells of, so a save's answer that reaches the page later
    // but predates this change does not clear it.
    detail.notice = { by: byOther, version: item.version };
    renderDetail();
  } else if (!detail.conflict) {
    detail.base = { ...item };
    renderDetail();
  }
}

function itemGone(item, actor) {
  state.banner = {
    testid: 'removed-notice',
    text: `${item.name ?? 'The item'} was removed${actor && actor !== session.sub ? ` by ${actor}` : ''}. Back to the list.`,
  };
  state.detail = null;
  closeDetail();
  renderDetail();
  renderBanner();
}

function renderDetail() {
  const el = $('#detail');
  if (!el) return;
  const detail = state.detail;
  if (!detail) { el.replaceChildren(); return; }
  const item = detail.base;
  if (!item) { el.replaceChildren(h('div', { className: 'card', testid: 'item-detail' }, 'Loading…')); return; }
  const canStaff = session.role !== 'viewer';
  const canManage = ['manager', 'admin'].includes(session.role);
  const notice = detail.notice ? h('div', { className: 'notice warn', testid: 'stale-notice', role: 'status' },
    h('span', {}, `Updated by another user (${detail.notice.by}).`),
    h('button', { type: 'button', testid: 'stale-refresh', onclick: refreshDetail }, 'Refresh'),
    h('button', { type: 'button', className: 'link', testid: 'stale-dismiss', onclick: () => { detail.notice = null; renderDetail(); } }, 'Dismiss')) : null;
  const conflict = detail.conflict ? renderConflict(detail) : null;
  el.replaceChildren(h('div', { className: 'card detail', testid: 'item-detail', dataset: { itemId: item.item_id, version: item.version, saving: detail.saving ? 'true' : 'false' } },
    h('div', { className: 'detail-head' },
      h('h2', { testid: 'detail-name' }, item.name),
      h('span', { className: 'muted' }, item.sku),
      h('span', { className: 'spacer' }),
      h('button', { type: 'button', className: 'link', testid: 'detail-close', onclick: closeDetail }, 'Close')),
    notice,
    conflict,
    h('dl', { className: 'facts' },
      h('dt', {}, 'On hand'), h('dd', { testid: 'detail-qty' }, `${item.quantity}`), h('dd', {}, item.unit),
      h('dt', {}, 'Threshold'), h('dd', { testid: 'detail-threshold' }, `${item.threshold}`), h('dd', {}, ''),
      h('dt', {}, 'Status'), h('dd', { testid: 'detail-status' }, STATUS_LABEL[item.status] ?? item.status), h('dd', {}, ''),
      h('dt', {}, 'Version'), h('dd', { testid: 'detail-version' }, `${item.version}`), h('dd', {}, '')),
    canStaff ? h('form', { className: 'inline', testid: 'adjust-form', onsubmit: onDetailAdjust },
      h('input', { name: 'delta', type: 'number', required: true, placeholder: '±qty', testid: 'adjust-delta', 'aria-label': 'Change' }),
      h('select', { name: 'reason', testid: 'adjust-reason', 'aria-label': 'Reason' }, REASONS.map((r) => h('option', { value: r }, r))),
      h('input', { name: 'note', placeholder: 'note (optional)', maxlength: 500, testid: 'adjust-note', 'aria-label': 'Note' }),
      h('button', { type: 'submit', testid: 'adjust-save' }, 'Adjust')) : null,
    canManage ? h('form', { className: 'inline', testid: 'threshold-form', onsubmit: onDetailThreshold },
      h('label', {}, 'Threshold ', h('input', { name: 'threshold', type: 'number', min: 0, required: true, value: item.threshold, testid: 'threshold-input' })),
      h('button', { type: 'submit', testid: 'threshold-save' }, 'Set threshold')) : null,
    canManage ? h('form', { className: 'inline', testid: 'rename-form', onsubmit: onDetailRename },
      h('label', {}, 'Name ', h('input', { name: 'name', required: true, maxlength: 100, value: item.name, testid: 'rename-input' })),
      h('button', { type: 'submit', testid: 'rename-save' }, 'Rename')) : null,
    canManage ? h('button', { type: 'button', className: 'danger', testid: 'remove-item', onclick: onRemove }, detail.removing ? 'Click again to remove' : 'Remove item') : null,
    h('p', { className: 'error', testid: 'detail-error' }, detail.error ?? '')));
}

function renderConflict(detail) {
  const { current, yours, label } = detail.conflict;
  return h('div', { className: 'notice conflict', testid: 'conflict', role: 'alert' },
    h('p', {}, h('strong', {}, 'Conflict: '), `this item changed since you opened it (you had version ${detail.base.version}, it is now at ${current.version}). Your change was not saved.`),
    h('p', {}, 'Now: ',
      h('span', { testid: 'conflict-quantity' }, `${current.quantity} ${current.unit}`), ', threshold ',
      h('span', { testid: 'conflict-threshold' }, `${current.threshold}`), ', name ',
      h('span', { testid: 'conflict-name' }, current.name), '.'),
    h('p', {}, `Your change: ${label}.`),
    h('button', { type: 'button', testid: 'conflict-reapply', onclick: () => reapply(yours) }, 'Re-apply my change'),
    h('button', { type: 'button', className: 'link', testid: 'conflict-discard', onclick: discardConflict }, 'Discard my change'));
}

async function refreshDetail() {
  const detail = state.detail;
  if (!detail) return;
  try {
    const item = await fetchItem(detail.id, state.store?.items.get(detail.id)?.position);
    if (state.detail !== detail) return;
    detail.base = item;
    detail.notice = null;
    applyItem(item);
    renderDetail();
  } catch (err) {
    detail.error = `Could not refresh: ${err.message}`;
    renderDetail();
  }
}

/** Sends a command against the version the user was looking at; a 409 opens the conflict panel. */
async function saveAgainstBase(command) {
  const detail = state.detail;
  detail.error = null;
  // Marked on the detail (data-saving) until the answer and the read after it are in.
  detail.saving = true;
  try {
    const res = await api(command.path, { method: 'POST', body: command.body, ifMatch: detail.base.version });
    scheduleStoresRefetch(res.position);
    const item = await fetchItem(detail.id, res.position);
    if (state.detail !== detail) return;
    detail.base = item;
    if (!(detail.notice?.version > item.version)) detail.notice = null;
    detail.conflict = null;
    applyItem(item);
  } catch (err) {
    if (state.detail !== detail) return;
    if (err.code === 'version_conflict') {
      let current;
      try { current = await fetchItem(detail.id); } catch { current = { ...detail.base, version: err.details.current_version }; }
      detail.conflict = { current, yours: command, label: command.label };
    } else {
      detail.error = err.message;
    }
  } finally {
    detail.saving = false;
    if (state.detail === detail) renderDetail();
  }
}

async function reapply(command) {
  const detail = state.detail;
  if (!detail?.conflict) return;
  // The user saw the current values in the conflict panel: save against them.
  detail.base = detail.conflict.current;
  detail.conflict = null;
  await saveAgainstBase(command);
}

function discardConflict() {
  const detail = state.detail;
  if (!detail?.conflict) return;
  detail.base = detail.conflict.current;
  detail.conflict = null;
  detail.notice = null;
  applyItem(detail.base);
  renderDetail();
}

function onDetailAdjust(e) {
  e.preventDefault();
  const f = e.currentTarget.elements;
  const delta = Number(f.delta.value);
  const note = f.note.value.trim();
  const body = { delta, reason: f.reason.value, ...(note ? { note } : {}) };
  return saveAgainstBase({ path: `/items/${state.detail.id}/adjust`, body, label: `adjust by ${delta > 0 ? '+' : ''}${delta} (${body.reason})` });
}

function onDetailThreshold(e) {
  e.preventDefault();
  const threshold = Number(e.currentTarget.elements.threshold.value);
  return saveAgainstBase({ path: `/items/${state.detail.id}/threshold`, body: { threshold }, label: `set threshold to ${threshold}` });
}

function onDetailRename(e) {
  e.preventDefault();
  const name = e.currentTarget.elements.name.value.trim();
  return saveAgainstBase({ path: `/items/${state.detail.id}/rename`, body: { name }, label: `rename to “${name}”` });
}

async function onRemove() {
  const detail = state.detail;
  if (!detail.removing) { detail.removing = true; renderDetail(); return; }
  try {
    await api(`/items/${detail.id}/remove`, { method: 'POST' });
    // The live ItemRemoved (or this) takes the view back to the list.
    const item = detail.base;
    state.store.items.set(detail.id, { ...item, status: 'removed' });
    renderTable();
    itemGone(item, null);
  } catch (err) {
    detail.error = err.message;
    detail.removing = false;
    renderDetail();
  }
}

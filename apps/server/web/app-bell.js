// The notification bell in the top bar: the unread count, the list (newest
// first), read one / mark all read, and the preferences per kind. The
// notifications come live on the user's own topic (`user:{sub}`, where the
// server delivers the user's inbox events to them only); the list and the
// count are read again through REST on each inbox event, so the bell is
// right after a reconnect too (the subscription resumes like every topic).

import { $, fmtTime, h, toast } from './app-dom.js';
import { api, session, state, track } from './app-state.js';

export const KINDS = {
  low_stock: 'Low stock',
  out_of_stock: 'Out of stock',
  order_ready: 'Order ready',
  order_waiting: 'Order waiting',
  transfer_completed: 'Transfer completed',
  broadcast: 'Announcements',
};
export const PRIORITIES = ['low', 'normal', 'high', 'urgent'];

const bell = {
  sub: null,
  unread: 0,
  list: [],
  preferences: null,
  open: false,
  loading: null,
  again: false,
};

/** Reads the list and the count, at least at `position`; one read at a time, the latest wins. */
async function refresh(position = 0) {
  if (bell.loading) { bell.again = true; return bell.loading; }
  bell.loading = (async () => {
    try {
      const query = position ? `?limit=20&min_position=${position}` : '?limit=20';
      const res = await api(`/notifications${query}`);
      bell.unread = res.unread;
      bell.list = res.notifications;
      render();
      return res.position;
    } catch (error) {
      if (error.status !== 401) toast('error', `Could not load notifications: ${error.message}`);
      return 0;
    } finally {
      bell.loading = null;
      if (bell.again) { bell.again = false; refresh(position); }
    }
  })();
  return bell.loading;
}

/** Starts the bell for the signed-in user: reads, then follows the user's topic. */
export async function startBell() {
  stopBell();
  const position = await refresh();
  bell.sub = state.client.subscribe(`user:${session.sub}`, {
    since: position,
    onEvent: (event, frame) => {
      if (event.metadata?.entity_type !== 'inbox') return;
      track(frame);
      if (event.type === 'NotificationRaised') {
        const n = event.data?.notification ?? {};
        if (['high', 'urgent'].includes(n.priority)) toast('notification', n.title);
      }
      refresh(frame.position);
    },
    onReset: () => refresh(),
  });
  render();
}

export function stopBell() {
  bell.sub?.unsubscribe();
  bell.sub = null;
  bell.open = false;
  bell.list = [];
  bell.unread = 0;
  const button = $('#bell');
  if (button) button.hidden = true;
  const panel = $('#bell-panel');
  if (panel) panel.hidden = true;
}

export async function toggleBell() {
  bell.open = !bell.open;
  if (bell.open && !bell.preferences) await loadPreferences();
  render();
}

async function loadPreferences() {
  try {
    bell.preferences = (await api('/notifications/preferences')).preferences;
  } catch (error) {
    toast('error', `Could not load preferences: ${error.message}`);
  }
}

async function markRead(id) {
  try {
    const res = await api(`/notifications/${id}/read`, { method: 'POST' });
    await refresh(res.position);
  } catch (error) {
    toast('error', `Could not mark it read: ${error.message}`);
  }
}

async function markAllRead() {
  try {
    const res = await api('/notifications/read-all', { method: 'POST' });
    await refresh(res.position);
  } catch (error) {
    toast('error', `Could not mark them read: ${error.message}`);
  }
}

async function setPreference(kind, enabled, minPriority) {
  try {
    await api('/notifications/preferences', { method: 'PUT', body: { kind, enabled, min_priority: minPriority } });
    bell.preferences = null;
    await loadPreferences();
    render();
  } catch (error) {
    toast('error', `Could not save the preference: ${error.message}`);
  }
}

/** Where a notification's subject is shown in the app, if anywhere. */
function linkOf(n) {
  if (n.subject_type === 'item' && n.store_id) return `#/stores/${n.store_id}/items/${n.subject_id}`;
  if (n.subject_type === 'order' && n.store_id) return `#/stores/${n.store_id}/board`;
  if (n.store_id) return `#/stores/${n.store_id}`;
  return null;
}

function render() {
  const button = $('#bell');
  if (!button) return;
  button.hidden = !session;
  button.setAttribute('aria-expanded', String(bell.open));
  button.dataset.unread = String(bell.unread);
  button.replaceChildren('🔔 ', h('span', { className: 'bell-count', testid: 'bell-count' }, String(bell.unread)));
  button.setAttribute('aria-label', `Notifications: ${bell.unread} unread`);
  const panel = $('#bell-panel');
  panel.hidden = !bell.open;
  if (!bell.open) return;
  const items = bell.list.map((n) => {
    const link = linkOf(n);
    return h('li', { className: `notification${n.read ? '' : ' unread'}`, testid: 'notification', dataset: { kind: n.kind, priority: n.priority, read: String(n.read) } },
      h('div', { className: 'notification-head' },
        h('span', { className: `priority priority-${n.priority}` }, n.priority),
        link ? h('a', { href: link, testid: 'notification-link' }, n.title) : h('strong', {}, n.title),
        h('span', { className: 'muted' }, fmtTime(n.raised_at))),
      n.body ? h('p', { className: 'muted' }, n.body) : null,
      n.read ? null : h('button', { type: 'button', className: 'link', testid: 'notification-read', onclick: () => markRead(n.notification_id) }, 'Mark read'));
  });
  const preferences = (bell.preferences ?? []).map((p) => {
    const enabled = h('input', { type: 'checkbox', checked: p.enabled, testid: `pref-enabled-${p.kind}`,
      onchange: (e) => setPreference(p.kind, e.currentTarget.checked, p.min_priority) });
    const min = h('select', { testid: `pref-min-${p.kind}`, 'aria-label': `Lowest priority for ${KINDS[p.kind] ?? p.kind}`,
      onchange: (e) => setPreference(p.kind, p.enabled, e.currentTarget.value) },
    PRIORITIES.map((x) => h('option', { value: x, selected: x === p.min_priority }, x)));
    return h('li', { className: 'pref', dataset: { kind: p.kind } }, h('label', {}, enabled, ` ${KINDS[p.kind] ?? p.kind}`), ' from ', min);
  });
  panel.replaceChildren(
    h('div', { className: 'bell-head' },
      h('strong', {}, 'Notifications'),
      h('button', { type: 'button', testid: 'bell-read-all', onclick: markAllRead, disabled: bell.unread === 0 }, 'Mark all read')),
    items.length ? h('ul', { className: 'notifications', testid: 'notification-list' }, items) : h('p', { className: 'muted', testid: 'notifications-empty' }, 'Nothing yet.'),
    h('details', { className: 'prefs', testid: 'bell-preferences' },
      h('summary', {}, 'Preferences'),
      h('ul', {}, preferences)));
}

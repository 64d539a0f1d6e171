// The web app's tiny DOM helpers (elements built from data, never from
// HTML), toasts, and the labels several views show.

const TOAST_MS = 10000;
export const REASONS = ['received', 'sold', 'wasted', 'counted', 'correction'];

// ---- tiny DOM helpers ----------------------------------------------------------

/** Creates an element: h('button', {type: 'button', onclick}, 'text', child…). Text is always text, never HTML. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs ?? {})) {
    if (value == null || value === false) continue;
    if (key.startsWith('on')) el.addEventListener(key.slice(2), value);
    else if (key === 'testid') el.dataset.testid = value;
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key === 'className') el.className = value;
    else if (key in el && typeof value !== 'string') el[key] = value;
    else el.setAttribute(key, value === true ? '' : value);
  }
  for (const child of children.flat()) {
    if (child == null || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

export const $ = (selector, root = document) => root.querySelector(selector);

export function fmtTime(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? '' : d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

export const STATUS_LABEL = { in_stock: 'In stock', low: 'Low', out: 'Out', removed: 'Removed' };

// ---- toasts -------------------------------------------------------------------------

export function toast(kind, text) {
  const close = () => el.remove();
  const el = h('div', { className: `toast toast-${kind}`, testid: 'toast', dataset: { kind }, role: 'alert' },
    h('span', {}, text),
    h('button', { type: 'button', className: 'link', onclick: close, 'aria-label': 'Dismiss', testid: 'toast-dismiss' }, '×'));
  $('#toasts').append(el);
  setTimeout(close, TOAST_MS);
}

// Helpers for the browser tests: REST from Node, browser sessions signed in
// through the UI, console-error tracking, bounded waits.

import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

export const BASE = (process.env.LARDER_URL ?? '').replace(/\/+$/, '');
export const ARTIFACTS = path.join(path.dirname(fileURLToPath(import.meta.url)), 'artifacts');
mkdirSync(ARTIFACTS, { recursive: true });

/** A tenant of its own per run, so runs against one database never see each other. */
export const TENANT = `e2e-${Date.now().toString(36)}-${process.pid}`;

export class TestFailure extends Error {}

export function assert(condition, message) {
  if (!condition) throw new TestFailure(message);
}

/**
 * Polls `check` (sync or async) until it returns a truthy value or `timeoutMs`
 * passes; returns that value. For conditions that live in Node; conditions in
 * the page use Playwright's own waits.
 */
export async function until(check, { timeoutMs = 10000, intervalMs = 50, message = 'condition' } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      last = await check();
      if (last) return last;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new TestFailure(`timed out after ${timeoutMs} ms waiting for ${message}${last instanceof Error ? `: ${last.message}` : ''}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

// ---- REST from Node --------------------------------------------------------------

export async function mint(sub, role) {
  const response = await fetch(`${BASE}/api/v1/dev/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ tenant: TENANT, sub, role, stores: '*' }),
  });
  assert(response.ok, `minting a token for ${sub}: HTTP ${response.status}`);
  return (await response.json()).token;
}

export async function rest(token, method, route, body, { ifMatch, expect = [200, 201] } = {}) {
  const headers = { authorization: `Bearer ${token}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (ifMatch != null) headers['if-match'] = `"${ifMatch}"`;
  const response = await fetch(`${BASE}/api/v1${route}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const json = await response.json().catch(() => null);
  assert(expect.includes(response.status), `${method} ${route}: HTTP ${response.status} ${JSON.stringify(json)}`);
  return json;
}

export async function createStore(token, name) {
  return (await rest(token, 'POST', '/stores', { name })).id;
}

export async function addItem(token, store, { sku, name = sku, quantity = 10, threshold = 2, unit = 'each' }) {
  return (await rest(token, 'POST', `/stores/${store}/items`, { sku, name, unit, quantity, threshold })).id;
}

// ---- browser sessions ---------------------------------------------------------------

/** Console messages Chromium itself prints for network failures a test causes on purpose. */
export const NETWORK_NOISE = {
  conflict: /Failed to load resource: the server responded with a status of 409/,
  offline: /net::ERR_INTERNET_DISCONNECTED|net::ERR_NETWORK_CHANGED|net::ERR_NAME_NOT_RESOLVED/,
  restart: /WebSocket connection to .* failed|net::ERR_CONNECTION_REFUSED|net::ERR_CONNECTION_RESET|net::ERR_EMPTY_RESPONSE|net::ERR_INCOMPLETE_CHUNKED_ENCODING|status of 50[23]/,
  wsBlocked: /WebSocket connection to .*\/ws-blocked.* failed/,
  // A request whose answer a test drops on purpose (route.abort).
  lostAnswer: /net::ERR_CONNECTION_RESET|net::ERR_FAILED/,
};

/**
 * Stands in for a proxy that refuses WebSocket upgrades: every WebSocket the
 * page opens is sent to a path whose upgrade the server refuses (404), so
 * the browser sees a real failed handshake. Everything else goes through.
 */
const BLOCK_WEBSOCKET = () => {
  const Real = window.WebSocket;
  window.__wsAttempts = 0;
  window.WebSocket = class extends Real {
    constructor(url, protocols) {
      window.__wsAttempts++;
      const blocked = new URL(url, location.href);
      blocked.pathname = '/ws-blocked';
      super(blocked.toString(), protocols);
    }
  };
};

/**
 * A user in a browser context of their own (own storage, like another
 * device), signed in through the sign-in form.
 */
export async function openUser(browser, sub, role, { storeId, blockWebSocket = false } = {}) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  if (blockWebSocket) await context.addInitScript(BLOCK_WEBSOCKET);
  const page = await context.newPage();
  page.setDefaultTimeout(10000);
  const user = { sub, role, context, page, errors: [], allowed: blockWebSocket ? [NETWORK_NOISE.wsBlocked] : [] };
  page.on('console', (message) => {
    if (message.type() !== 'error') return;
    // Chromium's "Failed to load resource" does not say which: add the URL (token redacted).
    const url = (message.location()?.url ?? '').replace(/access_token=[^&]+/, 'access_token=…');
    user.errors.push(url && !message.text().includes(url) ? `${message.text()} (${url})` : message.text());
  });
  page.on('pageerror', (error) => user.errors.push(`uncaught: ${error.message}`));
  await page.goto(`${BASE}/`);
  await page.getByTestId('signin').waitFor();
  await page.getByTestId('signin-tenant').fill(TENANT);
  await page.getByTestId('signin-user').fill(sub);
  await page.getByTestId('signin-role').selectOption(role);
  await page.getByTestId('signin-submit').click();
  await page.getByTestId('store-list').waitFor();
  await waitConnected(user);
  if (storeId) await openStore(user, storeId);
  return user;
}

export async function openStore(user, storeId) {
  await user.page.evaluate((id) => { location.hash = `#/stores/${id}`; }, storeId);
  await user.page.getByTestId('inventory').waitFor();
}

export async function waitConnected(user, timeoutMs = 10000) {
  await user.page.locator('[data-testid="conn"][data-state="connected"]').waitFor({ timeout: timeoutMs });
}

export const row = (user, sku) => user.page.locator(`[data-testid="item-row"][data-sku="${sku}"]`);

/** CSS selector of a row's cell: cell('FLOUR', 'item-qty'). */
export const cell = (sku, testid) => `[data-testid="item-row"][data-sku="${sku}"] [data-testid="${testid}"]`;

/**
 * Waits until the element matching `selector` reads `text` (trimmed). The
 * selector is re-evaluated on every frame, so re-rendered rows are fine.
 */
export async function waitText(page, selector, text, timeoutMs = 5000) {
  try {
    await page.waitForFunction(
      ([sel, expected]) => document.querySelector(sel)?.textContent.trim() === expected,
      [selector, String(text)],
      { timeout: timeoutMs, polling: 50 },
    );
  } catch {
    const actual = await page.evaluate((sel) => document.querySelector(sel)?.textContent.trim() ?? '(none)', selector);
    throw new TestFailure(`expected ${selector} to read "${text}" within ${timeoutMs} ms, found "${actual}"`);
  }
}

export async function screenshot(user, name) {
  await user.page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });
}

/** Console errors not explained by what the test did on purpose. */
export function unexpectedErrors(user) {
  return user.errors.filter((text) => !user.allowed.some((pattern) => pattern.test(text)));
}

// The browser scenarios. Each gets a fresh store, its own users (each in a
// browser context of their own) and a time bound; waits are on DOM
// conditions, never on sleeps.

import { exec } from 'node:child_process';
import { promisify } from 'node:util';

import {
  NETWORK_NOISE, addItem, assert, cell, createStore, mint, openStore, openUser, rest, row, screenshot, until,
  waitConnected, waitText,
} from './helpers.mjs';
import { orderTests } from './orders.mjs';

const run = promisify(exec);

let admin;
/**
 * A store of its own for one test, created from outside the browser. The
 * admin token is minted again for every test: a demo server signs with a new
 * key after the restart scenario, so older tokens stop working.
 */
async function freshStore(name) {
  admin = await mint('alice', 'admin');
  return createStore(admin, `${name} ${Date.now() % 100000}`);
}

/** alice (admin) and bob (manager), both looking at `store`. */
async function twoUsers(ctx, store) {
  const alice = await openUser(ctx.browser, 'alice', 'admin', { storeId: store });
  ctx.users.push(alice);
  const bob = await openUser(ctx.browser, 'bob', 'manager', { storeId: store });
  ctx.users.push(bob);
  return { alice, bob };
}

/** Events the page applied, per topic: {topic: [positions]}. */
async function delivered(user) {
  const list = await user.page.evaluate(() => window.__larder.delivered);
  const byTopic = {};
  for (const d of list) (byTopic[d.topic] ??= []).push(d.position);
  return { list, byTopic };
}

async function assertNoDuplicates(user) {
  const { byTopic } = await delivered(user);
  for (const [topic, positions] of Object.entries(byTopic)) {
    assert(new Set(positions).size === positions.length, `${user.sub} applied an event twice on ${topic}: ${positions}`);
    assert(positions.every((p, i) => i === 0 || p > positions[i - 1]), `${user.sub} applied events out of order on ${topic}: ${positions}`);
  }
}

const openDetail = async (user, sku) => {
  await row(user, sku).getByTestId('item-open').click();
  await user.page.getByTestId('item-detail').waitFor();
  await user.page.getByTestId('detail-version').waitFor();
};

export const tests = [
  {
    name: 'an item added in one tab appears live in the other',
    timeoutMs: 60000,
    async run(ctx) {
      const store = await freshStore('Soho');
      const alice = await openUser(ctx.browser, 'alice', 'admin');
      ctx.users.push(alice);
      await screenshot(alice, 'store-list-empty-store');
      await openStore(alice, store);
      const bob = await openUser(ctx.browser, 'bob', 'manager', { storeId: store });
      ctx.users.push(bob);
      // Presence: each sees the other (WebSocket only).
      await bob.page.locator('[data-testid="presence-user"]', { hasText: 'alice' }).waitFor({ timeout: 5000 });

      const p = alice.page;
      await p.getByTestId('add-sku').fill('FLOUR-00');
      await p.getByTestId('add-name').fill('Flour 00');
      await p.getByTestId('add-unit').fill('kg');
      await p.getByTestId('add-qty').fill('25');
      await p.getByTestId('add-threshold').fill('5');
      const t0 = Date.now();
      await p.getByTestId('add-submit').click();
      // Bounded by the event, not by a figure a busy machine may miss: the
      // row must come live (no reload), well within the bound.
      await row(bob, 'FLOUR-00').waitFor({ timeout: 5000 });
      console.log(`      the item reached the other tab after ${Date.now() - t0} ms`);
      await waitText(bob.page, cell('FLOUR-00', 'item-qty'), '25');
      await row(alice, 'FLOUR-00').waitFor();
      // Changed by someone else: highlighted for bob.
      assert(await row(bob, 'FLOUR-00').evaluate((el) => el.dataset.changedBy === 'alice' || el.classList.contains('changed')),
        'the row alice added is highlighted for bob');
      await waitText(bob.page, `[data-testid="store-link"][data-store-id="${store}"] [data-testid="store-item-count"]`, '1');
      await waitText(bob.page, '[data-testid="activity-entry"][data-type="ItemAdded"] .who', 'alice');
      await screenshot(bob, 'store-inventory');
      await assertNoDuplicates(bob);
    },
  },

  {
    name: 'with WebSocket blocked a tab falls back to the event stream and still updates live',
    timeoutMs: 60000,
    async run(ctx) {
      const store = await freshStore('Hackney');
      await addItem(admin, store, { sku: 'TEA-100', name: 'Tea 100 bags', quantity: 5, threshold: 1 });
      const alice = await openUser(ctx.browser, 'alice', 'admin', { storeId: store });
      ctx.users.push(alice);
      // Behind a proxy that blocks WebSocket: the client gives up on it and
      // uses Server-Sent Events with ?access_token=.
      const bob = await openUser(ctx.browser, 'bob', 'manager', { storeId: store, blockWebSocket: true });
      ctx.users.push(bob);
      await bob.page.locator('[data-testid="conn"][data-state="connected"][data-transport="sse"]').waitFor({ timeout: 15000 });
      assert(await bob.page.evaluate(() => window.__wsAttempts) > 0, 'the page tried WebSocket first');
      await waitText(bob.page, cell('TEA-100', 'item-qty'), '5');

      // Another tab changes the stock: bob sees it live over the event stream.
      await row(alice, 'TEA-100').getByTestId('item-inc').click();
      await waitText(alice.page, cell('TEA-100', 'item-qty'), '6');
      await waitText(bob.page, cell('TEA-100', 'item-qty'), '6', 5000);
      // And a change through REST from outside, too.
      await addItem(admin, store, { sku: 'COFFEE-1K', name: 'Coffee 1 kg', quantity: 2, threshold: 1 });
      await row(bob, 'COFFEE-1K').waitFor({ timeout: 5000 });
      assert(await bob.page.locator('[data-testid="conn"]').getAttribute('data-transport') === 'sse', 'still on the event stream');
      await screenshot(bob, 'sse-fallback');
      await assertNoDuplicates(bob);
    },
  },

  {
    name: 'a stock adjustment updates the table and the store list count',
    timeoutMs: 60000,
    async run(ctx) {
      const store = await freshStore('Camden');
      await addItem(admin, store, { sku: 'MILK-1L', name: 'Milk 1 l', quantity: 4, threshold: 3 });
      const { alice, bob } = await twoUsers(ctx, store);
      const lowBadge = `[data-testid="store-link"][data-store-id="${store}"] [data-testid="store-low-count"]`;
      await waitText(alice.page, lowBadge, '0 low');
      await waitText(alice.page, cell('MILK-1L', 'item-qty'), '4');

      await row(bob, 'MILK-1L').getByTestId('item-dec').click(); // 4 -> 3: low
      await waitText(alice.page, cell('MILK-1L', 'item-qty'), '3', 2000);
      await waitText(alice.page, cell('MILK-1L', 'item-status'), 'Low');
      await waitText(alice.page, lowBadge, '1 low', 3000);
      await waitText(bob.page, lowBadge, '1 low', 3000);
      // The LowStock alert as a toast, for everyone in the tenant.
      await alice.page.locator('[data-testid="toast"][data-kind="LowStock"]').waitFor({ timeout: 3000 });
      await screenshot(alice, 'low-stock-toast');
      await assertNoDuplicates(alice);
    },
  },

  {
    name: 'a tab offline for ~5 s catches up on 3 changes, none twice',
    timeoutMs: 90000,
    async run(ctx) {
      const store = await freshStore('Brixton');
      await addItem(admin, store, { sku: 'RICE-5', name: 'Rice 5 kg', quantity: 10, threshold: 2 });
      const { alice, bob } = await twoUsers(ctx, store);
      alice.allowed.push(NETWORK_NOISE.offline);
      await waitText(alice.page, cell('RICE-5', 'item-qty'), '10');

      const offlineAt = Date.now();
      await alice.context.setOffline(true);
      // The indicator leaves "connected": offline (the browser says so) or reconnecting.
      await alice.page.locator('[data-testid="conn"]:is([data-state="offline"], [data-state="reconnecting"])').waitFor({ timeout: 5000 });
      await screenshot(alice, 'indicator-offline');
      for (const expected of ['11', '12', '13']) {
        await row(bob, 'RICE-5').getByTestId('item-inc').click();
        await waitText(bob.page, cell('RICE-5', 'item-qty'), expected);
      }
      // Nothing reached alice while she was offline.
      await waitText(alice.page, cell('RICE-5', 'item-qty'), '10', 1000);
      // Hold the interruption for about 5 s: the scenario's length, not a wait for a result.
      const hold = 5000 - (Date.now() - offlineAt);
      if (hold > 0) await alice.page.waitForTimeout(hold);
      await alice.context.setOffline(false);
      await waitConnected(alice, 15000);
      await waitText(alice.page, cell('RICE-5', 'item-qty'), '13', 5000);
      const states = await alice.page.evaluate(() => window.__larder.states);
      assert(states.some((s) => s === 'offline' || s === 'reconnecting'), `the indicator showed the interruption: ${states}`);

      // Each of bob's changes exactly once: in what the page applied and in the feed.
      await assertNoDuplicates(alice);
      const { list } = await delivered(alice);
      const adjusted = list.filter((d) => d.topic === `store:${store}` && d.type === 'StockAdjusted');
      assert(adjusted.length === 3, `alice applied ${adjusted.length} StockAdjusted events, expected 3`);
      const feed = alice.page.locator('[data-testid="activity-entry"][data-type="StockAdjusted"]');
      await until(async () => (await feed.count()) === 3, { timeoutMs: 3000, message: '3 adjustments in the activity feed' });
      await screenshot(alice, 'after-offline-catch-up');
    },
  },

  {
    name: 'an adjustment made offline shows pending, is replayed once after the reconnect (its first answer lost) and shows done',
    timeoutMs: 90000,
    async run(ctx) {
      const store = await freshStore('Camden');
      const itemId = await addItem(admin, store, { sku: 'BEANS', name: 'Beans', quantity: 10, threshold: 2 });
      const alice = await openUser(ctx.browser, 'alice', 'manager', { storeId: store });
      ctx.users.push(alice);
      alice.allowed.push(NETWORK_NOISE.offline, NETWORK_NOISE.lostAnswer);
      const p = alice.page;
      await waitText(p, cell('BEANS', 'item-qty'), '10');

      // Every attempt of the adjustment goes to the server for real; the
      // answer to the first is lost on the way back (the connection drops
      // after the server applied it), so the client must retry, and only its
      // key keeps the server from applying it twice.
      const attempts = [];
      await p.route('**/api/v1/items/*/adjust', async (route) => {
        const attempt = { key: route.request().headers()['idempotency-key'] };
        attempts.push(attempt);
        const response = await route.fetch();
        attempt.status = response.status();
        attempt.replayed = response.headers()['idempotent-replayed'] === 'true';
        if (attempts.length === 1) await route.abort('connectionreset');
        else await route.fulfill({ response });
      });

      await alice.context.setOffline(true);
      await p.locator('[data-testid="conn"][data-state="offline"]').waitFor({ timeout: 5000 });
      await row(alice, 'BEANS').getByTestId('item-inc').click();
      const command = p.locator('[data-testid="queue-panel"] [data-testid="queued-command"]');
      await p.locator('[data-testid="queue-panel"] [data-testid="queued-command"][data-state="pending"]').waitFor({ timeout: 3000 });
      await waitText(p, '[data-testid="queue-badge"]', '1 pending');
      await screenshot(alice, 'offline-command-pending');
      assert(attempts.length === 0, `nothing was sent while offline (${attempts.length} attempts)`);
      assert((await rest(admin, 'GET', `/items/${itemId}`)).item.quantity === 10, 'the server has not seen it yet');

      await alice.context.setOffline(false);
      await waitConnected(alice, 15000);
      await p.locator('[data-testid="queue-panel"] [data-testid="queued-command"][data-state="done"]').waitFor({ timeout: 15000 });
      await waitText(p, cell('BEANS', 'item-qty'), '11', 5000);
      await screenshot(alice, 'offline-command-done');

      const key = await command.getAttribute('data-key');
      assert(attempts.length === 2, `two attempts reached the server, found ${attempts.length}: ${JSON.stringify(attempts)}`);
      assert(attempts.every((a) => a.key === key), `every attempt carried the key the command got when it was queued: ${key} vs ${JSON.stringify(attempts)}`);
      assert(attempts[0].status === 200 && !attempts[0].replayed, `the first attempt was applied: ${JSON.stringify(attempts[0])}`);
      assert(attempts[1].status === 200 && attempts[1].replayed, `the retry was answered from the key: ${JSON.stringify(attempts[1])}`);
      assert(await command.getAttribute('data-replayed') === 'true', 'the command counts the replay as done');

      // Exactly once on the server: the event store holds one adjustment, the item is at 11.
      const history = await rest(admin, 'GET', `/items/${itemId}/events`);
      const adjustments = history.events.filter((e) => e.type === 'StockAdjusted');
      assert(adjustments.length === 1, `one StockAdjusted in the event store, found ${adjustments.length}: ${JSON.stringify(adjustments.map((e) => e.data))}`);
      assert(adjustments[0].data.delta === 1 && adjustments[0].data.quantity === 11, `the adjustment: ${JSON.stringify(adjustments[0].data)}`);
      await until(async () => (await rest(admin, 'GET', `/items/${itemId}?min_position=${adjustments[0].position}`)).item.quantity === 11,
        { timeoutMs: 3000, message: 'the item at 11 in the read model' });
      const feed = p.locator('[data-testid="activity-entry"][data-type="StockAdjusted"]');
      await until(async () => (await feed.count()) === 1, { timeoutMs: 3000, message: 'one adjustment in the activity feed' });
      await assertNoDuplicates(alice);

      // Done commands can be cleared from the list.
      await p.getByTestId('queue-clear-done').click();
      await p.getByTestId('queue-badge').waitFor({ state: 'hidden', timeout: 3000 });
    },
  },

  {
    name: 'a queued adjustment survives a reload with its key: applied before the reload, replayed after it, once',
    timeoutMs: 60000,
    async run(ctx) {
      const store = await freshStore('Holborn');
      const itemId = await addItem(admin, store, { sku: 'OATS', name: 'Oats', quantity: 10, threshold: 2 });
      const alice = await openUser(ctx.browser, 'alice', 'manager', { storeId: store });
      ctx.users.push(alice);
      alice.allowed.push(NETWORK_NOISE.lostAnswer);
      const p = alice.page;
      await waitText(p, cell('OATS', 'item-qty'), '10');

      // The first attempt reaches the server and its answer is lost; every
      // later one is lost before it gets there: the command stays pending.
      const keys = [];
      await p.route('**/api/v1/items/*/adjust', async (route) => {
        keys.push(route.request().headers()['idempotency-key']);
        if (keys.length === 1) await route.fetch();
        await route.abort('connectionreset');
      });
      await row(alice, 'OATS').getByTestId('item-inc').click();
      await until(() => keys.length >= 2, { timeoutMs: 5000, message: 'a retry after the lost answer' });
      await waitText(p, '[data-testid="queue-badge"]', '1 pending');
      const pending = p.locator('[data-testid="queued-command"][data-state="pending"]');
      const key = await pending.getAttribute('data-key');
      assert(keys.every((k) => k === key), `every attempt carried the key of the queued command: ${key} vs ${keys}`);
      assert((await rest(admin, 'GET', `/items/${itemId}/events`)).events.filter((e) => e.type === 'StockAdjusted').length === 1,
        'the first attempt was applied');

      // The page goes away before it learns the outcome; the network is fine again.
      await p.unroute('**/api/v1/items/*/adjust');
      await p.reload();
      await p.getByTestId('inventory').waitFor();
      await waitConnected(alice);
      const done = p.locator('[data-testid="queued-command"][data-state="done"]');
      await p.getByTestId('queue-badge').click();
      await done.waitFor({ timeout: 10000 });
      assert(await done.getAttribute('data-key') === key, 'the same command, with its key, after the reload');
      assert(await done.getAttribute('data-replayed') === 'true', 'answered from its key: it had been applied before the reload');
      const adjustments = (await rest(admin, 'GET', `/items/${itemId}/events`)).events.filter((e) => e.type === 'StockAdjusted');
      assert(adjustments.length === 1, `applied once, found ${adjustments.length} adjustments`);
      await waitText(p, cell('OATS', 'item-qty'), '11');
    },
  },

  {
    name: 'a queued adjustment the server refuses shows conflicted with the reason, to retry or dismiss',
    timeoutMs: 60000,
    async run(ctx) {
      const store = await freshStore('Bow');
      const itemId = await addItem(admin, store, { sku: 'JAM', name: 'Jam', quantity: 1, threshold: 0 });
      const alice = await openUser(ctx.browser, 'alice', 'manager', { storeId: store });
      ctx.users.push(alice);
      alice.allowed.push(NETWORK_NOISE.offline, /status of 422/);
      const p = alice.page;
      await waitText(p, cell('JAM', 'item-qty'), '1');
      await alice.context.setOffline(true);
      await p.locator('[data-testid="conn"][data-state="offline"]').waitFor({ timeout: 5000 });
      await row(alice, 'JAM').getByTestId('item-dec').click();
      await p.locator('[data-testid="queued-command"][data-state="pending"]').waitFor({ timeout: 3000 });
      // Meanwhile someone else sells the last one.
      const bob = await mint('bob', 'manager');
      await rest(bob, 'POST', `/items/${itemId}/adjust`, { delta: -1, reason: 'sold' });

      await alice.context.setOffline(false);
      await waitConnected(alice, 15000);
      const refused = p.locator('[data-testid="queued-command"][data-state="conflicted"]');
      await refused.waitFor({ timeout: 15000 });
      assert(await refused.getAttribute('data-code') === 'insufficient_stock', 'the reason is shown');
      await waitText(p, '[data-testid="queued-command"][data-state="conflicted"] [data-testid="queued-state"]', 'Refused: not enough stock');
      await waitText(p, '[data-testid="queue-badge"]', '1 refused');
      await screenshot(alice, 'queued-command-refused');
      // Restocked: a retry is a new decision with a fresh key, and goes through.
      await rest(bob, 'POST', `/items/${itemId}/adjust`, { delta: 3, reason: 'received' });
      const oldKey = await refused.getAttribute('data-key');
      await refused.getByTestId('queued-retry').click();
      const retried = p.locator('[data-testid="queued-command"][data-state="done"]');
      await retried.waitFor({ timeout: 5000 });
      assert(await retried.getAttribute('data-key') !== oldKey, 'the retry has a key of its own');
      await waitText(p, cell('JAM', 'item-qty'), '2', 5000);
      await retried.getByTestId('queued-dismiss').click();
      await p.getByTestId('queue-badge').waitFor({ state: 'hidden', timeout: 3000 });
    },
  },

  {
    name: 'after a server restart the tab reconnects by itself and catches up',
    timeoutMs: 150000,
    async run(ctx) {
      assert(process.env.LARDER_RESTART_CMD, 'LARDER_RESTART_CMD is not set: it restarts the server on the same port and database');
      const store = await freshStore('Hackney');
      await addItem(admin, store, { sku: 'OIL-1L', name: 'Olive oil', quantity: 20, threshold: 2 });
      const alice = await openUser(ctx.browser, 'alice', 'admin', { storeId: store });
      ctx.users.push(alice);
      alice.allowed.push(NETWORK_NOISE.restart);
      await waitText(alice.page, cell('OIL-1L', 'item-qty'), '20');
      const before = (await alice.page.evaluate(() => window.__larder.states)).length;

      await run(process.env.LARDER_RESTART_CMD, { timeout: 90000 });
      // Changed right after the restart, most likely before the tab is back.
      const bobToken = await mint('bob', 'manager');
      const itemId = await row(alice, 'OIL-1L').getAttribute('data-item-id');
      await rest(bobToken, 'POST', `/items/${itemId}/adjust`, { delta: -5, reason: 'sold' });

      await waitConnected(alice, 45000);
      // Back on a WebSocket (a fallback to SSE during the restart would cost presence for a minute).
      await alice.page.locator('[data-testid="conn"][data-state="connected"][data-transport="websocket"]').waitFor({ timeout: 1000 });
      const states = (await alice.page.evaluate(() => window.__larder.states)).slice(before);
      assert(states.includes('reconnecting'), `the indicator showed reconnecting during the restart: ${states}`);
      await waitText(alice.page, cell('OIL-1L', 'item-qty'), '15', 5000);
      // And it is live again.
      await rest(bobToken, 'POST', `/items/${itemId}/adjust`, { delta: -1, reason: 'sold' });
      await waitText(alice.page, cell('OIL-1L', 'item-qty'), '14', 3000);
      await assertNoDuplicates(alice);
      await screenshot(alice, 'after-restart');
    },
  },

  {
    name: 'a change made through REST from outside the browser appears live',
    timeoutMs: 60000,
    async run(ctx) {
      const store = await freshStore('Peckham');
      const itemId = await addItem(admin, store, { sku: 'SALT', name: 'Sea salt', quantity: 8, threshold: 1 });
      const alice = await openUser(ctx.browser, 'alice', 'admin', { storeId: store });
      ctx.users.push(alice);
      await waitText(alice.page, cell('SALT', 'item-qty'), '8');
      const bob = await mint('bob', 'staff');
      await rest(bob, 'POST', `/items/${itemId}/adjust`, { delta: -3, reason: 'wasted', note: 'spilled' });
      await waitText(alice.page, cell('SALT', 'item-qty'), '5', 2000);
      await alice.page.locator('[data-testid="item-row"][data-sku="SALT"][data-changed-by="bob"]').waitFor({ timeout: 1500 });
      const latency = await alice.page.getByTestId('latency').getAttribute('data-latency');
      assert(latency !== '' && Number(latency) >= 0, `the latency of the last event is shown (${latency})`);
      await assertNoDuplicates(alice);
    },
  },

  {
    name: 'saving against a stale version shows a conflict to re-apply or discard',
    timeoutMs: 60000,
    async run(ctx) {
      const store = await freshStore('Islington');
      const itemId = await addItem(admin, store, { sku: 'EGGS', name: 'Eggs', quantity: 30, threshold: 6 });
      const alice = await openUser(ctx.browser, 'alice', 'admin', { storeId: store });
      ctx.users.push(alice);
      alice.allowed.push(NETWORK_NOISE.conflict);
      const p = alice.page;
      await openDetail(alice, 'EGGS');
      await waitText(p, '[data-testid="detail-version"]', '1');
      const bob = await mint('bob', 'manager');
      await rest(bob, 'POST', `/items/${itemId}/adjust`, { delta: -4, reason: 'sold' });
      await p.getByTestId('stale-notice').waitFor({ timeout: 3000 });

      // Re-apply.
      await p.getByTestId('threshold-input').fill('12');
      await p.getByTestId('threshold-save').click();
      await p.getByTestId('conflict').waitFor({ timeout: 3000 });
      await waitText(p, '[data-testid="conflict-quantity"]', '26 each');
      await screenshot(alice, 'conflict');
      await p.getByTestId('conflict-reapply').click();
      await p.getByTestId('conflict').waitFor({ state: 'detached', timeout: 3000 });
      await waitText(p, '[data-testid="detail-threshold"]', '12');
      // The save is over (its answer and the read after it are in) before
      // Bob's next change, so the notice below is about his change alone.
      await p.locator('[data-testid="item-detail"][data-saving="false"]').waitFor({ timeout: 3000 });
      // The page learns of the change from its command's answer; the read
      // model behind GET may apply it a moment later.
      let saved;
      await until(async () => {
        saved = (await rest(bob, 'GET', `/items/${itemId}`)).item;
        return saved.threshold === 12;
      }, { timeoutMs: 3000, message: 'the re-applied threshold in the read model' });
      assert(saved.quantity === 26, `re-applied on top: ${JSON.stringify(saved)}`);

      // Discard.
      await rest(bob, 'POST', `/items/${itemId}/adjust`, { delta: -1, reason: 'sold' });
      await p.getByTestId('stale-notice').waitFor({ timeout: 3000 });
      await p.getByTestId('threshold-input').fill('3');
      await p.getByTestId('threshold-save').click();
      await p.getByTestId('conflict').waitFor({ timeout: 3000 });
      await p.getByTestId('conflict-discard').click();
      await p.getByTestId('conflict').waitFor({ state: 'detached', timeout: 3000 });
      await waitText(p, '[data-testid="detail-qty"]', '25');
      await waitText(p, '[data-testid="detail-threshold"]', '12');
      const kept = await rest(bob, 'GET', `/items/${itemId}`);
      assert(kept.item.threshold === 12, `the discarded change was not written: ${JSON.stringify(kept.item)}`);
    },
  },

  {
    name: 'an item changed by another user shows a notice with refresh and dismiss',
    timeoutMs: 60000,
    async run(ctx) {
      const store = await freshStore('Clapham');
      await addItem(admin, store, { sku: 'SUGAR', name: 'Sugar', quantity: 7, threshold: 2 });
      const { alice, bob } = await twoUsers(ctx, store);
      const p = alice.page;
      await openDetail(alice, 'SUGAR');
      await waitText(p, '[data-testid="detail-qty"]', '7');

      await row(bob, 'SUGAR').getByTestId('item-inc').click();
      await p.getByTestId('stale-notice').waitFor({ timeout: 2000 });
      assert((await p.getByTestId('stale-notice').textContent()).includes('bob'), 'the notice names who changed it');
      await waitText(p, '[data-testid="detail-qty"]', '7', 500); // still what alice was looking at
      await waitText(p, cell('SUGAR', 'item-qty'), '8'); // while the table is live
      await screenshot(alice, 'updated-by-another-user');
      await p.getByTestId('stale-refresh').click();
      await p.getByTestId('stale-notice').waitFor({ state: 'detached', timeout: 3000 });
      await waitText(p, '[data-testid="detail-qty"]', '8');

      await row(bob, 'SUGAR').getByTestId('item-dec').click();
      await p.getByTestId('stale-notice').waitFor({ timeout: 2000 });
      await p.getByTestId('stale-dismiss').click();
      await p.getByTestId('stale-notice').waitFor({ state: 'detached', timeout: 3000 });
      // Dismissed, not refreshed: still what she was looking at (a save now would conflict).
      await waitText(p, '[data-testid="detail-qty"]', '8', 500);
      await waitText(p, cell('SUGAR', 'item-qty'), '7');

      // Her own change does not raise the notice. Reopened, the detail is current again.
      await p.getByTestId('detail-close').click();
      await p.getByTestId('item-detail').waitFor({ state: 'detached', timeout: 3000 });
      await openDetail(alice, 'SUGAR');
      await waitText(p, '[data-testid="detail-qty"]', '7');
      await p.getByTestId('adjust-delta').fill('2');
      await p.getByTestId('adjust-reason').selectOption('received');
      await p.getByTestId('adjust-save').click();
      await waitText(p, '[data-testid="detail-qty"]', '9');
      assert(await p.getByTestId('stale-notice').count() === 0, 'no notice for her own change');
    },
  },

  {
    name: 'a removed item: the detail view says so and returns to the list',
    timeoutMs: 60000,
    async run(ctx) {
      const store = await freshStore('Dalston');
      const itemId = await addItem(admin, store, { sku: 'YEAST', name: 'Yeast', quantity: 3, threshold: 1 });
      await addItem(admin, store, { sku: 'WATER', name: 'Water', quantity: 3, threshold: 1 });
      const alice = await openUser(ctx.browser, 'alice', 'admin', { storeId: store });
      ctx.users.push(alice);
      const p = alice.page;
      await openDetail(alice, 'YEAST');
      await screenshot(alice, 'item-detail');
      const bob = await mint('bob', 'manager');
      await rest(bob, 'POST', `/items/${itemId}/remove`);
      await p.getByTestId('removed-notice').waitFor({ timeout: 3000 });
      assert((await p.getByTestId('removed-notice').textContent()).includes('removed by bob'), 'the notice says who removed it');
      await p.getByTestId('item-detail').waitFor({ state: 'detached', timeout: 3000 });
      await row(alice, 'YEAST').waitFor({ state: 'detached', timeout: 3000 });
      await row(alice, 'WATER').waitFor();
      const hash = await p.evaluate(() => location.hash);
      assert(hash === `#/stores/${store}`, `back on the store's list (${hash})`);
      await waitText(p, `[data-testid="store-link"][data-store-id="${store}"] [data-testid="store-item-count"]`, '1', 3000);
    },
  },

  {
    name: 'a change is undone and redone from the activity list, live in the other tab',
    timeoutMs: 60000,
    async run(ctx) {
      const store = await freshStore('Brixton');
      await addItem(admin, store, { sku: 'RICE', name: 'Rice', quantity: 10, threshold: 2 });
      const { alice, bob } = await twoUsers(ctx, store);
      await waitText(alice.page, cell('RICE', 'item-qty'), '10');

      // bob takes one out; alice sees it, and undoes it from her activity list.
      await row(bob, 'RICE').getByTestId('item-dec').click();
      await waitText(alice.page, cell('RICE', 'item-qty'), '9', 5000);
      const original = '[data-testid="activity-entry"][data-type="StockAdjusted"][data-undoes=""]';
      await alice.page.locator(`${original} [data-testid="activity-undo"]`).first().click();

      // Both tabs show the stock back, and the compensating change live.
      await waitText(bob.page, cell('RICE', 'item-qty'), '10', 5000);
      await waitText(alice.page, cell('RICE', 'item-qty'), '10', 5000);
      const undo = '[data-testid="activity-entry"][data-type="StockAdjusted"]:not([data-undoes=""])';
      await bob.page.locator(undo).first().waitFor({ timeout: 5000 });
      assert((await bob.page.locator(`${undo} .who`).first().textContent()) === 'alice', 'bob sees that alice undid it');
      await screenshot(bob, 'activity-undo');

      // Undoing the original again is refused (409) with a clear message; nothing changes.
      alice.allowed.push(NETWORK_NOISE.conflict);
      await alice.page.locator(`${original} [data-testid="activity-undo"]`).first().click();
      await alice.page.locator('[data-testid="toast"][data-kind="error"]', { hasText: 'already undone' }).waitFor({ timeout: 5000 });
      await waitText(bob.page, cell('RICE', 'item-qty'), '10');

      // bob redoes it from the undo's entry: the one taken out is out again.
      await bob.page.locator(`${undo} [data-testid="activity-redo"]`).first().click();
      await waitText(alice.page, cell('RICE', 'item-qty'), '9', 5000);
      await waitText(bob.page, cell('RICE', 'item-qty'), '9', 5000);
      await assertNoDuplicates(alice);
      await assertNoDuplicates(bob);
    },
  },
  {
    name: 'the bell updates live in one tab when stock is sold in another',
    timeoutMs: 60000,
    async run(ctx) {
      const store = await freshStore('Bell');
      await addItem(admin, store, { sku: 'MILK-1L', name: 'Milk 1 l', quantity: 4, threshold: 2 });
      // A manager (told of low stock) and a staff member (not), each in
      // their own browser; new users per run, so their inboxes start empty.
      const suffix = Date.now().toString(36);
      const mia = await openUser(ctx.browser, `mia-${suffix}`, 'manager', { storeId: store });
      ctx.users.push(mia);
      const sam = await openUser(ctx.browser, `sam-${suffix}`, 'staff', { storeId: store });
      ctx.users.push(sam);
      await waitText(mia.page, '[data-testid="bell-count"]', '0');
      await waitText(sam.page, '[data-testid="bell-count"]', '0');

      // sam sells two: 4 -> 2, at the threshold: the manager's bell goes up live.
      await row(sam, 'MILK-1L').getByTestId('item-dec').click();
      await waitText(sam.page, cell('MILK-1L', 'item-qty'), '3');
      await row(sam, 'MILK-1L').getByTestId('item-dec').click();
      await waitText(mia.page, '[data-testid="bell-count"]', '1', 5000);
      await mia.page.getByTestId('bell').click();
      await mia.page.locator('[data-testid="notification"][data-kind="low_stock"][data-read="false"]').waitFor();
      await screenshot(mia, 'bell-open');
      assert(await sam.page.locator('[data-testid="bell-count"]').textContent() === '0', 'staff are not told of low stock');

      // Read it: the count goes down (and in every tab of hers, live).
      await mia.page.getByTestId('notification-read').first().click();
      await waitText(mia.page, '[data-testid="bell-count"]', '0', 5000);
      await mia.page.locator('[data-testid="notification"][data-read="true"]').waitFor();

      // Out of stock next: one more, then mark all read from the panel.
      await row(sam, 'MILK-1L').getByTestId('item-dec').click();
      await waitText(sam.page, cell('MILK-1L', 'item-qty'), '1');
      await row(sam, 'MILK-1L').getByTestId('item-dec').click();
      await waitText(mia.page, '[data-testid="bell-count"]', '1', 5000);
      await mia.page.getByTestId('bell-read-all').click();
      await waitText(mia.page, '[data-testid="bell-count"]', '0', 5000);

      // Preferences: low stock off, then the panel shows it off.
      await mia.page.getByTestId('bell-preferences').locator('summary').click();
      await mia.page.getByTestId('pref-enabled-low_stock').uncheck();
      await mia.page.waitForFunction(
        () => document.querySelector('[data-testid="pref-enabled-low_stock"]')?.checked === false,
        null,
        { timeout: 5000, polling: 50 },
      );
      const prefs = await rest(await mint(`mia-${suffix}`, 'manager'), 'GET', '/notifications/preferences');
      assert(prefs.preferences.find((p) => p.kind === 'low_stock')?.enabled === false, 'the preference is stored');
    },
  },
  ...orderTests,
];

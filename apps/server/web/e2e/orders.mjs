// The browser scenarios of orders: a till and a kitchen screen, each in a
// browser context of its own (two devices), against the real server. The
// menu is set up over REST; everything after that goes through the pages.
// Waits are on DOM conditions, never on sleeps.

import { addItem, assert, createStore, mint, openUser, rest, screenshot, waitText } from './helpers.mjs';

/** A store with one bun in stock, a grill station and a burger (one bun) on the menu. */
async function restaurant(name) {
  const admin = await mint('alice', 'admin');
  const store = await createStore(admin, `${name} ${Date.now() % 100000}`);
  const bun = await addItem(admin, store, { sku: 'BUN', name: 'Bun', quantity: 1, threshold: 0 });
  await rest(admin, 'PUT', `/stores/${store}/menu/stations/grill`, { name: 'Grill', warn_after_secs: 300, late_after_secs: 600 });
  const added = await rest(admin, 'POST', `/stores/${store}/menu/items`, {
    name: 'Burger', price: { amount_minor: 1250, currency: 'GBP' }, station: 'grill', recipe: [{ item_id: bun, quantity: 1 }],
  });
  return { admin, store, bun, burger: added.menu_item_id };
}

async function goTo(user, hash, testid) {
  await user.page.evaluate((h) => { location.hash = h; }, hash);
  await user.page.getByTestId(testid).waitFor();
}

export const orderTests = [
  {
    name: 'an order fired at the till reaches the kitchen live, the kitchen bumps it, the till sees it ready',
    timeoutMs: 90000,
    async run(ctx) {
      const { admin, store, bun, burger } = await restaurant('Bistro');
      const till = await openUser(ctx.browser, 'carol', 'staff');
      ctx.users.push(till);
      const kitchen = await openUser(ctx.browser, 'dan', 'staff');
      ctx.users.push(kitchen);
      // The kitchen is a tablet: touch, a smaller screen.
      await kitchen.page.setViewportSize({ width: 1024, height: 768 });
      await goTo(kitchen, `#/stores/${store}/kitchen`, 'station-picker');
      await kitchen.page.locator('[data-testid="station-link"][data-station="grill"]').click();
      await kitchen.page.getByTestId('kitchen-empty').waitFor();
      await waitText(kitchen.page, '[data-testid="kitchen-title"]', 'Kitchen · Grill');
      const head = await kitchen.page.locator('.kitchen-head').textContent();
      assert(head.includes('amber at 5:00, red at 10:00') && !head.includes('null'), `the station's timers in the head: ${head}`);
      // Sound on: the tap that turns it on plays it once (browsers allow sound after a gesture).
      await kitchen.page.getByTestId('kitchen-sound').check();
      await kitchen.page.waitForFunction(() => window.__larder.chimes === 1);

      // The till: a table, a burger, fire.
      await goTo(till, `#/stores/${store}/till`, 'menu-grid');
      const t = till.page;
      await t.getByTestId('order-table').fill('12');
      const burgerButton = t.locator(`[data-testid="menu-item"][data-menu-item-id="${burger}"]`);
      await burgerButton.click();
      await t.locator('[data-testid="order-line"][data-status="pending"]').waitFor({ timeout: 5000 });
      await waitText(t, '[data-testid="order-label"]', 'Table 12 · 2 covers');
      await t.locator('[data-testid="open-order"]').first().waitFor({ timeout: 5000 });
      const fired = Date.now();
      await t.getByTestId('order-fire').click();

      // Live on the kitchen screen: the ticket with its table and line, on time.
      const ticket = kitchen.page.locator('[data-testid="ticket"]', { hasText: 'Table 12' });
      await ticket.waitFor({ timeout: 5000 });
      const reachedMs = Date.now() - fired;
      assert(reachedMs < 3000, `the ticket reached the kitchen ${reachedMs} ms after the fire was clicked`);
      assert((await ticket.getAttribute('data-level')) === 'ok', 'a new ticket is on time (not amber or red)');
      await ticket.locator('[data-testid="ticket-line"]', { hasText: 'Burger' }).waitFor();
      await kitchen.page.waitForFunction(() => window.__larder.chimes === 2, null, { timeout: 3000 });
      await t.locator('[data-testid="line-status"]', { hasText: 'Fired' }).waitFor({ timeout: 5000 });
      await screenshot(kitchen, 'kitchen-ticket');

      // The fire took the only bun: the burger is 86'd on the till, live; a delivery brings it back.
      await t.locator(`[data-testid="menu-item"][data-menu-item-id="${burger}"][data-available="false"]`).waitFor({ timeout: 5000 });
      assert(await burgerButton.isDisabled(), 'an 86\'d dish cannot be tapped');
      await rest(admin, 'POST', `/items/${bun}/adjust`, { delta: 5, reason: 'received' });
      await t.locator(`[data-testid="menu-item"][data-menu-item-id="${burger}"][data-available="true"]`).waitFor({ timeout: 5000 });

      // Bump by tap: the ticket leaves the screen, the till sees the order ready.
      await ticket.getByTestId('ticket-bump').click();
      await ticket.waitFor({ state: 'detached', timeout: 5000 });
      await kitchen.page.getByTestId('recall-line').first().waitFor();
      await t.locator('[data-testid="order-status"][data-status="ready"]').waitFor({ timeout: 5000 });
      await t.locator('[data-testid="line-status"]', { hasText: 'Ready' }).waitFor();
      await screenshot(till, 'till-ready');

      // Recall by keyboard (R): back on the screen, the till sees it open again;
      // then bump by keyboard (1): ready again.
      await kitchen.page.locator('body').press('r');
      await ticket.waitFor({ timeout: 5000 });
      await t.locator('[data-testid="order-status"][data-status="open"]').waitFor({ timeout: 5000 });
      await kitchen.page.locator('body').press('1');
      await ticket.waitFor({ state: 'detached', timeout: 5000 });
      await t.locator('[data-testid="order-status"][data-status="ready"]').waitFor({ timeout: 5000 });

      // The order board shows it ready; serving it there moves it on the till too.
      await goTo(kitchen, `#/stores/${store}/board`, 'board');
      const card = kitchen.page.locator('[data-testid="board-ready"] [data-testid="board-order"]', { hasText: 'Table 12' });
      await card.waitFor({ timeout: 5000 });
      await waitText(kitchen.page, '[data-testid="board-ready"] [data-testid="board-progress"]', '1/1 ready');
      await screenshot(kitchen, 'board-ready');
      await card.getByTestId('board-serve').click();
      await kitchen.page.locator('[data-testid="board-served"] [data-testid="board-order"]', { hasText: 'Table 12' }).waitFor({ timeout: 5000 });
      await t.locator('[data-testid="order-status"][data-status="served"]').waitFor({ timeout: 5000 });
      await t.getByTestId('order-complete').click();
      await t.locator('[data-testid="order-status"][data-status="completed"]').waitFor({ timeout: 5000 });
      await kitchen.page.locator('[data-testid="board-order"]', { hasText: 'Table 12' }).waitFor({ state: 'detached', timeout: 5000 });
    },
  },
  {
    name: 'the dashboard updates live after an order: figures and the orders chart',
    timeoutMs: 60000,
    async run(ctx) {
      const { admin, store, burger } = await restaurant('Canteen');
      const manager = await openUser(ctx.browser, 'erin', 'manager');
      ctx.users.push(manager);
      await goTo(manager, `#/stores/${store}/dashboard`, 'dashboard');
      const m = manager.page;
      await waitText(m, '[data-testid="dash-orders-value"]', '0');
      await m.getByTestId('dash-orders-chart').waitFor();
      assert(await m.locator('[data-testid="dash-orders-chart"] rect').count() === 0, 'no bars before the first order');

      // An order is opened, fired, made ready, served and completed over REST (another device).
      const order = await rest(admin, 'POST', `/stores/${store}/orders`, { service: { kind: 'takeaway' }, currency: 'GBP' });
      const line = await rest(admin, 'POST', `/orders/${order.id}/lines`, { menu_item_id: burger, quantity: 1 });
      await rest(admin, 'POST', `/orders/${order.id}/fire`, {});
      await waitText(m, '[data-testid="dash-orders-value"]', '1', 5000);
      await waitText(m, '[data-testid="dash-open-value"]', '1', 5000);
      await m.locator('[data-testid="dash-orders-chart"] rect').first().waitFor({ timeout: 5000 });
      await rest(admin, 'POST', `/orders/${order.id}/lines/${line.line_id}/ready`, {});
      await rest(admin, 'POST', `/orders/${order.id}/serve`, {});
      await rest(admin, 'POST', `/orders/${order.id}/complete`, {});
      // Revenue: £12.50; the order is no longer open; the only bun ran out.
      await m.waitForFunction(() => document.querySelector('[data-testid="dash-revenue-value"]')?.textContent.includes('12.50'), null, { timeout: 5000 });
      await waitText(m, '[data-testid="dash-open-value"]', '0', 5000);
      await m.locator('[data-testid="dash-top"] li', { hasText: 'Burger' }).waitFor({ timeout: 5000 });
      await m.locator('[data-testid="dash-stations"] th', { hasText: 'grill' }).waitFor({ timeout: 5000 });
      await m.locator('[data-testid="dash-alerts-chart"] rect').first().waitFor({ timeout: 5000 });
      await screenshot(manager, 'dashboard');
    },
  },
];

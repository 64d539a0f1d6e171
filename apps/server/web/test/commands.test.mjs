// Unit tests of the command side (larder-commands.js, wired into
// LarderClient): idempotency keys across retries, the offline queue, its
// persistence, order and states. A fake fetch plays the server, a fake
// clock the time. Run: node --test test/

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import {
  CommandError, LarderClient, isTransientStatus, memoryStorage, newIdempotencyKey, retryAfterMs, sendCommand,
} from '../larder-client.js';

const flush = () => new Promise((resolve) => setImmediate(resolve));

/** A manual clock: timers fire only when the test advances time. */
function fakeClock(start = 1_700_000_000_000) {
  let now = start;
  let seq = 0;
  const timers = new Map();
  return {
    now: () => now,
    setTimeout: (fn, ms) => { const id = ++seq; timers.set(id, { at: now + Math.max(0, Number(ms) || 0), fn }); return id; },
    clearTimeout: (id) => timers.delete(id),
    get pending() { return timers.size; },
    async advance(ms) {
      const end = now + ms;
      for (;;) {
        await flush();
        let next = null;
        for (const [id, t] of timers) if (t.at <= end && (!next || t.at < next[1].at)) next = [id, t];
        if (!next) break;
        timers.delete(next[0]);
        now = next[1].at;
        next[1].fn();
      }
      now = end;
      await flush();
    },
  };
}

/**
 * A fake server behind fetch. `script` answers each request in turn: a
 * function (request) => Response | Error to throw | undefined (default: the
 * server's own answer). The default applies a command once per key, as
 * Larder does, and answers a repeat of a key as a replay.
 */
function fakeServer() {
  const requests = [];
  const applied = new Map(); // key -> {status, body}
  const script = [];
  let online = true;
  let version = 0;
  const answer = (status, body, headers = {}) => new Response(body == null ? '' : JSON.stringify(body), { status, headers });
  const fetch = async (url, init) => {
    const request = { url, method: init.method, headers: init.headers, body: init.body ? JSON.parse(init.body) : undefined };
    requests.push(request);
    if (!online) throw new TypeError('Failed to fetch');
    const step = script.shift();
    const scripted = typeof step === 'function' ? step(request) : step;
    if (scripted instanceof Error) throw scripted;
    if (scripted) return scripted;
    const key = init.headers['idempotency-key'];
    if (key && applied.has(key)) {
      const original = applied.get(key);
      return answer(original.status, original.body, { 'idempotent-replayed': 'true' });
    }
    version++;
    const result = { status: 200, body: { id: 'item-1', version, position: 100 + version, events: ['StockAdjusted'] } };
    if (key) applied.set(key, result);
    return answer(result.status, result.body);
  };
  return {
    fetch, requests, applied, script, answer,
    set online(value) { online = value; },
    /** Lets the request through, applies it, then loses the answer on the way back. */
    loseAnswer() { return (request) => { fetch(request.url, { method: request.method, headers: request.headers, body: JSON.stringify(request.body) }); requests.pop(); return new TypeError('Failed to fetch'); }; },
    keys: () => requests.map((r) => r.headers['idempotency-key']),
  };
}

/** sendCommand options wired to a fake server and clock. */
function sendOptions(server, clock, extra = {}) {
  return {
    fetch: server.fetch,
    apiUrl: 'http://larder.test/api/v1',
    token: async () => 'tok',
    random: () => 0.5,
    now: clock.now,
    sleep: (ms) => new Promise((resolve) => clock.setTimeout(resolve, ms)),
    ...extra,
  };
}

/** A LarderClient with a fake WebSocket (answered by `welcome()`), fake fetch and clock. */
function setupClient({ storage = memoryStorage(), queueKey = 'acme/alice', server = fakeServer(), clock = fakeClock(), ...options } = {}) {
  const sockets = [];
  class WS {
    constructor(url) { this.url = url; this.readyState = 0; this.sent = []; sockets.push(this); }
    send(data) { this.sent.push(JSON.parse(data)); }
    close() { this.readyState = 3; }
  }
  const env = new EventTarget();
  let online = true;
  const changes = [];
  const client = new LarderClient({
    url: 'http://larder.test', token: 'tok', WebSocket: WS, EventSource: null, fetch: server.fetch,
    storage, queueKey, random: () => 0.5, now: clock.now, setTimeout: clock.setTimeout, clearTimeout: clock.clearTimeout,
    env, document: null, isOnline: () => online, ...options,
  });
  client.on('command', (c) => changes.push(c));
  const t = {
    client, server, clock, storage, changes, sockets,
    async welcome() {
      const ws = sockets.at(-1);
      ws.readyState = 1;
      ws.onopen?.({});
      await flush();
      const auth = ws.sent.find((m) => m.type === 'auth');
      ws.onmessage?.({ data: JSON.stringify({ type: 'welcome', id: auth.id, protocol: 1, connection_id: 'c', heartbeat_ms: 25000, head: 1, user: 'alice', expires_at: Math.floor(clock.now() / 1000) + 3600 }) });
      await flush();
      await flush();
    },
    goOffline() { online = false; server.online = false; env.dispatchEvent(new Event('offline')); },
    goOnline() { online = true; server.online = true; env.dispatchEvent(new Event('online')); },
    states: () => client.commands.list().map((e) => e.state),
    /** Waits (in fake time) until the queue stops sending. */
    async settle(ms = 60000) { await clock.advance(ms); },
  };
  return t;
}

// ---- keys and retries ------------------------------------------------------------

describe('idempotency keys', () => {
  it('are random UUIDs, also without crypto.randomUUID (plain http on a LAN)', () => {
    const a = newIdempotencyKey();
    assert.match(a, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.notEqual(a, newIdempotencyKey());
    const real = Object.getOwnPropertyDescriptor(globalThis, 'crypto');
    const webcrypto = globalThis.crypto;
    Object.defineProperty(globalThis, 'crypto', { value: { getRandomValues: (b) => webcrypto.getRandomValues(b) }, configurable: true });
    try {
      assert.match(newIdempotencyKey(), /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    } finally {
      Object.defineProperty(globalThis, 'crypto', real);
    }
  });

  it('one key for every retry of a command: network error, 503, 429 with Retry-After', async () => {
    const server = fakeServer();
    const clock = fakeClock();
    server.script.push(new TypeError('Failed to fetch'));
    server.script.push(server.answer(503, { code: 'unavailable', message: 'down' }));
    server.script.push(server.answer(429, { code: 'too_many_requests', message: 'slow down' }, { 'retry-after': '7' }));
    const sleeps = [];
    const options = sendOptions(server, clock, { sleep: (ms) => { sleeps.push(ms); return Promise.resolve(); } });
    const res = await sendCommand({ path: '/items/1/adjust', body: { delta: 1, reason: 'received' } }, options);
    assert.equal(res.status, 200);
    assert.equal(res.attempts, 4);
    const keys = server.keys();
    assert.equal(keys.length, 4);
    assert.equal(new Set(keys).size, 1, `the same key on every attempt: ${keys}`);
    assert.equal(res.key, keys[0]);
    // Backoff with jitter (random 0.5 of 500, 1000 ms), then the server's 7 s.
    assert.deepEqual(sleeps, [250, 500, 7000]);
  });

  it('a lost answer is retried with the same key and the server replays it: applied once', async () => {
    const server = fakeServer();
    const clock = fakeClock();
    server.script.push(server.loseAnswer());
    const done = sendCommand({ path: '/items/1/adjust', body: { delta: 1, reason: 'received' } }, sendOptions(server, clock));
    await clock.advance(10000);
    const res = await done;
    assert.equal(res.replayed, true);
    assert.equal(server.applied.size, 1);
    assert.equal(res.body.version, 1, 'the original answer');
  });

  it("uses the caller's key, and refuses one the server would refuse", async () => {
    const server = fakeServer();
    const clock = fakeClock();
    const res = await sendCommand({ path: '/stores', body: { name: 'Soho' }, key: 'order-42' }, sendOptions(server, clock));
    assert.equal(res.key, 'order-42');
    assert.equal(server.requests[0].headers['idempotency-key'], 'order-42');
    await assert.rejects(sendCommand({ path: '/stores', body: {}, key: 'has space' }, sendOptions(server, clock)), TypeError);
    assert.equal(server.requests.length, 1, 'nothing sent with a bad key');
  });

  it('does not retry a refusal: 409, 422, 400 are final', async () => {
    for (const [status, code] of [[409, 'version_conflict'], [422, 'insufficient_stock'], [400, 'invalid_body'], [422, 'idempotency_key_reused']]) {
      const server = fakeServer();
      server.script.push(server.answer(status, { code, message: 'no', details: { current_version: 3 } }));
      const error = await sendCommand({ path: '/items/1/adjust', body: {} }, sendOptions(server, fakeClock())).catch((e) => e);
      assert.ok(error instanceof CommandError);
      assert.equal(error.status, status);
      assert.equal(error.code, code);
      assert.equal(error.transient, false);
      assert.equal(server.requests.length, 1, `${status} sent once`);
    }
  });

  it('gives up after maxAttempts with a transient error carrying the key, and bounds Retry-After', async () => {
    const server = fakeServer();
    server.online = false;
    const sleeps = [];
    const error = await sendCommand({ path: '/x', body: {} }, sendOptions(server, fakeClock(), {
      maxAttempts: 3, random: () => 0.999, sleep: (ms) => { sleeps.push(ms); return Promise.resolve(); },
    })).catch((e) => e);
    assert.equal(error.transient, true);
    assert.equal(error.code, 'network_error');
    assert.equal(error.attempts, 3);
    assert.equal(error.key, server.keys()[0]);
    assert.deepEqual(sleeps, [499, 999], 'backoff grows');
    const far = fakeServer();
    far.script.push(far.answer(503, { code: 'unavailable' }, { 'retry-after': '86400' }));
    const waited = [];
    await sendCommand({ path: '/x', body: {} }, sendOptions(far, fakeClock(), { sleep: (ms) => { waited.push(ms); return Promise.resolve(); } }));
    assert.deepEqual(waited, [30000]);
  });

  it('refreshes an expired token once and sends again with the same key', async () => {
    const server = fakeServer();
    server.script.push(server.answer(401, { code: 'token_expired', message: 'expired' }));
    let token = 'old';
    const res = await sendCommand({ path: '/x', body: {} }, sendOptions(server, fakeClock(), {
      token: async () => token, refreshToken: async () => { token = 'new'; },
    }));
    assert.equal(res.attempts, 1, 'the refusal of the token is not an attempt');
    assert.deepEqual(server.requests.map((r) => r.headers.authorization), ['Bearer old', 'Bearer new']);
    assert.equal(new Set(server.keys()).size, 1);
  });

  it('reads Retry-After in seconds or as a date, and classifies statuses', () => {
    assert.equal(retryAfterMs('3', 0), 3000);
    assert.equal(retryAfterMs(new Date(10_000).toUTCString(), 4_000), 6000);
    assert.equal(retryAfterMs('soon'), null);
    assert.equal(retryAfterMs(null), null);
    assert.deepEqual([0, 408, 429, 500, 503, 400, 401, 404, 409, 422].map(isTransientStatus),
      [true, true, true, true, true, false, false, false, false, false]);
  });
});

// ---- the offline queue -------------------------------------------------------------

describe('offline queue', () => {
  const adjust = (delta, label = `adjust ${delta}`) => ['/items/1/adjust', { body: { delta, reason: 'received' }, label }];

  it('holds commands while offline and sends them in order, once each, after the reconnect', async () => {
    const t = setupClient();
    t.client.connect();
    await t.welcome();
    t.goOffline();
    assert.equal(t.client.state, 'offline');
    const a = t.client.enqueue(...adjust(1));
    const b = t.client.enqueue(...adjust(2));
    const c = t.client.enqueue(...adjust(3));
    await t.settle(5000);
    assert.deepEqual(t.states(), ['pending', 'pending', 'pending']);
    assert.equal(t.server.requests.length, 0, 'nothing sent while offline');
    assert.deepEqual(t.changes.map((x) => x.change), ['queued', 'queued', 'queued']);

    t.goOnline();
    await t.welcome();
    await t.settle(1000);
    assert.deepEqual(t.states(), ['done', 'done', 'done']);
    assert.deepEqual(t.server.requests.map((r) => r.body.delta), [1, 2, 3], 'in the order they were made');
    assert.deepEqual(t.server.keys(), [a.key, b.key, c.key], 'each with the key it got when queued');
    assert.equal(t.server.applied.size, 3);
    const done = t.client.commands.list()[0];
    assert.equal(done.result.status, 200);
    assert.equal(done.result.body.position, 101);
    assert.deepEqual(t.changes.filter((x) => x.entry.id === a.id).map((x) => x.change), ['queued', 'sending', 'done']);
  });

  it('sends at once when the connection is up', async () => {
    const t = setupClient();
    t.client.connect();
    await t.welcome();
    t.client.enqueue(...adjust(1));
    await t.settle(10);
    assert.deepEqual(t.states(), ['done']);
  });

  it('waits while the realtime connection is down even if the browser says online', async () => {
    const t = setupClient();
    t.client.connect();
    await t.welcome();
    t.sockets.at(-1).onclose?.({ code: 1006, reason: '' });
    assert.equal(t.client.state, 'reconnecting');
    t.client.enqueue(...adjust(1));
    await flush();
    assert.equal(t.server.requests.length, 0);
    await t.clock.advance(t.client.stateInfo.delayMs);
    await t.welcome();
    await t.settle(10);
    assert.deepEqual(t.states(), ['done']);
  });

  it('an answer lost after the server applied it: retried with the same key, counted done, applied once', async () => {
    const t = setupClient();
    t.client.connect();
    await t.welcome();
    t.goOffline();
    const queued = t.client.enqueue(...adjust(5));
    t.server.script.push(t.server.loseAnswer());
    t.goOnline();
    await t.welcome();
    await t.settle(10000);
    const [entry] = t.client.commands.list();
    assert.equal(entry.state, 'done');
    assert.equal(entry.result.replayed, true, 'answered from the key');
    assert.equal(entry.attempts, 2);
    assert.equal(t.server.applied.size, 1, 'applied once');
    assert.deepEqual(t.server.keys(), [queued.key, queued.key]);
  });

  it('keeps a command pending with its key when the server stays unreachable, and goes on later in order', async () => {
    const t = setupClient({ commandRetry: { maxAttempts: 2 } });
    t.client.connect();
    await t.welcome();
    t.server.online = false; // the browser still thinks it is online
    const a = t.client.enqueue(...adjust(1));
    t.client.enqueue(...adjust(2));
    await t.settle(2000);
    const [first, second] = t.client.commands.list();
    assert.equal(first.state, 'pending');
    assert.equal(first.error.code, 'network_error');
    assert.equal(second.state, 'pending');
    assert.ok(t.server.requests.every((r) => r.body.delta === 1), 'the second never overtakes the first');
    t.server.online = true;
    await t.settle(60000);
    assert.deepEqual(t.states(), ['done', 'done']);
    assert.ok(t.server.keys().slice(0, -1).every((k) => k === a.key), 'the first kept its key through every round');
  });

  it('a refusal makes the command conflicted with the code; later commands still go', async () => {
    const t = setupClient();
    t.client.connect();
    await t.welcome();
    t.goOffline();
    t.client.enqueue(...adjust(-50, 'take 50'));
    t.client.enqueue(...adjust(1));
    t.server.script.push(t.server.answer(422, { code: 'insufficient_stock', message: 'not enough stock', details: { quantity: 3 } }));
    t.goOnline();
    await t.welcome();
    await t.settle(1000);
    const [refused, next] = t.client.commands.list();
    assert.equal(refused.state, 'conflicted');
    assert.equal(refused.error.code, 'insufficient_stock');
    assert.equal(refused.error.status, 422);
    assert.deepEqual(refused.error.details, { quantity: 3 });
    assert.equal(next.state, 'done');
    assert.equal(t.server.requests.length, 2, 'a refusal is not retried by itself');
  });

  it('a conflicted command: retry sends it again as a new decision (fresh key, changes applied); dismiss drops it', async () => {
    const t = setupClient();
    t.client.connect();
    await t.welcome();
    t.server.script.push(t.server.answer(409, { code: 'version_conflict', message: 'changed', details: { current_version: 4 } }));
    const first = t.client.enqueue('/items/1/threshold', { body: { threshold: 5 }, ifMatch: 2 });
    await t.settle(100);
    assert.equal(t.client.commands.get(first.id).state, 'conflicted');
    const again = t.client.commands.retry(first.id, { ifMatch: 4 });
    assert.notEqual(again.key, first.key);
    await t.settle(100);
    assert.equal(t.client.commands.get(first.id), null, 'the conflicted one is gone');
    assert.equal(t.client.commands.get(again.id).state, 'done');
    assert.equal(t.server.requests[1].headers['if-match'], '"4"');
    assert.equal(t.server.requests[1].headers['idempotency-key'], again.key);

    t.server.script.push(t.server.answer(422, { code: 'item_removed', message: 'gone' }));
    const gone = t.client.enqueue(...adjust(1));
    await t.settle(100);
    assert.equal(t.client.commands.dismiss(gone.id), true);
    assert.equal(t.client.commands.get(gone.id), null);
    assert.equal(t.client.commands.retry('nope'), null);
  });

  it('survives a reload: a new client of the same user sends the stored commands with their keys', async () => {
    const storage = memoryStorage();
    const server = fakeServer();
    const first = setupClient({ storage, server });
    first.client.connect();
    await first.welcome();
    first.goOffline();
    const a = first.client.enqueue(...adjust(1));
    const b = first.client.enqueue(...adjust(2));
    first.client.close(); // the page goes away
    server.online = true; // and is opened again once the network is back

    const other = setupClient({ storage, server: fakeServer(), queueKey: 'acme/bob' });
    assert.deepEqual(other.client.commands.list(), [], "another user's queue is their own");

    const reloaded = setupClient({ storage, server });
    assert.deepEqual(reloaded.client.commands.list().map((e) => [e.key, e.state, e.label]), [[a.key, 'pending', 'adjust 1'], [b.key, 'pending', 'adjust 2']]);
    reloaded.client.connect();
    await reloaded.welcome();
    await reloaded.settle(1000);
    assert.deepEqual(reloaded.states(), ['done', 'done']);
    assert.deepEqual(server.keys(), [a.key, b.key]);
    const stored = JSON.parse(storage.getItem('larder.commands.v1:acme/alice'));
    assert.deepEqual(stored.entries.map((e) => e.state), ['done', 'done'], 'the outcome is stored too');
  });

  it('a command on the wire when the page went away is sent again with its key: the server replays it', async () => {
    const storage = memoryStorage();
    const server = fakeServer();
    const first = setupClient({ storage, server });
    first.client.connect();
    await first.welcome();
    let reachServer;
    server.script.push(() => new Promise((resolve) => { reachServer = resolve; }));
    const a = first.client.enqueue(...adjust(1));
    await flush();
    assert.equal(first.client.commands.get(a.id).sending, true);
    // The server applied it; the page was closed before the answer came.
    server.applied.set(a.key, { status: 200, body: { version: 1, position: 7 } });

    const reloaded = setupClient({ storage, server });
    assert.equal(reloaded.client.commands.get(a.id).sending, false);
    reloaded.client.connect();
    await reloaded.welcome();
    await reloaded.settle(100);
    const entry = reloaded.client.commands.get(a.id);
    assert.equal(entry.state, 'done');
    assert.equal(entry.result.replayed, true);
    assert.equal(entry.result.body.position, 7);
    reachServer?.(server.answer(200, {}));
  });

  it('is bounded: a full queue refuses new commands with queue_full; done ones make room', async () => {
    const t = setupClient({ queueLimit: 3 });
    t.client.connect();
    await t.welcome();
    t.client.enqueue(...adjust(1));
    await t.settle(10);
    t.goOffline();
    t.client.enqueue(...adjust(2));
    t.client.enqueue(...adjust(3));
    t.client.enqueue(...adjust(4)); // the done one is pruned to make room
    assert.deepEqual(t.states(), ['pending', 'pending', 'pending']);
    assert.throws(() => t.client.enqueue(...adjust(5)), (e) => e instanceof CommandError && e.code === 'queue_full');
    assert.equal(t.client.commands.list().length, 3);
  });

  it('a pending command can be dismissed before it is sent, not while it is on the wire', async () => {
    const t = setupClient();
    t.client.connect();
    await t.welcome();
    t.goOffline();
    const a = t.client.enqueue(...adjust(1));
    assert.equal(t.client.commands.dismiss(a.id), true);
    t.goOnline();
    await t.welcome();
    await t.settle(100);
    assert.equal(t.server.requests.length, 0);
    let answer;
    t.server.script.push(() => new Promise((resolve) => { answer = resolve; }));
    const b = t.client.enqueue(...adjust(2));
    await flush();
    assert.equal(t.client.commands.dismiss(b.id), false, 'on the wire: it may be applied already');
    answer(t.server.answer(200, { version: 1, position: 1 }));
    await t.settle(10);
    assert.equal(t.client.commands.get(b.id).state, 'done');
    t.client.commands.clearDone();
    assert.deepEqual(t.client.commands.list(), []);
  });

  it('a command queued in another tab of the same user is taken up from storage', async () => {
    const storage = memoryStorage();
    const tabA = setupClient({ storage });
    const tabB = setupClient({ storage, server: tabA.server });
    tabA.goOffline();
    const a = tabA.client.enqueue(...adjust(1));
    tabB.client.commands._onStorage({ key: 'larder.commands.v1:acme/alice' });
    assert.deepEqual(tabB.client.commands.list().map((e) => e.key), [a.key]);
  });
});

// Unit tests of larder-client.js against a fake WebSocket, a fake
// EventSource and a fake clock: no server, no real time.
// Run: node --test test/

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { LarderClient, backoffDelay, topicMatches, tokenExpiry } from '../larder-client.js';

// ---- fakes -------------------------------------------------------------------

/** Lets pending promise callbacks (the client awaits its token) run. */
const flush = () => new Promise((resolve) => setImmediate(resolve));

/** A manual clock: timers fire only when the test advances time. */
function fakeClock(start = 1_700_000_000_000) {
  let now = start;
  let seq = 0;
  const timers = new Map();
  return {
    now: () => now,
    setTimeout: (fn, ms) => {
      const id = ++seq;
      timers.set(id, { at: now + Math.max(0, Number(ms) || 0), fn });
      return id;
    },
    clearTimeout: (id) => timers.delete(id),
    /** Moves time forward, firing due timers in order. */
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

/** A WebSocket class whose instances the test drives from the server side. */
function fakeWebSocketClass() {
  return class FakeWebSocket {
    static instances = [];
    constructor(url) {
      this.url = url;
      this.readyState = 0;
      this.sent = [];
      this.constructor.instances.push(this);
    }
    send(data) {
      if (this.readyState !== 1) throw new Error('send on a socket that is not open');
      this.sent.push(JSON.parse(data));
    }
    close(code = 1000, reason = '') {
      this.readyState = 3;
      this.closedByClient = { code, reason };
    }
    // server side
    accept() { this.readyState = 1; this.onopen?.({}); }
    fail() { this.readyState = 3; this.onerror?.({}); this.onclose?.({ code: 1006, reason: '' }); }
    receive(message) { this.onmessage?.({ data: JSON.stringify(message) }); }
    serverClose(code, reason = '') { this.readyState = 3; this.onclose?.({ code, reason }); }
    sentOf(type) { return this.sent.filter((m) => m.type === type); }
    lastOf(type) { return this.sentOf(type).at(-1); }
  };
}

function fakeEventSourceClass() {
  return class FakeEventSource {
    static instances = [];
    constructor(url) {
      this.url = new URL(url);
      this.readyState = 0;
      this.listeners = {};
      this.constructor.instances.push(this);
    }
    addEventListener(type, fn) { (this.listeners[type] ??= []).push(fn); }
    close() { this.readyState = 2; this.closed = true; }
    accept() { this.readyState = 1; this.onopen?.({}); }
    fail() { this.readyState = 2; this.onerror?.({}); }
    /** Sends a frame as the server does: a message named `event`, `id:` the position. */
    push(frame) { for (const fn of this.listeners.event ?? []) fn({ data: JSON.stringify(frame), lastEventId: String(frame.position) }); }
    /** Sends only the event JSON, unnamed: the other shape the docs allow. */
    pushBare(frame) { this.onmessage?.({ data: JSON.stringify(frame.event), lastEventId: String(frame.position) }); }
  };
}

function fakeDocument() {
  const doc = new EventTarget();
  doc.visibilityState = 'visible';
  return doc;
}

/** A JWT-shaped token whose payload has `exp` (seconds). */
function jwt(exp, sub = 'alice') {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${b64({ alg: 'HS256' })}.${b64({ sub, exp })}.sig`;
}

/** A client wired to fakes, with helpers to play the server. */
function setup(options = {}) {
  const clock = fakeClock();
  const WS = fakeWebSocketClass();
  const env = new EventTarget();
  const doc = fakeDocument();
  let online = true;
  const states = [];
  const client = new LarderClient({
    url: 'http://larder.test',
    token: 'tok-1',
    WebSocket: WS,
    EventSource: null,
    random: () => 0.5,
    now: clock.now,
    setTimeout: clock.setTimeout,
    clearTimeout: clock.clearTimeout,
    env,
    document: doc,
    isOnline: () => online,
    ...options,
  });
  client.on('state', (s) => states.push(s));
  const t = {
    clock, WS, env, doc, client, states,
    setOnline(value) { online = value; env.dispatchEvent(new Event(value ? 'online' : 'offline')); },
    get ws() { return WS.instances.at(-1); },
    /** Accepts the newest socket and answers its auth with a welcome. */
    async welcome(extra = {}) {
      const ws = t.ws;
      ws.accept();
      await flush();
      const auth = ws.lastOf('auth');
      assert.ok(auth, 'the client authenticates first');
      ws.receive({
        type: 'welcome', id: auth.id, protocol: 1, connection_id: `conn-${WS.instances.length}`,
        heartbeat_ms: 25000, head: 100, user: 'alice',
        expires_at: Math.floor(clock.now() / 1000) + 3600, ...extra,
      });
      await flush();
      return ws;
    },
    /** Answers every unanswered subscribe on the newest socket. */
    ackSubscribes(resume = 'new', position = 100, extra = {}) {
      const ws = t.ws;
      for (const m of ws.sentOf('subscribe')) {
        if (m.acked) continue;
        m.acked = true;
        ws.receive({ type: 'subscribed', id: m.id, topic: m.topic, resume, position, ...extra });
      }
    },
    event(topic, position, type = 'StockAdjusted', extra = {}) {
      return {
        type: 'event', topic, position,
        event: {
          id: `e${position}`, type, stream: 'item-1', version: position, recorded_at: new Date(clock.now()).toISOString(),
          data: { item_id: '1', quantity: position }, metadata: { tenant: 'acme', store: 's1', entity_type: 'item', entity_id: '1', actor: 'bob', correlation_id: null },
          ...extra,
        },
      };
    },
  };
  return t;
}

const stateNames = (states) => states.map((s) => s.state);

// ---- backoff -------------------------------------------------------------------

describe('backoff', () => {
  it('doubles the ceiling from 1 s and caps it at 30 s', () => {
    const top = () => 0.999999999;
    const ceilings = [0, 1, 2, 3, 4, 5, 6, 10, 50].map((n) => Math.round(backoffDelay(n, { random: top }) / 1000));
    assert.deepEqual(ceilings, [1, 2, 4, 8, 16, 30, 30, 30, 30]);
  });

  it('uses full jitter: anywhere between 0 and the ceiling', () => {
    assert.equal(backoffDelay(3, { random: () => 0 }), 0);
    assert.equal(backoffDelay(3, { random: () => 0.25 }), 2000);
    assert.equal(backoffDelay(3, { random: () => 0.5, baseMs: 100, maxMs: 500 }), 250);
  });

  it('grows with each failed attempt and starts over after a welcome', async () => {
    const t = setup({ random: () => 0.999999999 });
    t.client.connect();
    await t.welcome();
    const delays = [];
    t.ws.serverClose(1006);
    for (let i = 0; i < 7; i++) {
      const { delayMs, nextRetryAt } = t.client.stateInfo;
      assert.equal(t.client.state, 'reconnecting');
      assert.equal(nextRetryAt, t.clock.now() + delayMs, 'the state says when the next try is');
      delays.push(Math.round(delayMs / 1000));
      const before = t.WS.instances.length;
      await t.clock.advance(delayMs - 1);
      assert.equal(t.WS.instances.length, before, 'no try before the delay');
      await t.clock.advance(1);
      assert.equal(t.WS.instances.length, before + 1, 'a try when the delay is over');
      t.ws.fail();
    }
    assert.deepEqual(delays, [1, 2, 4, 8, 16, 30, 30]);
    await t.clock.advance(t.client.stateInfo.delayMs);
    await t.welcome();
    t.ws.serverClose(1006);
    assert.equal(Math.round(t.client.stateInfo.delayMs / 1000), 1, 'a success resets the backoff');
  });

  it('injects the random source', async () => {
    const t = setup({ random: () => 0.1 });
    t.client.connect();
    await t.welcome();
    t.ws.serverClose(4009);
    assert.equal(t.client.stateInfo.delayMs, 100);
  });
});

// ---- dedupe and resume -------------------------------------------------------------

describe('dedupe', () => {
  it('drops anything at or below the last applied position of the subscription', async () => {
    const t = setup();
    t.client.connect();
    await t.welcome();
    const seen = [];
    t.client.subscribe('store:s1', { since: 5, onEvent: (e, f) => seen.push(f.position) });
    t.ackSubscribes('recovered', 5);
    for (const p of [4, 5, 6, 6, 7, 3, 8]) t.ws.receive(t.event('store:s1', p));
    assert.deepEqual(seen, [6, 7, 8]);
    assert.equal(t.client.stats.duplicates, 4);
  });

  it('keeps positions per subscription', async () => {
    const t = setup();
    t.client.connect();
    await t.welcome();
    const a = [];
    const b = [];
    t.client.subscribe('tenant', { since: 10, onEvent: (e, f) => a.push(f.position) });
    t.client.subscribe('store:s1', { since: 12, onEvent: (e, f) => b.push(f.position) });
    t.ackSubscribes('recovered', 10);
    for (const p of [11, 12, 13]) {
      t.ws.receive(t.event('tenant', p));
      t.ws.receive(t.event('store:s1', p));
    }
    assert.deepEqual(a, [11, 12, 13]);
    assert.deepEqual(b, [13]);
  });

  it('lets the subscriber raise its position after a refetch', async () => {
    const t = setup();
    t.client.connect();
    await t.welcome();
    const seen = [];
    const sub = t.client.subscribe('store:s1', { since: 1, onEvent: (e, f) => seen.push(f.position) });
    t.ackSubscribes('recovered', 1);
    sub.setPosition(20);
    sub.setPosition(3); // never lowers
    t.ws.receive(t.event('store:s1', 20));
    t.ws.receive(t.event('store:s1', 21));
    assert.deepEqual(seen, [21]);
  });
});

describe('resume', () => {
  it('resubscribes with since = the last applied position after any reconnect', async () => {
    const t = setup();
    t.client.connect();
    await t.welcome();
    const seen = [];
    t.client.subscribe('store:s1', { onEvent: (e, f) => seen.push(f.position) });
    t.client.subscribe('tenant', {});
    assert.equal(t.ws.lastOf('subscribe').since, undefined, 'a new subscription has no since');
    t.ackSubscribes('new', 100);
    t.ws.receive(t.event('store:s1', 101));
    t.ws.receive(t.event('store:s1', 102));

    t.ws.serverClose(4009, 'slow consumer');
    await t.clock.advance(t.client.stateInfo.delayMs);
    await t.welcome();
    const subs = Object.fromEntries(t.ws.sentOf('subscribe').map((m) => [m.topic, m.since]));
    assert.deepEqual(subs, { 'store:s1': 102, tenant: 100 });

    // The replay overlaps what was applied: the overlap is dropped.
    t.ackSubscribes('recovered', 102);
    for (const p of [101, 102, 103]) t.ws.receive(t.event('store:s1', p));
    assert.deepEqual(seen, [101, 102, 103]);
  });

  it('resumes after a server restart announced with reconnect, honouring delay_ms', async () => {
    const t = setup({ random: () => 0 });
    t.client.connect();
    await t.welcome();
    t.client.subscribe('store:s1', {});
    t.ackSubscribes('new', 40);
    t.ws.receive(t.event('store:s1', 41));
    const old = t.ws;
    old.receive({ type: 'reconnect', delay_ms: 3000, reason: 'shutdown' });
    assert.equal(t.client.state, 'reconnecting');
    assert.equal(t.client.stateInfo.delayMs, 3000);
    assert.ok(old.closedByClient, 'the old socket is let go');
    await t.clock.advance(2999);
    assert.equal(t.WS.instances.length, 1);
    await t.clock.advance(1);
    assert.equal(t.WS.instances.length, 2);
    await t.welcome();
    assert.equal(t.ws.lastOf('subscribe').since, 41);
  });

  it('calls onReset when the server cannot replay, and goes on from its position', async () => {
    const t = setup();
    t.client.connect();
    await t.welcome();
    const resets = [];
    const seen = [];
    const sub = t.client.subscribe('store:s1', { since: 5, onReset: (info) => resets.push(info), onEvent: (e, f) => seen.push(f.position) });
    t.ackSubscribes('reset', 50000);
    assert.deepEqual(resets, [{ topic: 'store:s1', position: 50000 }]);
    assert.equal(sub.position, 50000);
    assert.equal(sub.resume, 'reset');
    t.ws.receive(t.event('store:s1', 50000));
    t.ws.receive(t.event('store:s1', 50001));
    assert.deepEqual(seen, [50001]);
  });

  it('hands over a snapshot and continues after its position', async () => {
    const t = setup();
    t.client.connect();
    await t.welcome();
    let snapshot = null;
    const seen = [];
    t.client.subscribe('store:s1', { snapshot: true, onSnapshot: (s) => { snapshot = s; }, onEvent: (e, f) => seen.push(f.position) });
    assert.equal(t.ws.lastOf('subscribe').snapshot, true);
    t.ackSubscribes('new', 70, { snapshot: { position: 70, data: { items: [], store: { name: 'Main' } } } });
    assert.equal(snapshot.data.store.name, 'Main');
    t.ws.receive(t.event('store:s1', 70));
    t.ws.receive(t.event('store:s1', 71));
    assert.deepEqual(seen, [71]);
  });

  it('takes a dashboard\'s state frames, newest wins, and asks for a fresh snapshot after a reconnect', async () => {
    const t = setup();
    t.client.connect();
    await t.welcome();
    const states = [];
    t.client.subscribe('dashboard:s1', {
      onSnapshot: (s) => states.push(['snapshot', s.position, s.data.orders_opened]),
      onState: (data, frame) => states.push(['state', frame.position, data.orders_opened]),
    });
    assert.equal(t.ws.lastOf('subscribe').snapshot, true, 'a derived topic always starts from a snapshot');
    t.ws.receive({ type: 'state', topic: 'dashboard:s1', position: 10, data: { orders_opened: 9 } });
    t.ackSubscribes('recovered', 40, { snapshot: { position: 40, data: { orders_opened: 1 } } });
    t.ws.receive({ type: 'state', topic: 'dashboard:s1', position: 45, data: { orders_opened: 2 } });
    t.ws.receive({ type: 'state', topic: 'dashboard:s1', position: 44, data: { orders_opened: 3 } });
    t.ws.receive({ type: 'state', topic: 'dashboard:s2', position: 50, data: { orders_opened: 4 } });
    assert.deepEqual(states, [['snapshot', 40, 1], ['state', 45, 2]], 'none before subscribed, none older, none of another topic');
    t.ws.serverClose(1006);
    await t.clock.advance(t.client.stateInfo.delayMs);
    await t.welcome();
    const again = t.ws.lastOf('subscribe');
    assert.equal(again.topic, 'dashboard:s1');
    assert.equal(again.snapshot, true);
    assert.equal(again.since, undefined, 'no since: a dashboard has no events to replay');
  });

  it('unsubscribes and stops delivering', async () => {
    const t = setup();
    t.client.connect();
    await t.welcome();
    const seen = [];
    const sub = t.client.subscribe('store:s1', { onEvent: (e, f) => seen.push(f.position) });
    t.ackSubscribes('new', 1);
    sub.unsubscribe();
    assert.equal(t.ws.lastOf('unsubscribe').topic, 'store:s1');
    t.ws.receive(t.event('store:s1', 2));
    assert.deepEqual(seen, []);
    assert.equal(sub.active, false);
  });
});

// ---- connection states ---------------------------------------------------------------

describe('state events', () => {
  it('goes connecting, connected, reconnecting (with the next try), connecting, connected', async () => {
    const t = setup();
    t.client.connect();
    await t.welcome();
    t.ws.serverClose(1006);
    const reconnecting = t.states.at(-1);
    assert.equal(reconnecting.state, 'reconnecting');
    assert.equal(reconnecting.nextRetryAt, t.clock.now() + 500);
    await t.clock.advance(500);
    await t.welcome();
    assert.deepEqual(stateNames(t.states), ['connecting', 'connected', 'reconnecting', 'connecting', 'connected']);
  });

  it('is unauthorized on 4002 and stops trying', async () => {
    const t = setup();
    t.client.connect();
    await t.welcome();
    t.ws.serverClose(4002, 'invalid token');
    assert.equal(t.client.state, 'unauthorized');
    await t.clock.advance(120000);
    assert.equal(t.WS.instances.length, 1);
  });

  it('after 4002, gets a new token from the refresh hook and reconnects once', async () => {
    let minted = 0;
    const t = setup({ refreshToken: async () => `tok-new-${++minted}` });
    t.client.connect();
    await t.welcome();
    t.client.subscribe('store:s1', {});
    t.ackSubscribes('new', 9);
    t.ws.serverClose(4002, 'invalid token');
    await flush();
    assert.equal(t.WS.instances.length, 2, 'reconnected at once');
    const ws = await t.welcome();
    assert.equal(ws.lastOf('auth').token, 'tok-new-1');
    assert.equal(ws.lastOf('subscribe').since, 9);
    assert.equal(t.client.state, 'connected');
    // Refused twice in a row: unauthorized, no more tries.
    t.ws.serverClose(4002, 'invalid token');
    await flush();
    t.ws.accept();
    await flush();
    t.ws.serverClose(4002, 'invalid token');
    await flush();
    assert.equal(t.client.state, 'unauthorized');
    await t.clock.advance(120000);
    assert.equal(t.WS.instances.length, 3);
  });

  it('is offline while the browser is, drops the socket, and retries at once when back', async () => {
    const t = setup();
    t.client.connect();
    const first = await t.welcome();
    t.setOnline(false);
    assert.equal(t.client.state, 'offline');
    assert.ok(first.closedByClient, 'a socket the browser would keep half-open is closed');
    await t.clock.advance(60000);
    assert.equal(t.WS.instances.length, 1, 'no tries while offline');
    t.setOnline(true);
    assert.equal(t.client.state, 'connecting');
    assert.equal(t.WS.instances.length, 2, 'tried at once');
  });

  it('retries at once when the page becomes visible', async () => {
    const t = setup({ random: () => 0.99 });
    t.client.connect();
    await t.welcome();
    t.ws.serverClose(1006);
    await t.clock.advance(t.client.stateInfo.delayMs);
    t.ws.fail();
    assert.equal(t.client.state, 'reconnecting');
    const before = t.WS.instances.length;
    t.doc.visibilityState = 'hidden';
    t.doc.dispatchEvent(new Event('visibilitychange'));
    assert.equal(t.WS.instances.length, before, 'hidden: no retry');
    t.doc.visibilityState = 'visible';
    t.doc.dispatchEvent(new Event('visibilitychange'));
    assert.equal(t.WS.instances.length, before + 1);
  });

  it('starts offline when the browser is offline', async () => {
    const t = setup({ isOnline: () => false });
    t.client.connect();
    assert.equal(t.client.state, 'offline');
    assert.equal(t.WS.instances.length, 0);
  });

  it('gives up waiting for a welcome after the connect timeout', async () => {
    const t = setup({ connectTimeoutMs: 5000 });
    t.client.connect();
    t.ws.accept();
    await t.clock.advance(5000);
    assert.equal(t.client.state, 'reconnecting');
  });

  it('treats a silent server as gone after two heartbeats', async () => {
    const t = setup();
    t.client.connect();
    await t.welcome({ heartbeat_ms: 1000 });
    await t.clock.advance(6999);
    assert.equal(t.client.state, 'connected');
    await t.clock.advance(1);
    assert.equal(t.client.state, 'reconnecting');
  });

  it('closes for good on close()', async () => {
    const t = setup();
    t.client.connect();
    const ws = await t.welcome();
    t.client.close();
    assert.equal(t.client.state, 'closed');
    assert.ok(ws.closedByClient);
    await t.clock.advance(60000);
    assert.equal(t.WS.instances.length, 1);
  });
});

// ---- tokens -------------------------------------------------------------------------

describe('token refresh', () => {
  it('refreshes in-band before the token expires', async () => {
    let minted = 0;
    const t = setup({ refreshToken: async () => `tok-${++minted + 1}`, refreshBeforeMs: 60000 });
    t.client.connect();
    // A long heartbeat, so the fake server's silence does not count as a dead link.
    const ws = await t.welcome({ heartbeat_ms: 600000, expires_at: Math.floor(t.clock.now() / 1000) + 300 });
    await t.clock.advance(239000);
    assert.equal(ws.sentOf('refresh').length, 0, 'not yet');
    await t.clock.advance(1000);
    const refresh = ws.lastOf('refresh');
    assert.equal(refresh.token, 'tok-2');
    const newExpiry = Math.floor(t.clock.now() / 1000) + 3600;
    ws.receive({ type: 'refreshed', id: refresh.id, expires_at: newExpiry });
    await flush();
    assert.equal(t.client.expiresAt, newExpiry * 1000);
    assert.equal(t.client.state, 'connected');
  });

  it('refreshes and reconnects at once after 4003, authenticating with the new token', async () => {
    const t = setup({ refreshToken: async () => ({ token: 'tok-fresh', expires_at: 'later' }) });
    t.client.connect();
    await t.welcome();
    t.client.subscribe('store:s1', {});
    t.ackSubscribes('new', 9);
    t.ws.serverClose(4003, 'token expired');
    await flush();
    assert.equal(t.WS.instances.length, 2, 'no backoff wait');
    const ws = await t.welcome();
    assert.equal(ws.lastOf('auth').token, 'tok-fresh');
    assert.equal(ws.lastOf('subscribe').since, 9);
  });

  it('is unauthorized after 4003 when no new token can be had', async () => {
    const t = setup();
    t.client.connect();
    await t.welcome();
    t.ws.serverClose(4003);
    await flush();
    assert.equal(t.client.state, 'unauthorized');
  });

  it('asks a token function on every connect', async () => {
    let calls = 0;
    const t = setup({ token: () => `fn-${++calls}` });
    t.client.connect();
    await t.welcome();
    t.ws.serverClose(1006);
    await t.clock.advance(t.client.stateInfo.delayMs);
    const ws = await t.welcome();
    assert.equal(ws.lastOf('auth').token, 'fn-2');
  });

  it('reads the expiry of a JWT', () => {
    assert.equal(tokenExpiry(jwt(1234)), 1234000);
    assert.equal(tokenExpiry('not a jwt'), null);
  });
});

// ---- SSE fallback --------------------------------------------------------------------

describe('SSE fallback', () => {
  it('uses SSE after WebSocket failed to open twice, with the same resume', async () => {
    const ES = fakeEventSourceClass();
    const t = setup({ EventSource: ES, token: jwt(2_000_000_000) });
    const seen = [];
    t.client.subscribe('store:s1', { since: 40, onEvent: (e, f) => seen.push(f.position) });
    t.client.subscribe('tenant', { since: 38 });
    t.client.connect();
    t.ws.fail();
    await t.clock.advance(t.client.stateInfo.delayMs);
    t.ws.fail();
    await t.clock.advance(t.client.stateInfo.delayMs);
    assert.equal(t.WS.instances.length, 2);
    assert.equal(ES.instances.length, 1);
    const es = ES.instances[0];
    assert.equal(es.url.pathname, '/api/v1/events/stream');
    assert.equal(es.url.searchParams.get('topics'), 'store:s1,tenant');
    assert.equal(es.url.searchParams.get('since'), '38', 'from the lowest position of any subscription');
    assert.equal(es.url.searchParams.get('access_token'), jwt(2_000_000_000));
    es.accept();
    assert.equal(t.client.state, 'connected');
    assert.equal(t.client.transport, 'sse');
    for (const p of [39, 40, 41, 41, 42]) es.push(t.event('store:s1', p));
    es.pushBare(t.event('store:s1', 42));
    es.pushBare(t.event('store:s1', 43));
    assert.deepEqual(seen, [41, 42, 43]);
  });

  it('does not fall back to SSE while the server is restarting', async () => {
    const ES = fakeEventSourceClass();
    const t = setup({ EventSource: ES, token: jwt(2_000_000_000), restartGraceMs: 30000 });
    t.client.subscribe('tenant', { since: 5 });
    t.client.connect();
    await t.welcome();
    t.ws.receive({ type: 'reconnect', reason: 'shutdown', delay_ms: 500 });
    for (let i = 0; i < 3; i++) {
      await t.clock.advance(t.client.stateInfo.delayMs);
      t.ws.fail();
    }
    assert.equal(ES.instances.length, 0, 'a server that is down is down for SSE too');
    // Past the grace, failures count again: a WebSocket blocked since the restart still gets the fallback.
    await t.clock.advance(30000);
    for (let i = 0; i < 10 && ES.instances.length === 0; i++) {
      if (t.ws.readyState === 0) t.ws.fail();
      await t.clock.advance(t.client.stateInfo.delayMs || 1);
    }
    assert.equal(ES.instances.length, 1);
  });

  it('delivers an SSE event to every subscription it matches', async () => {
    const ES = fakeEventSourceClass();
    const t = setup({ EventSource: ES, WebSocket: null, token: jwt(2_000_000_000) });
    const a = [];
    const b = [];
    t.client.subscribe('tenant', { since: 1, onEvent: (e, f) => a.push([f.topic, f.position]) });
    t.client.subscribe('store:s1', { since: 1, onEvent: (e, f) => b.push([f.topic, f.position]) });
    t.client.connect();
    await flush();
    ES.instances[0].accept();
    ES.instances[0].push(t.event('tenant', 2));
    ES.instances[0].push(t.event('store:s1', 2));
    // Each subscription sees the frame under its own topic, as on a WebSocket.
    assert.deepEqual(a, [['tenant', 2]]);
    assert.deepEqual(b, [['store:s1', 2]]);
  });

  it('an SSE reset tells every subscription where the stream is live from', async () => {
    const ES = fakeEventSourceClass();
    const t = setup({ EventSource: ES, WebSocket: null, token: jwt(2_000_000_000) });
    const resets = [];
    const seen = [];
    t.client.subscribe('store:s1', { since: 5, onReset: (info) => resets.push(info), onEvent: (e, f) => seen.push(f.position) });
    t.client.connect();
    await flush();
    const es = ES.instances[0];
    es.accept();
    // The server could not resume from 5: it says so first (`event: reset`).
    for (const fn of es.listeners.reset ?? []) fn({ data: JSON.stringify({ type: 'reset', position: 50000 }), lastEventId: '50000' });
    assert.deepEqual(resets, [{ topic: 'store:s1', position: 50000 }]);
    es.push(t.event('store:s1', 50001));
    assert.deepEqual(seen, [50001]);
    // A new stream resumes from the reset's position, not from 5 again.
    t.client.subscribe('item:1');
    await t.clock.advance(0);
    assert.equal(ES.instances[1].url.searchParams.get('since'), '50001');
  });

  it('reopens the stream when subscriptions change', async () => {
    const ES = fakeEventSourceClass();
    const t = setup({ EventSource: ES, WebSocket: null, token: jwt(2_000_000_000) });
    t.client.subscribe('tenant', { since: 3 });
    t.client.connect();
    await flush();
    ES.instances[0].accept();
    t.client.subscribe('item:1', { since: 5 });
    await t.clock.advance(0);
    assert.equal(ES.instances.length, 2);
    assert.ok(ES.instances[0].closed);
    assert.equal(ES.instances[1].url.searchParams.get('topics'), 'tenant,item:1');
  });

  it('goes back to WebSocket when SSE fails too', async () => {
    const ES = fakeEventSourceClass();
    const t = setup({ EventSource: ES, fallbackAfter: 1, token: jwt(2_000_000_000) });
    t.client.subscribe('tenant', { since: 3 });
    t.client.connect();
    t.ws.fail();
    await t.clock.advance(t.client.stateInfo.delayMs);
    assert.equal(ES.instances.length, 1);
    ES.instances[0].fail();
    await t.clock.advance(t.client.stateInfo.delayMs);
    assert.equal(t.WS.instances.length, 2);
  });

  it('never falls back when the transport is forced to websocket', async () => {
    const ES = fakeEventSourceClass();
    const t = setup({ EventSource: ES, transport: 'websocket' });
    t.client.connect();
    for (let i = 0; i < 5; i++) {
      t.ws.fail();
      await t.clock.advance(t.client.stateInfo.delayMs);
    }
    assert.equal(ES.instances.length, 0);
  });

  it('switches back to WebSocket when a probe opens', async () => {
    const ES = fakeEventSourceClass();
    const t = setup({ EventSource: ES, fallbackAfter: 1, wsProbeMs: 10000, token: jwt(2_000_000_000) });
    t.client.subscribe('tenant', { since: 3 });
    t.client.connect();
    t.ws.fail();
    await t.clock.advance(t.client.stateInfo.delayMs);
    ES.instances[0].accept();
    ES.instances[0].push(t.event('tenant', 4));
    await t.clock.advance(10000);
    const probe = t.ws;
    probe.accept();
    assert.ok(probe.closedByClient, 'the probe is closed');
    assert.ok(ES.instances[0].closed, 'the stream is closed');
    const ws = await t.welcome();
    assert.equal(t.client.transport, 'websocket');
    assert.equal(ws.lastOf('subscribe').since, 4);
  });
});

// ---- latency, ping, presence, misc ------------------------------------------------

describe('latency and requests', () => {
  it('measures event latency from recorded_at and round trip from ping', async () => {
    const t = setup();
    t.client.connect();
    const ws = await t.welcome();
    t.client.subscribe('tenant', {});
    t.ackSubscribes('new', 1);
    const frame = t.event('tenant', 2);
    frame.event.recorded_at = new Date(t.clock.now() - 250).toISOString();
    ws.receive(frame);
    assert.equal(t.client.latencyMs, 250);
    const rtt = t.client.ping();
    const ping = ws.lastOf('ping');
    await t.clock.advance(42);
    ws.receive({ type: 'pong', id: ping.id, ts: ping.ts });
    assert.equal(await rtt, 42);
    assert.equal(t.client.rttMs, 42);
  });

  it('pings on its own to keep the connection alive', async () => {
    const t = setup();
    t.client.connect();
    const ws = await t.welcome({ heartbeat_ms: 10000 });
    await t.clock.advance(5000);
    assert.equal(ws.sentOf('ping').length, 1);
  });

  it('announces presence and re-announces it after a reconnect', async () => {
    const t = setup();
    t.client.connect();
    let ws = await t.welcome();
    const users = t.client.presence('s1');
    const req = ws.lastOf('presence');
    ws.receive({ type: 'presence', id: req.id, store: 's1', users: ['alice', 'bob'] });
    assert.deepEqual(await users, ['alice', 'bob']);
    ws.serverClose(1006);
    await t.clock.advance(t.client.stateInfo.delayMs);
    ws = await t.welcome();
    assert.equal(ws.lastOf('presence').store, 's1');
  });

  it('survives a handler that throws', async () => {
    const t = setup();
    const errors = [];
    t.client.on('error', (e) => errors.push(e.code));
    t.client.connect();
    const ws = await t.welcome();
    const seen = [];
    t.client.subscribe('tenant', { onEvent: (e, f) => { seen.push(f.position); throw new Error('boom'); } });
    t.ackSubscribes('new', 1);
    ws.receive(t.event('tenant', 2));
    ws.receive(t.event('tenant', 3));
    assert.deepEqual(seen, [2, 3]);
    assert.deepEqual(errors, ['handler_error', 'handler_error']);
    assert.equal(t.client.state, 'connected');
  });

  it('derives the endpoints from the base URL', () => {
    const c = new LarderClient({ url: 'https://h.example:8443/', token: 't', WebSocket: class {}, env: null, document: null });
    assert.equal(c.wsUrl, 'wss://h.example:8443/ws');
    assert.equal(c.sseUrl, 'https://h.example:8443/api/v1/events/stream');
  });

  it('matches topics against event metadata', () => {
    const e = { metadata: { store: 's1', entity_type: 'item', entity_id: 'i1', actor: 'bob' } };
    assert.ok(topicMatches('tenant', e));
    assert.ok(topicMatches('store:s1', e));
    assert.ok(!topicMatches('store:s2', e));
    assert.ok(topicMatches('item:i1', e));
    assert.ok(topicMatches('type:item', e));
    assert.ok(topicMatches('entity:item:i1', e));
    assert.ok(topicMatches('user:bob', e));
    assert.ok(!topicMatches('session:x', e));
    assert.ok(!topicMatches('orders:s1', e), 'an item is no order');
  });

  it('matches a station topic by the stations an order event names', () => {
    const order = (data) => ({ metadata: { store: 's1', entity_type: 'order', entity_id: 'o1' }, data });
    const fired = order({ lines: [{ station: 'bar' }, { station: 'grill' }] });
    assert.ok(topicMatches('orders:s1', fired));
    assert.ok(!topicMatches('orders:s2', fired));
    assert.ok(topicMatches('station:s1:grill', fired));
    assert.ok(!topicMatches('station:s1:salad', fired));
    assert.ok(topicMatches('station:s1:grill', order({ station: 'grill' })));
    assert.ok(!topicMatches('station:s1:bar', order({ station: 'grill' })));
    assert.ok(topicMatches('station:s1:bar', order({ order_id: 'o1' })), 'the whole order');
    assert.ok(!topicMatches('station:s2:bar', order({ order_id: 'o1' })));
  });
});

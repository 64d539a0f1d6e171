// Larder's realtime client: one connection (WebSocket, or Server-Sent Events
// when WebSocket cannot connect) carrying any number of topic subscriptions,
// with resume after every reconnect so that a subscriber sees each event once
// and in order. Works in browsers and in Node >= 20 (pass `WebSocket` on
// Node 20, where it is not global). No dependencies. docs/client.md is the
// guide; larder-client.d.ts has the types. Commands (REST, exactly once, with
// an offline queue) come from larder-commands.js, wired in here.

import { CommandQueue, backoffDelay, memoryStorage, sendCommand } from './larder-commands.js';

/** Protocol version this client speaks. */
export const PROTOCOL_VERSION = 1;

/** Close codes the server uses and what the client does with each. */
export const CloseCode = Object.freeze({
  NORMAL: 1000,
  GOING_AWAY: 1001, // after `reconnect`: wait delay_ms, reconnect
  TOO_BIG: 1009,
  HEARTBEAT_TIMEOUT: 4000,
  AUTH_TIMEOUT: 4001,
  INVALID_TOKEN: 4002, // -> `unauthorized`, no retry
  TOKEN_EXPIRED: 4003, // -> refresh the token, reconnect at once
  RATE_LIMITED: 4008,
  SLOW_CONSUMER: 4009, // -> reconnect and resume
  TOO_MANY_CONNECTIONS: 4029,
});

/** The event types of docs/events.md. */
export const EventTypes = Object.freeze([
  'StoreCreated', 'StoreRenamed', 'StoreClosed',
  'ItemAdded', 'StockAdjusted', 'ThresholdChanged', 'ItemRenamed', 'ItemRemoved',
  'LowStock', 'OutOfStock', 'Restocked', 'TransferCompleted',
]);

/** The alert event types (facts for notifications; they change no state). */
export const AlertTypes = Object.freeze(['LowStock', 'OutOfStock', 'Restocked']);

// The command side (exactly-once REST commands, the offline queue) lives in
// larder-commands.js; everything of it is available from here too.
export {
  CommandError, CommandQueue, CommandState, backoffDelay, isTransientStatus, isValidIdempotencyKey,
  memoryStorage, newIdempotencyKey, retryAfterMs, sendCommand,
} from './larder-commands.js';

/**
 * Whether an event (the `event` of an event frame) belongs to a topic, judged
 * from its metadata as the server does. `session:` topics cannot be judged
 * client-side (the metadata does not carry the session) and never match.
 */
export function topicMatches(topic, event) {
  const m = (event && event.metadata) || {};
  if (topic === 'tenant') return true;
  const [kind, ...rest] = topic.split(':');
  const value = rest.join(':');
  switch (kind) {
    case 'store': return m.store === value;
    case 'type': return m.entity_type === value;
    case 'item': return m.entity_type === 'item' && m.entity_id === value;
    case 'entity': {
      const [entityType, ...id] = rest;
      return m.entity_type === entityType && m.entity_id === id.join(':');
    }
    case 'user': return m.actor === value;
    default: return false;
  }
}

/** The `exp` of a JWT in milliseconds, or null if it cannot be read. */
export function tokenExpiry(token) {
  try {
    const part = String(token).split('.')[1];
    const json = JSON.parse(decodeBase64Url(part));
    return typeof json.exp === 'number' ? json.exp * 1000 : null;
  } catch {
    return null;
  }
}

function decodeBase64Url(text) {
  const b64 = text.replace(/-/g, '+').replace(/_/g, '/').padEnd(Math.ceil(text.length / 4) * 4, '=');
  if (typeof atob === 'function') {
    const bin = atob(b64);
    const bytes = Uint8Array.from(bin, (c) => c.charCodeAt(0));
    return new TextDecoder().decode(bytes);
  }
  return Buffer.from(b64, 'base64').toString('utf8');
}

const defaultEnv = () => (typeof window !== 'undefined' ? window : null);
const defaultStorage = () => {
  // Reading `localStorage` throws where storage is blocked (some private modes).
  try { return globalThis.localStorage ?? null; } catch { return null; }
};
const defaultDocument = () => (typeof document !== 'undefined' ? document : null);

/**
 * A realtime connection to a Larder server. See docs/client.md.
 */
export class LarderClient {
  /** @param {import('./larder-client.js').LarderClientOptions} options */
  constructor(options = {}) {
    const o = options;
    const base = o.url ?? (typeof location !== 'undefined' ? location.origin : null);
    if (!base) throw new Error('LarderClient: `url` is required outside a browser');
    const httpBase = base.replace(/\/+$/, '');
    this.wsUrl = o.wsUrl ?? httpBase.replace(/^http/, 'ws') + '/ws';
    this.sseUrl = o.sseUrl ?? httpBase.replace(/^ws/, 'http') + '/api/v1/events/stream';
    if (o.token == null) throw new Error('LarderClient: `token` (a string or a function) is required');
    this._tokenSource = o.token;
    this._token = typeof o.token === 'string' ? o.token : null;
    this._refreshHook = o.refreshToken ?? null;
    this._WebSocket = o.WebSocket ?? globalThis.WebSocket ?? null;
    this._EventSource = o.EventSource ?? globalThis.EventSource ?? null;
    this._transportOption = o.transport ?? 'auto';
    this._fallbackAfter = o.fallbackAfter ?? 2;
    this._wsProbeMs = o.wsProbeMs ?? 60000;
    this._restartGraceMs = o.restartGraceMs ?? 30000;
    this._restartingUntil = 0; // after a server `reconnect`: failures then are the restart, not a blocked WebSocket
    this._backoff = { baseMs: o.backoff?.baseMs ?? 1000, maxMs: o.backoff?.maxMs ?? 30000 };
    this._random = o.random ?? Math.random;
    this._now = o.now ?? (() => Date.now());
    this._setTimeout = o.setTimeout ?? ((fn, ms) => setTimeout(fn, ms));
    this._clearTimeout = o.clearTimeout ?? ((t) => clearTimeout(t));
    this._refreshBeforeMs = o.refreshBeforeMs ?? 60000;
    this._connectTimeoutMs = o.connectTimeoutMs ?? 10000;
    this._pingIntervalMs = o.pingIntervalMs ?? null;
    this._env = o.env === undefined ? defaultEnv() : o.env;
    this._document = o.document === undefined ? defaultDocument() : o.document;
    this._isOnline = o.isOnline ?? (() => (typeof navigator !== 'undefined' && navigator.onLine === false ? false : true));

    this._listeners = new Map();
    this._subs = new Map(); // topic -> subscription record
    this._pending = new Map(); // request id -> {resolve, reject, type, sentAt, topic}
    this._presenceStores = new Set();
    this._nextId = 0;
    this._gen = 0; // bumped per transport; callbacks of an older one are ignored
    this._state = 'idle';
    this._stateInfo = {};
    this._attempt = 0; // failed attempts since the last success, for the backoff
    this._wsFailures = 0; // WebSocket attempts in a row that never opened
    this._serverDelay = null; // delay_ms of a `reconnect` message
    this._expiredInARow = 0;
    this._invalidInARow = 0; // 4002 closes since the last welcome
    this._timers = {};
    this._ws = null;
    this._es = null;
    this.transport = null;
    this.connectionId = null;
    this.user = null;
    this.head = null;
    this.heartbeatMs = null;
    this.expiresAt = null;
    this.latencyMs = null;
    this.rttMs = null;
    this.lastEventAt = null;
    this.stats = { delivered: 0, duplicates: 0, reconnects: 0 };

    this._initCommands(o, httpBase);

    this._onOnline = () => { this._wake('online'); this.commands.flush(); };
    this._onOffline = () => this._goOffline();
    this._onVisibility = () => {
      if (this._document && this._document.visibilityState === 'visible') this._wake('visible');
    };
  }

  /** The connection state: idle, connecting, connected, reconnecting, offline, unauthorized, closed. */
  get state() { return this._state; }

  /** Details of the state (for `reconnecting`: `nextRetryAt`, `delayMs`, `attempt`). */
  get stateInfo() { return this._stateInfo; }

  /** Listen to `state`, `welcome`, `event`, `presence`, `presence_changed`, `heartbeat`, `warning`, `error`, `reconnect`, `latency`, `command`. Returns a function that removes the listener. */
  on(type, fn) {
    if (!this._listeners.has(type)) this._listeners.set(type, new Set());
    this._listeners.get(type).add(fn);
    return () => this._listeners.get(type)?.delete(fn);
  }

  _emit(type, detail) {
    for (const fn of [...(this._listeners.get(type) ?? [])]) {
      try { fn(detail); } catch (error) { this._report(error); }
    }
  }

  _report(error) {
    // A throwing handler must not break the connection; surface it instead.
    if ((this._listeners.get('error')?.size ?? 0) > 0 && !this._reporting) {
      this._reporting = true;
      try { this._emit('error', { code: 'handler_error', message: String(error?.message ?? error), error }); } finally { this._reporting = false; }
    } else if (typeof console !== 'undefined') {
      console.warn('larder-client: a handler threw', error);
    }
  }

  /** Starts connecting (idempotent). Returns the client. */
  connect() {
    if (this._state !== 'idle' && this._state !== 'closed' && this._state !== 'unauthorized') return this;
    this._closedByUser = false;
    this._attempt = 0;
    this._env?.addEventListener?.('online', this._onOnline);
    this._env?.addEventListener?.('offline', this._onOffline);
    this._document?.addEventListener?.('visibilitychange', this._onVisibility);
    this._open();
    return this;
  }

  /** Closes the connection for good (until `connect()` again). */
  close() {
    this._closedByUser = true;
    this._env?.removeEventListener?.('online', this._onOnline);
    this._env?.removeEventListener?.('offline', this._onOffline);
    this._document?.removeEventListener?.('visibilitychange', this._onVisibility);
    this._teardown('closed by the client');
    this._clearTimer('retry');
    this.commands.close(this._env);
    this._setState('closed');
  }

  /** Retries now if waiting to reconnect (what `online` and `visibilitychange` do). */
  reconnectNow() { this._wake('manual'); }

  /**
   * Subscribes to a topic. Handlers: onEvent(event, frame), onReset(info),
   * onSnapshot(snapshot), onSubscribed(reply), onError(error). Options:
   * since (resume after this position), snapshot (ask for one).
   */
  subscribe(topic, handlers = {}) {
    if (this._subs.has(topic)) throw new Error(`already subscribed to ${topic}`);
    const sub = {
      topic,
      handlers,
      position: handlers.since ?? null,
      snapshot: !!handlers.snapshot,
      acked: false,
      resume: null,
    };
    this._subs.set(topic, sub);
    const client = this;
    const handle = {
      topic,
      get position() { return sub.position; },
      get active() { return client._subs.get(topic) === sub; },
      get resume() { return sub.resume; },
      /** Raise the position (e.g. after a REST refetch current at `position`): events at or below it are dropped. */
      setPosition(position) { if (sub.position == null || position > sub.position) sub.position = position; },
      unsubscribe() { client._unsubscribe(sub); },
    };
    sub.handle = handle;
    if (this._state === 'connected') {
      if (this.transport === 'websocket') this._sendSubscribe(sub);
      else this._scheduleSseRestart();
    }
    return handle;
  }

  _unsubscribe(sub) {
    if (this._subs.get(sub.topic) !== sub) return;
    this._subs.delete(sub.topic);
    if (this._state === 'connected') {
      if (this.transport === 'websocket') this._send({ type: 'unsubscribe', id: this._id(), topic: sub.topic });
      else this._scheduleSseRestart();
    }
  }

  /** Sends a ping and resolves with the round trip in ms (WebSocket only). */
  ping() {
    if (this._state !== 'connected' || this.transport !== 'websocket') return Promise.reject(new Error('not connected over WebSocket'));
    const sentAt = this._now();
    return this._request({ type: 'ping', ts: sentAt }, { sentAt });
  }

  /** Announces the user in a store; resolves with who is there. Re-announced after every reconnect until `leave(store)`. */
  presence(store) {
    this._presenceStores.add(store);
    if (this._state !== 'connected' || this.transport !== 'websocket') return Promise.reject(new Error('presence needs a WebSocket connection'));
    return this._request({ type: 'presence', store });
  }

  /** Stops re-announcing presence in a store (leaving happens when the store subscription ends). */
  leave(store) { this._presenceStores.delete(store); }

  // ---- commands (larder-commands.js) ------------------------------------------

  /**
   * Sends a REST command now, exactly once: one `Idempotency-Key` (yours, or
   * a new random one) for all its retries (no answer, 408, 429 with
   * `Retry-After`, 5xx; bounded backoff), and a token refresh on 401.
   * Resolves with `{status, body, replayed, key, attempts}`, rejects with a
   * `CommandError`. `path` is below the API base, e.g. `/items/{id}/adjust`.
   */
  command(path, { method = 'POST', body, ifMatch = null, key, maxAttempts } = {}) {
    return sendCommand({ path, method, body, ifMatch, key }, this._sendOptions({ maxAttempts }));
  }

  /**
   * Queues a command in the offline queue (`client.commands`): sent in order
   * when the connection is up, kept across reloads until the server answers.
   * Returns the queued entry; watch it with the `command` event.
   */
  enqueue(path, { method = 'POST', body, ifMatch = null, key, label = null, meta = null } = {}) {
    return this.commands.enqueue({ path, method, body, ifMatch, ...(key ? { key } : {}), label, meta });
  }

  _initCommands(o, httpBase) {
    this.apiUrl = (o.apiUrl ?? httpBase.replace(/^ws/, 'http') + '/api/v1').replace(/\/+$/, '');
    this._fetch = o.fetch ?? (typeof fetch === 'function' ? (...args) => fetch(...args) : null);
    this._commandRetry = { maxAttempts: 5, baseMs: 500, maxMs: 8000, ...(o.commandRetry ?? {}) };
    const storage = o.storage === undefined ? defaultStorage() : o.storage;
    /** The offline queue: see `CommandQueue` in larder-commands.js. */
    this.commands = new CommandQueue({
      send: (entry, hooks) => sendCommand(entry, this._sendOptions(hooks)),
      canSend: () => this._canSendCommands(),
      storage: storage ?? memoryStorage(),
      storageKey: o.queueKey ? `larder.commands.v1:${o.queueKey}` : null,
      maxEntries: o.queueLimit ?? 100,
      retryBackoff: this._backoff,
      random: this._random,
      now: this._now,
      setTimeout: this._setTimeout,
      clearTimeout: this._clearTimeout,
      env: o.env === undefined ? defaultEnv() : o.env,
    });
    this.commands.on((change) => this._emit('command', change));
  }

  _sendOptions({ maxAttempts, onAttempt } = {}) {
    if (!this._fetch) throw new Error('LarderClient: commands need `fetch` (a global, or the `fetch` option)');
    const retry = this._commandRetry;
    return {
      fetch: this._fetch,
      apiUrl: this.apiUrl,
      token: () => this._currentToken(),
      refreshToken: this._refreshHook || typeof this._tokenSource === 'function' ? () => this._refreshToken() : null,
      maxAttempts: maxAttempts ?? retry.maxAttempts,
      backoff: { baseMs: retry.baseMs, maxMs: retry.maxMs },
      random: this._random,
      now: this._now,
      sleep: (ms) => new Promise((resolve) => this._setTimeout(resolve, ms)),
      onAttempt,
    };
  }

  /**
   * Whether the queue may send: the network is up and the realtime
   * connection is not down (a page that never connected sends as soon as the
   * browser says it is online). Otherwise it waits for `connected`/`online`.
   */
  _canSendCommands() {
    if (this._closedByUser || !this._isOnline()) return false;
    return !['offline', 'reconnecting', 'connecting'].includes(this._state);
  }

  // ---- internals -----------------------------------------------------------

  _id() { return `c${++this._nextId}`; }

  _setState(state, info = {}) {
    const changed = state !== this._state || JSON.stringify(info) !== JSON.stringify(this._stateInfo);
    this._state = state;
    this._stateInfo = info;
    if (changed) this._emit('state', { state, ...info, transport: this.transport });
  }

  _timer(name, ms, fn) {
    this._clearTimer(name);
    this._timers[name] = this._setTimeout(() => { this._timers[name] = null; fn(); }, ms);
  }

  _clearTimer(name) {
    if (this._timers[name] != null) { this._clearTimeout(this._timers[name]); this._timers[name] = null; }
  }

  /** The token for a new connection: the latest refreshed one, else the `token` option (a function is asked every time). */
  async _currentToken() {
    if (this._token != null) return this._token;
    const token = await this._tokenSource();
    if (!token) throw new Error('the token function gave no token');
    return token;
  }

  _pickTransport() {
    const canWs = !!this._WebSocket;
    const canSse = !!this._EventSource;
    if (this._transportOption === 'websocket') return 'websocket';
    if (this._transportOption === 'sse') return 'sse';
    if (!canWs) return canSse ? 'sse' : 'websocket';
    if (canSse && this._wsFailures >= this._fallbackAfter) return 'sse';
    return 'websocket';
  }

  _open() {
    this._clearTimer('retry');
    if (this._closedByUser) return;
    if (!this._isOnline()) { this._setState('offline'); return; }
    this._teardown('reopening');
    const transport = this._pickTransport();
    this.transport = transport;
    this._setState('connecting', { attempt: this._attempt });
    if (transport === 'sse') this._openSse();
    else this._openWs();
  }

  _openWs() {
    const gen = ++this._gen;
    let ws;
    try {
      ws = new this._WebSocket(this.wsUrl);
    } catch (error) {
      this._wsFailed();
      this._afterDrop({ code: 0, reason: String(error?.message ?? error) });
      return;
    }
    this._ws = ws;
    let opened = false;
    this._timer('connect', this._connectTimeoutMs, () => {
      if (gen !== this._gen) return;
      if (!opened) this._wsFailed();
      this._teardown('connect timeout');
      this._afterDrop({ code: 0, reason: 'connect timeout' });
    });
    ws.onopen = async () => {
      if (gen !== this._gen) return;
      opened = true;
      this._wsFailures = 0;
      try {
        const token = await this._currentToken();
        if (gen !== this._gen) return;
        this._send({ type: 'auth', id: this._id(), token });
      } catch (error) {
        if (gen !== this._gen) return;
        this._teardown('no token');
        this._setState('unauthorized', { reason: String(error?.message ?? error) });
      }
    };
    ws.onmessage = (message) => {
      if (gen !== this._gen) return;
      let frame;
      try { frame = JSON.parse(message.data); } catch { return; }
      this._onFrame(frame);
    };
    ws.onerror = () => {};
    ws.onclose = (event) => {
      if (gen !== this._gen) return;
      if (!opened) this._wsFailed();
      this._teardown('closed');
      this._afterDrop({ code: event?.code ?? 1006, reason: event?.reason ?? '' });
    };
  }

  /**
   * A WebSocket attempt never opened. It counts towards the SSE fallback,
   * except while the server is restarting (it said `reconnect`): then it is
   * down for every transport, and the fallback would only land on SSE for
   * `wsProbeMs` once it is back.
   */
  _wsFailed() {
    if (this._now() >= this._restartingUntil) this._wsFailures++;
  }

  _send(message) {
    if (this._ws && this._ws.readyState === 1) {
      this._ws.send(JSON.stringify(message));
      return true;
    }
    return false;
  }

  _request(message, extra = {}) {
    const id = this._id();
    return new Promise((resolve, reject) => {
      this._pending.set(id, { resolve, reject, type: message.type, ...extra });
      if (!this._send({ ...message, id })) {
        this._pending.delete(id);
        reject(new Error('not connected'));
      }
    });
  }

  _sendSubscribe(sub) {
    const message = { type: 'subscribe', id: this._id(), topic: sub.topic };
    if (sub.position != null) message.since = sub.position;
    else if (sub.snapshot) message.snapshot = true;
    sub.acked = false;
    sub.requestId = message.id;
    this._send(message);
  }

  /** Stops the current transport and its timers without deciding what comes next. */
  _teardown(reason) {
    this._gen++;
    for (const name of ['connect', 'ping', 'refresh', 'liveness', 'probe', 'sseRestart']) this._clearTimer(name);
    if (this._ws) {
      const ws = this._ws;
      this._ws = null;
      ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
      try { if (ws.readyState <= 1) ws.close(1000, reason.slice(0, 100)); } catch { /* already closed */ }
    }
    if (this._es) {
      const es = this._es;
      this._es = null;
      es.onopen = es.onmessage = es.onerror = null;
      try { es.close(); } catch { /* already closed */ }
    }
    for (const [, pending] of this._pending) pending.reject(new Error('disconnected'));
    this._pending.clear();
    for (const sub of this._subs.values()) sub.acked = false;
  }

  /** The transport ended: decide when and how to try again. */
  _afterDrop({ code, reason }) {
    if (this._closedByUser) return;
    const wasConnected = this._state === 'connected';
    if (wasConnected) this.stats.reconnects++;
    if (code === CloseCode.INVALID_TOKEN) {
      // "Get a new token; do not retry with the same one": with a refresh
      // hook, get one (e.g. the server's signing key changed) and try once;
      // refused again, or no hook, is `unauthorized`.
      this._invalidInARow++;
      if (this._refreshHook && this._invalidInARow <= 1) {
        this._refreshThenReopen(code);
        return;
      }
      this._setState('unauthorized', { code, reason });
      return;
    }
    if (code === CloseCode.TOKEN_EXPIRED) {
      this._expiredInARow++;
      if (this._expiredInARow <= 2) {
        this._refreshThenReopen(code);
        return;
      }
      this._setState('unauthorized', { code, reason: 'token still expired after refresh' });
      return;
    }
    if (!this._isOnline()) { this._setState('offline'); return; }
    if (this._serverDelay != null) {
      const delay = this._serverDelay;
      this._serverDelay = null;
      this._scheduleRetry(delay, { code, reason });
      return;
    }
    const delay = backoffDelay(this._attempt, { ...this._backoff, random: this._random });
    this._attempt++;
    this._scheduleRetry(delay, { code, reason });
  }

  async _refreshThenReopen(code) {
    this._setState('connecting', { attempt: this._attempt, code, refreshing: true });
    const gen = this._gen;
    try {
      await this._refreshToken();
    } catch (error) {
      if (gen !== this._gen) return;
      this._setState('unauthorized', { code, reason: `token refresh failed: ${error?.message ?? error}` });
      return;
    }
    if (gen !== this._gen || this._closedByUser) return;
    this._open();
  }

  /** Gets a new token from the refresh hook (or the token function). */
  async _refreshToken() {
    let result;
    if (this._refreshHook) result = await this._refreshHook();
    else if (typeof this._tokenSource === 'function') result = await this._tokenSource();
    else throw new Error('no refreshToken hook');
    const token = typeof result === 'string' ? result : result?.token;
    if (!token) throw new Error('the refresh hook gave no token');
    this._token = token;
    return token;
  }

  _scheduleRetry(delayMs, info = {}) {
    const nextRetryAt = this._now() + delayMs;
    this._setState('reconnecting', { delayMs, nextRetryAt, attempt: this._attempt, ...info });
    this._timer('retry', delayMs, () => this._open());
  }

  _wake() {
    if (this._closedByUser) return;
    if (this._state === 'reconnecting' || this._state === 'offline') this._open();
  }

  _goOffline() {
    // Browsers keep a WebSocket "open" for a while after the network went
    // away (and test tools that emulate offline do not touch it at all): drop
    // it now, stay quiet until `online`, then resume with `since`.
    if (this._closedByUser || this._state === 'unauthorized' || this._state === 'idle') return;
    if (this._state === 'connected') this.stats.reconnects++;
    this._teardown('offline');
    this._clearTimer('retry');
    this._setState('offline');
  }

  _connected(transport) {
    this._clearTimer('connect');
    // Back in touch with the server: send what waited (after this state change, so listeners see `connected` first).
    Promise.resolve().then(() => this.commands.flush());
    this._attempt = 0;
    this._expiredInARow = 0;
    this._invalidInARow = 0;
    this._restartingUntil = 0;
    this.transport = transport;
    this._setState('connected', { transport });
  }

  // ---- WebSocket frames ----------------------------------------------------

  _onFrame(frame) {
    this._armLiveness();
    switch (frame.type) {
      case 'welcome': return this._onWelcome(frame);
      case 'subscribed': return this._onSubscribed(frame);
      case 'unsubscribed': return this._resolve(frame.id, frame);
      case 'event': return this._onEvent(frame);
      case 'pong': {
        const pending = this._pending.get(frame.id);
        if (pending) {
          this.rttMs = Math.max(0, this._now() - pending.sentAt);
          this._emit('latency', { rttMs: this.rttMs, latencyMs: this.latencyMs });
        }
        return this._resolve(frame.id, this.rttMs);
      }
      case 'refreshed':
        this.expiresAt = frame.expires_at * 1000;
        this._scheduleRefresh();
        return this._resolve(frame.id, frame);
      case 'presence':
        this._emit('presence', frame);
        return this._resolve(frame.id, frame.users);
      case 'presence_changed': return this._emit('presence_changed', frame);
      case 'heartbeat':
        this.head = frame.head;
        return this._emit('heartbeat', frame);
      case 'warning': return this._emit('warning', frame);
      case 'reconnect': {
        this._emit('reconnect', frame);
        // The server is going away: leave now and come back after its delay
        // (spread by the server over its connections).
        this._serverDelay = Math.max(0, Number(frame.delay_ms) || 0);
        this._restartingUntil = this._now() + this._serverDelay + this._restartGraceMs;
        this._teardown('server asked to reconnect');
        this._afterDrop({ code: CloseCode.GOING_AWAY, reason: frame.reason ?? 'reconnect' });
        return;
      }
      case 'error': return this._onError(frame);
      default: return undefined;
    }
  }

  _resolve(id, value) {
    const pending = this._pending.get(id);
    if (pending) { this._pending.delete(id); pending.resolve(value); }
  }

  _onWelcome(frame) {
    this.connectionId = frame.connection_id;
    this.user = frame.user;
    this.head = frame.head;
    this.heartbeatMs = frame.heartbeat_ms;
    this.expiresAt = typeof frame.expires_at === 'number' ? frame.expires_at * 1000 : tokenExpiry(this._token);
    this._connected('websocket');
    this._emit('welcome', frame);
    for (const sub of this._subs.values()) this._sendSubscribe(sub);
    for (const store of this._presenceStores) this._request({ type: 'presence', store }).catch(() => {});
    const every = this._pingIntervalMs ?? Math.max(1000, Math.floor((this.heartbeatMs ?? 25000) / 2));
    const ping = () => {
      this.ping().catch(() => {});
      this._timer('ping', every, ping);
    };
    this._timer('ping', every, ping);
    this._armLiveness();
    this._scheduleRefresh();
  }

  /** Nothing from the server for two heartbeats and a bit: the link is dead even if the socket says open. */
  _armLiveness() {
    if (this.transport !== 'websocket' || !this.heartbeatMs) return;
    const gen = this._gen;
    this._timer('liveness', this.heartbeatMs * 2 + 5000, () => {
      if (gen !== this._gen) return;
      this._teardown('no heartbeat');
      this._afterDrop({ code: CloseCode.HEARTBEAT_TIMEOUT, reason: 'no heartbeat from the server' });
    });
  }

  _scheduleRefresh() {
    if (!this.expiresAt || (!this._refreshHook && typeof this._tokenSource !== 'function')) return;
    const left = this.expiresAt - this._now();
    const margin = Math.min(this._refreshBeforeMs, Math.max(left / 2, 0));
    const gen = this._gen;
    this._timer('refresh', Math.max(0, left - margin), async () => {
      try {
        const token = await this._refreshToken();
        if (gen !== this._gen) return;
        if (this.transport === 'websocket') {
          await this._request({ type: 'refresh', token });
        } else {
          // SSE carries the token in its URL: reopen with the new one.
          this.expiresAt = tokenExpiry(token);
          this._restartSse();
        }
      } catch (error) {
        if (gen !== this._gen) return;
        this._emit('error', { code: 'refresh_failed', message: String(error?.message ?? error) });
      }
    });
  }

  _onSubscribed(frame) {
    const sub = this._subs.get(frame.topic);
    this._resolve(frame.id, frame);
    if (!sub || (sub.requestId && sub.requestId !== frame.id)) return;
    sub.acked = true;
    sub.resume = frame.resume;
    const call = (name, arg) => {
      try { sub.handlers[name]?.(arg, sub.handle); } catch (error) { this._report(error); }
    };
    if (frame.snapshot) {
      sub.position = frame.snapshot.position;
      call('onSnapshot', frame.snapshot);
    }
    if (frame.resume === 'reset') {
      // The server could not replay from our position: the subscriber must
      // refetch its state; live events continue after `position`.
      sub.position = frame.position;
      call('onReset', { topic: sub.topic, position: frame.position });
    } else if (sub.position == null) {
      sub.position = frame.position;
    }
    call('onSubscribed', frame);
  }

  _onError(frame) {
    const pending = frame.id ? this._pending.get(frame.id) : null;
    if (pending) {
      this._pending.delete(frame.id);
      const error = Object.assign(new Error(frame.message), { code: frame.code });
      pending.reject(error);
    }
    for (const sub of this._subs.values()) {
      if (sub.requestId && sub.requestId === frame.id) {
        try { sub.handlers.onError?.(frame, sub.handle); } catch (error) { this._report(error); }
      }
    }
    this._emit('error', frame);
  }

  _onEvent(frame) {
    const sub = this._subs.get(frame.topic);
    if (sub) this._deliver(sub, frame);
  }

  /** Applies an event frame to a subscription unless it was already applied. */
  _deliver(sub, frame) {
    const position = Number(frame.position);
    if (sub.position != null && position <= sub.position) {
      this.stats.duplicates++;
      return;
    }
    sub.position = position;
    this.stats.delivered++;
    const recorded = Date.parse(frame.event?.recorded_at);
    if (!Number.isNaN(recorded)) this.latencyMs = Math.max(0, this._now() - recorded);
    this.lastEventAt = this._now();
    try {
      sub.handlers.onEvent?.(frame.event, frame);
    } catch (error) {
      this._report(error);
    }
    this._emit('event', frame);
    this._emit('latency', { rttMs: this.rttMs, latencyMs: this.latencyMs });
  }

  // ---- Server-Sent Events ----------------------------------------------------

  async _openSse() {
    const gen = this._gen;
    let token;
    try { token = await this._currentToken(); } catch (error) {
      this._setState('unauthorized', { reason: String(error?.message ?? error) });
      return;
    }
    if (gen !== this._gen || this._closedByUser) return;
    const subs = [...this._subs.values()];
    if (subs.length === 0) {
      // Nothing to stream yet: "connected", the stream opens with the first subscription.
      this._connected('sse');
      return;
    }
    // One stream for every topic; positions are global, so resume from the
    // lowest position any subscription has applied and let each drop what
    // it already has.
    const known = subs.filter((s) => s.position != null).map((s) => s.position);
    const since = known.length ? Math.min(...known) : null;
    if (since != null) for (const s of subs) if (s.position == null) s.position = since;
    const params = new URLSearchParams({ topics: subs.map((s) => s.topic).join(','), access_token: token });
    if (since != null) params.set('since', String(since));
    let es;
    try {
      es = new this._EventSource(`${this.sseUrl}?${params}`);
    } catch (error) {
      this._sseFailed(gen, false);
      return;
    }
    this._es = es;
    let opened = false;
    this._timer('connect', this._connectTimeoutMs, () => {
      if (gen === this._gen && !opened) this._sseFailed(gen, false);
    });
    es.onopen = () => {
      if (gen !== this._gen) return;
      opened = true;
      this.expiresAt = tokenExpiry(token);
      this._connected('sse');
      this._scheduleRefresh();
      if (this._transportOption === 'auto' && this._WebSocket) this._scheduleProbe();
    };
    const onMessage = (message) => {
      if (gen !== this._gen) return;
      let data;
      try { data = JSON.parse(message.data); } catch { return; }
      // `data:` is the WebSocket `event` frame, or (docs/protocol.md's
      // example) just its `event`: accept both, positions from `id:`.
      const frame = data && data.type === 'event' && data.event ? data : { type: 'event', topic: null, position: null, event: data };
      if (frame.position == null && message.lastEventId) frame.position = Number(message.lastEventId);
      if (frame.position == null || !frame.event) return;
      // A stream may carry an event once for several topics: give it to
      // every subscription it belongs to, under that subscription's topic
      // (as a WebSocket would); each drops what it already has.
      for (const sub of this._subs.values()) {
        if (sub.topic === frame.topic || topicMatches(sub.topic, frame.event)) this._deliver(sub, { ...frame, topic: sub.topic });
      }
    };
    // The server names its messages `event:` event; unnamed ones arrive as `message`.
    es.onmessage = onMessage;
    es.addEventListener?.('event', onMessage);
    // The server could not resume from `since` (too far behind, or ahead of
    // its head): every subscription refetches its state; events after
    // `position` (the message's `id:`) follow.
    es.addEventListener?.('reset', (message) => {
      if (gen !== this._gen) return;
      let position = Number(message?.lastEventId);
      try { position = JSON.parse(message.data).position ?? position; } catch { /* id: alone */ }
      for (const sub of this._subs.values()) {
        if (Number.isFinite(position)) sub.position = position;
        try { sub.handlers.onReset?.({ topic: sub.topic, position: sub.position }, sub.handle); } catch (error) { this._report(error); }
      }
    });
    es.onerror = () => {
      if (gen !== this._gen) return;
      if (es.readyState === 2 /* CLOSED: the browser gave up */ || !opened) {
        this._sseFailed(gen, opened);
      } else {
        // The browser reconnects by itself, sending Last-Event-ID.
        this._setState('reconnecting', { transport: 'sse', nextRetryAt: null, delayMs: null, attempt: this._attempt });
        opened = false;
        const reopenedGen = gen;
        es.onopen = () => {
          if (reopenedGen !== this._gen) return;
          opened = true;
          this._connected('sse');
        };
      }
    };
  }

  _sseFailed(gen, hadOpened) {
    if (gen !== this._gen) return;
    this._teardown('sse failed');
    // Neither transport works right now: go back to trying WebSocket first.
    if (!hadOpened) this._wsFailures = 0;
    this._afterDrop({ code: 0, reason: 'event stream failed' });
  }

  _restartSse() {
    if (this.transport !== 'sse' || this._closedByUser) return;
    this._teardown('restarting the event stream');
    this._openSse();
  }

  _scheduleSseRestart() {
    // Coalesce several subscribe/unsubscribe calls into one new stream.
    this._timer('sseRestart', 0, () => this._restartSse());
  }

  /** While on SSE, try a WebSocket now and then; switch back when one opens. */
  _scheduleProbe() {
    const gen = this._gen;
    this._timer('probe', this._wsProbeMs, () => {
      if (gen !== this._gen) return;
      let probe;
      try { probe = new this._WebSocket(this.wsUrl); } catch { this._scheduleProbe(); return; }
      probe.onopen = () => {
        try { probe.close(1000, 'probe'); } catch { /* ignore */ }
        if (gen !== this._gen) return;
        this._wsFailures = 0;
        this._open();
      };
      probe.onclose = () => { if (gen === this._gen && this.transport === 'sse') this._scheduleProbe(); };
      probe.onerror = () => {};
    });
  }
}

/** Creates a client and starts connecting. */
export function connect(options) {
  return new LarderClient(options).connect();
}

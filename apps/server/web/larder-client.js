// Larder's realtime client: one connection (WebSocket, or Server-Sent Events
// when WebSocket cannot connect) carrying any number of topic subscriptions,
// with resume after every reconnect so that a subscriber sees each event once
// and in order. Works in browsers and in Node >= 20 (pass `WebSocket` on
// Node 20, where it is not global). No dependencies. docs/client.md is the
// guide; larder-client.d.ts has the types.
//
// This file is the entry point: the LarderClient class (its public API, the
// connection's life cycle, reconnects and tokens) and everything the other
// modules export. They hold one job each:
// - larder-protocol.js: protocol version, close codes, event types, topic
//   matching, token expiry;
// - larder-websocket.js: the WebSocket transport and the server's frames;
// - larder-sse.js: the Server-Sent Events fallback and the WebSocket probe;
// - larder-commands.js: commands (REST, exactly once, with an offline queue).

import { CommandQueue, backoffDelay, memoryStorage, sendCommand } from './larder-commands.js';
import { CloseCode, tokenExpiry } from './larder-protocol.js';
import { serverSentEventsMethods } from './larder-sse.js';
import { webSocketMethods } from './larder-websocket.js';

export {
  AlertTypes, CloseCode, EventTypes, PROTOCOL_VERSION, tokenExpiry, topicMatches,
} from './larder-protocol.js';

// The command side (exactly-once REST commands, the offline queue) lives in
// larder-commands.js; everything of it is available from here too.
export {
  CommandError, CommandQueue, CommandState, backoffDelay, isTransientStatus, isValidIdempotencyKey,
  memoryStorage, newIdempotencyKey, retryAfterMs, sendCommand,
} from './larder-commands.js';

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

  // ---- shared by both transports ------------------------------------------

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
}

// The transports' methods live in their own modules (see the top of this
// file) and are installed here as if declared in the class: not enumerable,
// like class methods, with `this` the client.
for (const methods of [webSocketMethods, serverSentEventsMethods]) {
  for (const [name, descriptor] of Object.entries(Object.getOwnPropertyDescriptors(methods))) {
    Object.defineProperty(LarderClient.prototype, name, { ...descriptor, enumerable: false });
  }
}

/** Creates a client and starts connecting. */
export function connect(options) {
  return new LarderClient(options).connect();
}

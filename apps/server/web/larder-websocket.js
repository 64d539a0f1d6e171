// The WebSocket transport of LarderClient: opening the socket and
// authenticating, requests and their replies, and the server's frames
// (welcome, subscribed, events, presence, heartbeats, reconnect, errors).
// These are methods of the client (`this` is the LarderClient): larder-client.js
// installs them on its prototype, so they read and write its state as the
// methods declared there do. docs/protocol.md is the reference.

import { CloseCode, tokenExpiry } from './larder-protocol.js';

/** LarderClient's WebSocket methods (installed by larder-client.js). */
export const webSocketMethods = {
  // ---- opening, requests ----------------------------------------------------

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
  },

  /**
   * A WebSocket attempt never opened. It counts towards the SSE fallback,
   * except while the server is restarting (it said `reconnect`): then it is
   * down for every transport, and the fallback would only land on SSE for
   * `wsProbeMs` once it is back.
   */
  _wsFailed() {
    if (this._now() >= this._restartingUntil) this._wsFailures++;
  },

  _send(message) {
    if (this._ws && this._ws.readyState === 1) {
      this._ws.send(JSON.stringify(message));
      return true;
    }
    return false;
  },

  _request(message, extra = {}) {
    const id = this._id();
    return new Promise((resolve, reject) => {
      this._pending.set(id, { resolve, reject, type: message.type, ...extra });
      if (!this._send({ ...message, id })) {
        this._pending.delete(id);
        reject(new Error('not connected'));
      }
    });
  },

  _sendSubscribe(sub) {
    const message = { type: 'subscribe', id: this._id(), topic: sub.topic };
    // A derived topic (a dashboard: `onState`) has no events to resume:
    // every (re)subscription asks for a fresh snapshot.
    if (sub.handlers.onState) message.snapshot = true;
    else if (sub.position != null) message.since = sub.position;
    else if (sub.snapshot) message.snapshot = true;
    sub.acked = false;
    sub.requestId = message.id;
    this._send(message);
  },

  // ---- WebSocket frames ----------------------------------------------------

  _onFrame(frame) {
    this._armLiveness();
    switch (frame.type) {
      case 'welcome': return this._onWelcome(frame);
      case 'subscribed': return this._onSubscribed(frame);
      case 'unsubscribed': return this._resolve(frame.id, frame);
      case 'event': return this._onEvent(frame);
      case 'state': return this._onState(frame);
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
  },

  _resolve(id, value) {
    const pending = this._pending.get(id);
    if (pending) { this._pending.delete(id); pending.resolve(value); }
  },

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
  },

  /** Nothing from the server for two heartbeats and a bit: the link is dead even if the socket says open. */
  _armLiveness() {
    if (this.transport !== 'websocket' || !this.heartbeatMs) return;
    const gen = this._gen;
    this._timer('liveness', this.heartbeatMs * 2 + 5000, () => {
      if (gen !== this._gen) return;
      this._teardown('no heartbeat');
      this._afterDrop({ code: CloseCode.HEARTBEAT_TIMEOUT, reason: 'no heartbeat from the server' });
    });
  },

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
  },

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
  },

  _onEvent(frame) {
    const sub = this._subs.get(frame.topic);
    if (sub) this._deliver(sub, frame);
  },

  /** A derived topic's state (a dashboard), pushed coalesced: the newest wins, an older one is dropped. */
  _onState(frame) {
    const sub = this._subs.get(frame.topic);
    if (!sub || !sub.acked) return;
    const position = Number(frame.position);
    if (sub.position != null && position < sub.position) return;
    sub.position = position;
    try { sub.handlers.onState?.(frame.data, frame); } catch (error) { this._report(error); }
  },
};

// The Server-Sent Events fallback of LarderClient: one event stream for
// every subscription, resumed from the lowest position any of them applied,
// restarted when the subscriptions or the token change, and a WebSocket
// probe now and then to switch back. These are methods of the client
// (`this` is the LarderClient): larder-client.js installs them on its
// prototype, so they read and write its state as the methods declared there do.

import { tokenExpiry, topicMatches } from './larder-protocol.js';

/** LarderClient's Server-Sent Events methods (installed by larder-client.js). */
export const serverSentEventsMethods = {
  async _openSse() {
    const gen = this._gen;
    let token;
    try { token = await this._currentToken(); } catch (error) {
      this._setState('unauthorized', { reason: String(error?.message ?? error) });
      return;
    }
    if (gen !== this._gen || this._closedByUser) return;
    // Derived topics (dashboards: `onState`) are pushed over WebSocket only;
    // a stream leaves them out (their page reads them over REST meanwhile).
    const subs = [...this._subs.values()].filter((s) => !s.handlers.onState);
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
  },

  _sseFailed(gen, hadOpened) {
    if (gen !== this._gen) return;
    this._teardown('sse failed');
    // Neither transport works right now: go back to trying WebSocket first.
    if (!hadOpened) this._wsFailures = 0;
    this._afterDrop({ code: 0, reason: 'event stream failed' });
  },

  _restartSse() {
    if (this.transport !== 'sse' || this._closedByUser) return;
    this._teardown('restarting the event stream');
    this._openSse();
  },

  _scheduleSseRestart() {
    // Coalesce several subscribe/unsubscribe calls into one new stream.
    this._timer('sseRestart', 0, () => this._restartSse());
  },

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
  },};

// Larder's command side for JavaScript: REST commands sent exactly once, and
// an offline queue that keeps them (in localStorage) until the server has
// answered. larder-client.js wires both to a realtime connection and
// re-exports everything here; docs/client.md is the guide.
//
// Exactly once rests on the server's `Idempotency-Key` (docs/api.md): one
// key per logical command, kept across every retry of it, also across a page
// reload while it waits in the queue. A retry whose first attempt did reach
// the server is answered from the key (`Idempotent-Replayed: true`) instead
// of being applied again.

/** The states of a queued command. */
export const CommandState = Object.freeze({ PENDING: 'pending', DONE: 'done', CONFLICTED: 'conflicted' });

/**
 * Delay before retry `attempt` (0 for the first retry): "full jitter",
 * uniformly random in [0, min(maxMs, baseMs * 2^attempt)). The randomness
 * spreads a crowd of clients that lost the server at the same moment, so
 * they do not all come back in the same millisecond.
 * @param {number} attempt
 * @param {{baseMs?: number, maxMs?: number, random?: () => number}} [options]
 */
export function backoffDelay(attempt, { baseMs = 1000, maxMs = 30000, random = Math.random } = {}) {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(Math.max(attempt, 0), 30));
  return Math.floor(random() * ceiling);
}

/**
 * A new idempotency key: a random UUID. `crypto.randomUUID` exists only in
 * secure contexts (https, localhost); a tablet on a shop's LAN over plain
 * http still has `crypto.getRandomValues`, so build a version-4 UUID from it.
 */
export function newIdempotencyKey() {
  const c = globalThis.crypto;
  if (typeof c?.randomUUID === 'function') return c.randomUUID();
  if (typeof c?.getRandomValues !== 'function') throw new Error('no crypto.getRandomValues to make an idempotency key');
  const b = c.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const hex = [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** What the server accepts as a key: 1 to 255 visible ASCII characters. */
export function isValidIdempotencyKey(key) {
  return typeof key === 'string' && /^[\x21-\x7e]{1,255}$/.test(key);
}

/**
 * Whether an answer leaves the command undecided, so sending it again with
 * the same key is right: no answer at all (status 0: the network failed, or
 * the answer was lost on the way), 408, 429 and every 5xx. Any other 4xx is
 * the server's decision and is final.
 */
export function isTransientStatus(status) {
  return status === 0 || status === 408 || status === 429 || status >= 500;
}

/** `Retry-After` (seconds, or an HTTP date) in ms from `now`; null when absent or unreadable. */
export function retryAfterMs(value, now = Date.now()) {
  if (value == null || value === '') return null;
  const text = String(value).trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const at = Date.parse(text);
  return Number.isNaN(at) ? null : Math.max(0, at - now);
}

/** A command that failed: refused by the server (`transient` false) or undecided after its retries (`transient` true). */
export class CommandError extends Error {
  constructor(message, { status = 0, code = 'network_error', details = {}, key = null, transient = false, attempts = 0 } = {}) {
    super(message);
    this.name = 'CommandError';
    this.status = status;
    this.code = code;
    this.details = details;
    this.key = key;
    this.transient = transient;
    this.attempts = attempts;
  }
}

const AUTH_RETRY_CODES = ['token_expired', 'invalid_token'];

/**
 * Sends one command, retrying what is undecided (see `isTransientStatus`)
 * with one `Idempotency-Key` throughout. Resolves with
 * `{status, body, replayed, key, attempts}`; rejects with a `CommandError`.
 *
 * @param {{path: string, method?: string, body?: unknown, ifMatch?: number|string|null, key?: string}} command
 * @param {object} options `fetch`, `apiUrl`, `token` (async), `refreshToken`
 *   (async, optional), `maxAttempts` (default 5), `backoff`
 *   ({baseMs, maxMs}), `maxRetryAfterMs` (default 30 000), `random`,
 *   `sleep` (ms => Promise), `now`, `onAttempt` (called before each send).
 */
export async function sendCommand(command, options) {
  const {
    fetch: doFetch, apiUrl, token, refreshToken = null, maxAttempts = 5,
    backoff = { baseMs: 500, maxMs: 8000 }, maxRetryAfterMs = 30000, random = Math.random,
    sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms)), now = () => Date.now(), onAttempt = null,
  } = options;
  const key = command.key ?? newIdempotencyKey();
  if (!isValidIdempotencyKey(key)) throw new TypeError('an idempotency key is 1 to 255 visible ASCII characters');
  const method = command.method ?? 'POST';
  const url = `${apiUrl.replace(/\/+$/, '')}${command.path}`;
  let refreshed = false;
  let last = null;
  for (let attempt = 1; attempt <= maxAttempts; attempt++) {
    onAttempt?.({ key, attempt });
    const headers = { authorization: `Bearer ${await token()}`, 'idempotency-key': key };
    if (command.body !== undefined) headers['content-type'] = 'application/json';
    if (command.ifMatch != null) headers['if-match'] = `"${command.ifMatch}"`;
    let response = null;
    try {
      response = await doFetch(url, { method, headers, body: command.body === undefined ? undefined : JSON.stringify(command.body) });
    } catch (error) {
      last = { status: 0, code: 'network_error', message: `no answer from the server: ${error?.message ?? error}`, wait: null };
    }
    if (response) {
      const text = await response.text().catch(() => '');
      let body = null;
      try { body = text ? JSON.parse(text) : null; } catch { body = null; }
      const replayed = response.headers.get('idempotent-replayed') === 'true';
      if (response.ok) return { status: response.status, body, replayed, key, attempts: attempt };
      const code = body?.code ?? `http_${response.status}`;
      // An expired or no longer valid token stores no key on the server: get
      // a new token once and send again, same key, without counting it.
      if (response.status === 401 && AUTH_RETRY_CODES.includes(code) && refreshToken && !refreshed) {
        refreshed = true;
        try { await refreshToken(); } catch { /* the next attempt answers 401 again */ }
        attempt--;
        continue;
      }
      const message = body?.message ?? `HTTP ${response.status}`;
      if (!isTransientStatus(response.status)) {
        throw new CommandError(message, { status: response.status, code, details: body?.details ?? {}, key, attempts: attempt });
      }
      last = { status: response.status, code, message, wait: retryAfterMs(response.headers.get('retry-after'), now()) };
    }
    if (attempt < maxAttempts) {
      // The server's Retry-After when it gave one (bounded: a far date must
      // not park the command for hours), else backoff with jitter.
      const wait = last.wait != null ? Math.min(last.wait, maxRetryAfterMs) : backoffDelay(attempt - 1, { ...backoff, random });
      await sleep(wait);
    }
  }
  throw new CommandError(last.message, { status: last.status, code: last.code, key, transient: true, attempts: maxAttempts });
}

/** An in-memory stand-in for localStorage (outside browsers, or when storage is refused). */
export function memoryStorage() {
  const map = new Map();
  return {
    getItem: (k) => (map.has(k) ? map.get(k) : null),
    setItem: (k, v) => { map.set(k, String(v)); },
    removeItem: (k) => { map.delete(k); },
  };
}

const copy = (entry) => JSON.parse(JSON.stringify(entry));

/**
 * Commands waiting for the server, in the order they were made, persisted in
 * `storage` under `storageKey` so a reload keeps them. Each holds its
 * idempotency key from the moment it is queued, so however often it is sent
 * (retries, reconnects, reloads, two tabs of one user) the server applies it
 * once.
 *
 * States: `pending` (not answered yet; `sending` says whether it is on the
 * wire), `done` (applied, or answered as a replay of an earlier attempt),
 * `conflicted` (the server refused it: `error.code` says why; `dismiss` or
 * `retry` it). A conflicted command does not hold back the ones after it:
 * they are independent decisions of the user.
 */
export class CommandQueue {
  /**
   * @param {object} o `send(entry, {onAttempt})` (a `sendCommand` with the
   *   entry's key), `canSend()` (is the way to the server up?), `storage`,
   *   `storageKey` (null: not persisted), `maxEntries` (default 100),
   *   `keepDone` (default 20), `retryBackoff` ({baseMs, maxMs}), `random`,
   *   `now`, `setTimeout`, `clearTimeout`, `env` (for `storage` events).
   */
  constructor(o) {
    this._send = o.send;
    this._canSend = o.canSend ?? (() => true);
    this._storage = o.storage ?? memoryStorage();
    this._storageKey = o.storageKey ?? null;
    this._maxEntries = o.maxEntries ?? 100;
    this._keepDone = o.keepDone ?? 20;
    this._retryBackoff = o.retryBackoff ?? { baseMs: 1000, maxMs: 30000 };
    this._random = o.random ?? Math.random;
    this._now = o.now ?? (() => Date.now());
    this._setTimeout = o.setTimeout ?? ((fn, ms) => setTimeout(fn, ms));
    this._clearTimeout = o.clearTimeout ?? ((t) => clearTimeout(t));
    this._listeners = new Set();
    this._forgotten = new Set(); // ids removed here: never adopted back from storage
    this._failures = 0; // rounds in a row that ended undecided, for the backoff
    this._timer = null;
    this._draining = null;
    this._entries = this._read();
    for (const e of this._entries) e.sending = false; // a reload ended whatever was on the wire
    this._onStorage = (event) => { if (event.key === this._storageKey) this._adopt(); };
    o.env?.addEventListener?.('storage', this._onStorage);
  }

  /** Calls `fn({entry, change})` on every change; returns a function that removes it. */
  on(fn) {
    this._listeners.add(fn);
    return () => this._listeners.delete(fn);
  }

  /** Copies of the commands, oldest first. */
  list() { return this._entries.map(copy); }

  /** One command by id (a copy), or null. */
  get(id) {
    const entry = this._entries.find((e) => e.id === id);
    return entry ? copy(entry) : null;
  }

  /** How many commands are in each state. */
  counts() { return this._counts(); }

  _counts() {
    const counts = { pending: 0, done: 0, conflicted: 0 };
    for (const e of this._entries) counts[e.state]++;
    return counts;
  }

  /**
   * Queues a command and starts sending if the way is up. `label` and `meta`
   * are for the UI (kept, never sent). Throws a `CommandError` with code
   * `queue_full` when `maxEntries` commands are pending or conflicted.
   */
  enqueue({ path, method = 'POST', body, ifMatch = null, key = newIdempotencyKey(), label = null, meta = null }) {
    if (!isValidIdempotencyKey(key)) throw new TypeError('an idempotency key is 1 to 255 visible ASCII characters');
    // Done commands are only there to be shown: they make room first.
    this._pruneDone(this._counts().done - (this._entries.length - this._maxEntries + 1));
    if (this._entries.length >= this._maxEntries) {
      throw new CommandError(`the offline queue is full (${this._maxEntries} commands): wait for the connection, or dismiss some`, { code: 'queue_full', key });
    }
    const at = this._now();
    const entry = {
      id: key, key, method, path, body, ifMatch, label, meta, state: CommandState.PENDING,
      sending: false, attempts: 0, createdAt: at, updatedAt: at, error: null, result: null,
    };
    this._entries.push(entry);
    this._changed(entry, 'queued');
    this.flush();
    return copy(entry);
  }

  /** Removes a command that is done or conflicted, or pending and not on the wire. Returns whether it did. */
  dismiss(id) {
    const entry = this._entries.find((e) => e.id === id);
    if (!entry || entry.sending) return false;
    this._remove(entry);
    return true;
  }

  /**
   * Sends a conflicted command again as a new decision of the user: a fresh
   * key (the refused attempt stored none, but the body may differ now),
   * `changes` ({body, ifMatch}) applied, queued at the end. Returns the new
   * entry, or null if there is no such conflicted command.
   */
  retry(id, changes = {}) {
    const entry = this._entries.find((e) => e.id === id);
    if (!entry || entry.state !== CommandState.CONFLICTED) return null;
    this._remove(entry);
    const { path, method, body, ifMatch, label, meta } = { ...entry, ...changes };
    return this.enqueue({ path, method, body, ifMatch, label, meta });
  }

  /** Removes every done command. */
  clearDone() {
    for (const e of this._entries.filter((x) => x.state === CommandState.DONE)) this._remove(e);
  }

  /** Sends pending commands in order, one at a time, while the way is up. Resolves when it stops. */
  flush() {
    if (this._draining) {
      // The running round may have looked for work just before this call:
      // make sure one more round looks again.
      this._again = true;
      return this._draining;
    }
    this._clearRetry();
    this._again = false;
    this._draining = this._drain().finally(() => {
      this._draining = null;
      if (this._again && this._timer == null) this.flush();
    });
    return this._draining;
  }

  /** Stops the retry timer and the `storage` listener (the entries stay stored). */
  close(env) {
    this._clearRetry();
    env?.removeEventListener?.('storage', this._onStorage);
  }

  async _drain() {
    for (;;) {
      const entry = this._entries.find((e) => e.state === CommandState.PENDING);
      if (!entry || !this._canSend()) return;
      entry.sending = true;
      this._changed(entry, 'sending');
      let outcome;
      try {
        const res = await this._send(copy(entry), {
          onAttempt: () => { entry.attempts++; entry.updatedAt = this._now(); this._save(); },
        });
        outcome = { state: CommandState.DONE, result: { status: res.status, body: res.body, replayed: !!res.replayed }, error: null };
      } catch (error) {
        const e = { status: error?.status ?? 0, code: error?.code ?? 'error', message: String(error?.message ?? error), details: error?.details ?? {} };
        outcome = error?.transient || !(error instanceof CommandError)
          ? { state: CommandState.PENDING, result: null, error: e }
          : { state: CommandState.CONFLICTED, result: null, error: e };
      }
      entry.sending = false;
      entry.updatedAt = this._now();
      if (!this._entries.includes(entry)) continue; // removed meanwhile (another tab's storage)
      Object.assign(entry, outcome);
      if (entry.state === CommandState.PENDING) {
        // Undecided after its retries: keep it, with its key, and try again
        // later (or when the connection comes back, whichever is first).
        this._changed(entry, 'retrying');
        this._scheduleRetry();
        return;
      }
      this._failures = 0;
      this._pruneDone(this._keepDone);
      this._changed(entry, entry.state);
    }
  }

  _scheduleRetry() {
    const delay = backoffDelay(this._failures++, { ...this._retryBackoff, random: this._random });
    this._clearRetry();
    this._timer = this._setTimeout(() => { this._timer = null; this.flush(); }, delay);
  }

  _clearRetry() {
    if (this._timer != null) { this._clearTimeout(this._timer); this._timer = null; }
  }

  /** Keeps at most `keep` done commands (the newest). */
  _pruneDone(keep) {
    const done = this._entries.filter((e) => e.state === CommandState.DONE);
    for (const e of done.slice(0, Math.max(0, done.length - Math.max(0, keep)))) this._remove(e);
  }

  _remove(entry) {
    this._entries = this._entries.filter((e) => e !== entry);
    this._forgotten.add(entry.id);
    this._changed(entry, 'removed');
  }

  _changed(entry, change) {
    this._save();
    for (const fn of [...this._listeners]) {
      try { fn({ entry: copy(entry), change }); } catch (error) {
        if (typeof console !== 'undefined') console.warn('larder-commands: a listener threw', error);
      }
    }
  }

  _read() {
    if (!this._storageKey) return [];
    try {
      const stored = JSON.parse(this._storage.getItem(this._storageKey) ?? 'null');
      return Array.isArray(stored?.entries) ? stored.entries.filter((e) => e && isValidIdempotencyKey(e.key)) : [];
    } catch {
      return [];
    }
  }

  /**
   * Another tab of the same user changed the stored list: take the commands
   * it added. Both tabs may then send one; its key makes that harmless.
   */
  _adopt() {
    const known = new Set(this._entries.map((e) => e.id));
    const added = this._read().filter((e) => !known.has(e.id) && !this._forgotten.has(e.id));
    if (added.length === 0) return;
    for (const e of added) { e.sending = false; this._entries.push(e); }
    this._entries.sort((a, b) => a.createdAt - b.createdAt);
    for (const e of added) this._changed(e, 'adopted');
    this.flush();
  }

  _save() {
    if (!this._storageKey) return;
    try {
      this._storage.setItem(this._storageKey, JSON.stringify({ v: 1, entries: this._entries }));
    } catch (error) {
      // Storage full or refused (private mode): the queue still works for
      // this page, it just does not survive a reload.
      if (typeof console !== 'undefined') console.warn('larder-commands: could not store the queue', error);
    }
  }
}

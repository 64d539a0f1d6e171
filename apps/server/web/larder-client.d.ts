// Types of larder-client.js, the client's entry point. It re-exports what
// larder-protocol.js and larder-commands.js export, so these are their types
// too; larder-websocket.js and larder-sse.js hold methods of LarderClient
// and export nothing of their own to users. The event catalog follows
// docs/events.md.

export declare const PROTOCOL_VERSION: 1;

export declare const CloseCode: Readonly<{
  NORMAL: 1000; GOING_AWAY: 1001; TOO_BIG: 1009; HEARTBEAT_TIMEOUT: 4000; AUTH_TIMEOUT: 4001;
  INVALID_TOKEN: 4002; TOKEN_EXPIRED: 4003; RATE_LIMITED: 4008; SLOW_CONSUMER: 4009; TOO_MANY_CONNECTIONS: 4029;
}>;

// ---- event catalog -----------------------------------------------------------

export type Uuid = string;
export type AdjustReason = 'received' | 'sold' | 'wasted' | 'counted' | 'correction' | 'transfer_in' | 'transfer_out' | 'returned';

export interface EventDataMap {
  StoreCreated: { store_id: Uuid; tenant: string; name: string };
  StoreRenamed: { store_id: Uuid; name: string };
  StoreClosed: { store_id: Uuid };
  ItemAdded: { item_id: Uuid; store_id: Uuid; sku: string; name: string; unit: string; quantity: number; threshold: number };
  /** `quantity` is the stock on hand after the change. */
  StockAdjusted: { item_id: Uuid; store_id: Uuid; delta: number; quantity: number; reason: AdjustReason; note: string | null };
  ThresholdChanged: { item_id: Uuid; store_id: Uuid; threshold: number };
  ItemRenamed: { item_id: Uuid; store_id: Uuid; name: string };
  ItemRemoved: { item_id: Uuid; store_id: Uuid };
  LowStock: { item_id: Uuid; store_id: Uuid; sku: string; quantity: number; threshold: number };
  OutOfStock: { item_id: Uuid; store_id: Uuid; sku: string };
  Restocked: { item_id: Uuid; store_id: Uuid; sku: string; quantity: number; threshold: number };
  TransferCompleted: { transfer_id: Uuid; from_store: Uuid; from_item: Uuid; to_store: Uuid; to_item: Uuid; sku: string; quantity: number };
}

export type EventType = keyof EventDataMap;
export declare const EventTypes: readonly EventType[];
export declare const AlertTypes: readonly ['LowStock', 'OutOfStock', 'Restocked'];

export interface EventMetadata {
  tenant: string;
  store: Uuid | null;
  entity_type: 'store' | 'item' | string;
  entity_id: string;
  actor: string | null;
  correlation_id: Uuid | null;
}

/** An event as delivered live, discriminated by `type`. */
export type LarderEvent = {
  [T in EventType]: {
    id: Uuid;
    type: T;
    stream: string;
    /** Place in its stream: send it back as If-Match. */
    version: number;
    /** RFC 3339, UTC. */
    recorded_at: string;
    data: EventDataMap[T];
    metadata: EventMetadata;
  };
}[EventType];

/** An `event` frame (WebSocket) or SSE `data:`. */
export interface EventFrame {
  type: 'event';
  topic: string;
  /** Global, gap-free position. */
  position: number;
  event: LarderEvent;
}

// ---- server messages -----------------------------------------------------------------

export interface Welcome {
  type: 'welcome'; id?: string; protocol: number; connection_id: string; heartbeat_ms: number;
  head: number; user: string; /** unix seconds */ expires_at: number;
}
export interface Subscribed {
  type: 'subscribed'; id: string; topic: string; resume: 'new' | 'recovered' | 'reset'; position: number;
  snapshot?: Snapshot;
}
export interface Snapshot<T = unknown> { position: number; data: T }
export interface PresenceChanged { type: 'presence_changed'; store: string; user: string; state: 'joined' | 'left' }
export interface Presence { type: 'presence'; id: string; store: string; users: string[] }
export interface Heartbeat { type: 'heartbeat'; head: number }
export interface Warning { type: 'warning'; code: string; message: string }
export interface Reconnect { type: 'reconnect'; delay_ms: number; reason: string }
export interface ServerError { type?: 'error'; id?: string; code: string; message: string; error?: unknown }

// ---- client -------------------------------------------------------------------------

export type ConnectionState = 'idle' | 'connecting' | 'connected' | 'reconnecting' | 'offline' | 'unauthorized' | 'closed';
export type Transport = 'websocket' | 'sse';

export interface StateChange {
  state: ConnectionState;
  transport: Transport | null;
  /** `reconnecting`: when the next try is (ms since the epoch); null while the browser retries SSE itself. */
  nextRetryAt?: number | null;
  delayMs?: number | null;
  attempt?: number;
  /** The close code that ended the last connection, when there was one. */
  code?: number;
  reason?: string;
}

export type TokenSource = string | (() => string | Promise<string>);

export interface LarderClientOptions {
  /** The server's base URL, e.g. `https://larder.example`; defaults to `location.origin` in a browser. */
  url?: string;
  /** Override the WebSocket URL (default: base with ws(s):// + `/ws`). */
  wsUrl?: string;
  /** Override the SSE URL (default: base + `/api/v1/events/stream`). */
  sseUrl?: string;
  /** A token, or a function asked for one at every connection. */
  token: TokenSource;
  /** Gets a new token: called before the token expires (in-band `refresh`) and after a 4003 close. */
  refreshToken?: () => Promise<string | { token: string }>;
  /** Refresh this long before expiry (default 60 000 ms, at most half the remaining lifetime). */
  refreshBeforeMs?: number;
  /** WebSocket constructor (required on Node 20; defaults to the global). */
  WebSocket?: any;
  /** EventSource constructor for the SSE fallback (defaults to the global; null disables SSE). */
  EventSource?: any;
  /** `auto` (default): WebSocket, SSE after `fallbackAfter` WebSocket attempts in a row failed to open. */
  transport?: 'auto' | 'websocket' | 'sse';
  fallbackAfter?: number;
  /** While on SSE, try a WebSocket this often and switch back when it opens (default 60 000 ms). */
  wsProbeMs?: number;
  /** After the server said `reconnect` (it is restarting), how long WebSocket attempts that fail do not count towards `fallbackAfter`. Default 30000. */
  restartGraceMs?: number;
  /** Full-jitter backoff: the n-th retry waits random() * min(maxMs, baseMs * 2^n). Defaults 1 000 / 30 000. */
  backoff?: { baseMs?: number; maxMs?: number };
  /** Give up on a connection attempt without a welcome after this long (default 10 000 ms). */
  connectTimeoutMs?: number;
  /** Ping interval (default half the server's heartbeat). */
  pingIntervalMs?: number;
  /** Injectable for tests. */
  random?: () => number;
  now?: () => number;
  setTimeout?: (fn: () => void, ms: number) => unknown;
  clearTimeout?: (handle: unknown) => void;
  /** Where `online` / `offline` are listened for (default `window`; null: none). */
  env?: EventTarget | null;
  /** Where `visibilitychange` is listened for (default `document`; null: none). */
  document?: (EventTarget & { visibilityState: string }) | null;
  /** Whether the network is up (default `navigator.onLine`, true outside browsers). */
  isOnline?: () => boolean;
  /** The REST base for commands (default: base + `/api/v1`). */
  apiUrl?: string;
  /** fetch for commands (default: the global). */
  fetch?: typeof fetch;
  /** Retries of one command under one key (defaults: 5 attempts, backoff 500 ms doubling to 8 000 ms, full jitter). */
  commandRetry?: { maxAttempts?: number; baseMs?: number; maxMs?: number };
  /** Where the offline queue is kept (default `localStorage`; null: in memory only). */
  storage?: CommandStorage | null;
  /** Whose queue this is, e.g. `${tenant}/${user}`: the storage key is `larder.commands.v1:<queueKey>`. Without it the queue lives in memory only. */
  queueKey?: string;
  /** At most this many commands in the queue (default 100); more throws `queue_full`. Done ones make room. */
  queueLimit?: number;
}

// ---- commands -------------------------------------------------------------------------

export interface CommandStorage {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

/** A REST command. `path` is below the API base, e.g. `/items/{id}/adjust`. */
export interface CommandRequest {
  path: string;
  /** Default `POST`. */
  method?: string;
  /** Sent as JSON. */
  body?: unknown;
  /** The version the decision was made against: sent as `If-Match: "<v>"`. */
  ifMatch?: number | string | null;
  /** Your own idempotency key (1 to 255 visible ASCII characters); default a random UUID. */
  key?: string;
}

/** The answer of a command that was applied (or answered from its key). */
export interface CommandResult<B = CommandAnswer> {
  status: number;
  body: B;
  /** The server answered from the key (`Idempotent-Replayed: true`): an earlier attempt was applied. */
  replayed: boolean;
  key: string;
  attempts: number;
}

/** The body of a successful command (docs/api.md). */
export interface CommandAnswer { id: Uuid; stream: string; version: number; position: number; events: EventType[] }

export declare class CommandError extends Error {
  /** 0 when no answer came. */
  readonly status: number;
  /** The server's `code` (e.g. `version_conflict`, `insufficient_stock`), `network_error`, or `queue_full`. */
  readonly code: string;
  readonly details: Record<string, unknown>;
  readonly key: string | null;
  /** True: still undecided after the retries (send again with the same key). False: the server refused it. */
  readonly transient: boolean;
  readonly attempts: number;
}

export type CommandState = 'pending' | 'done' | 'conflicted';
export declare const CommandState: Readonly<{ PENDING: 'pending'; DONE: 'done'; CONFLICTED: 'conflicted' }>;

/** A command in the offline queue. */
export interface QueuedCommand<M = unknown> {
  /** Same as `key`. */
  id: string;
  key: string;
  method: string;
  path: string;
  body?: unknown;
  ifMatch: number | string | null;
  /** For the UI; never sent. */
  label: string | null;
  meta: M | null;
  state: CommandState;
  /** `pending` and on the wire now (cannot be dismissed). */
  sending: boolean;
  /** Requests sent so far, over retries and reconnects. */
  attempts: number;
  /** ms since the epoch. */
  createdAt: number;
  updatedAt: number;
  /** `conflicted`: why the server refused; `pending`: the last undecided failure. */
  error: { status: number; code: string; message: string; details: Record<string, unknown> } | null;
  /** `done`: the answer. */
  result: { status: number; body: CommandAnswer; replayed: boolean } | null;
}

export type QueueChange = 'queued' | 'sending' | 'retrying' | 'done' | 'conflicted' | 'removed' | 'adopted';
export interface CommandChange { entry: QueuedCommand; change: QueueChange }

export declare class CommandQueue {
  /** Copies, oldest first. */
  list(): QueuedCommand[];
  get(id: string): QueuedCommand | null;
  counts(): { pending: number; done: number; conflicted: number };
  on(listener: (change: CommandChange) => void): () => void;
  enqueue(command: CommandRequest & { label?: string | null; meta?: unknown }): QueuedCommand;
  /** Removes a done or conflicted command, or a pending one not on the wire. */
  dismiss(id: string): boolean;
  /** Sends a conflicted command again as a new decision: fresh key, `changes` applied, queued at the end. */
  retry(id: string, changes?: { body?: unknown; ifMatch?: number | string | null }): QueuedCommand | null;
  clearDone(): void;
  /** Sends pending commands in order while the way is up. */
  flush(): Promise<void>;
}

export declare function sendCommand(command: CommandRequest, options: {
  fetch: typeof fetch; apiUrl: string; token: () => Promise<string> | string;
  refreshToken?: (() => Promise<unknown>) | null; maxAttempts?: number; backoff?: { baseMs?: number; maxMs?: number };
  maxRetryAfterMs?: number; random?: () => number; sleep?: (ms: number) => Promise<void>; now?: () => number;
  onAttempt?: (info: { key: string; attempt: number }) => void;
}): Promise<CommandResult>;
export declare function newIdempotencyKey(): string;
export declare function isValidIdempotencyKey(key: unknown): key is string;
/** 0 (no answer), 408, 429, 5xx: retry with the same key. */
export declare function isTransientStatus(status: number): boolean;
export declare function retryAfterMs(value: string | null | undefined, now?: number): number | null;
export declare function memoryStorage(): CommandStorage;

/** `state`: a derived topic's state, pushed by the server (docs/protocol.md). */
export interface StateFrame {
  type: 'state';
  topic: string;
  position: number;
  data: unknown;
}

export interface SubscribeHandlers {
  /** Resume after this position (e.g. the `position` of the REST read the view was built from). */
  since?: number;
  /** Ask the server for a snapshot (WebSocket only) when there is no position yet. */
  snapshot?: boolean;
  onEvent?: (event: LarderEvent, frame: EventFrame) => void;
  /** The server could not replay from our position: refetch the state, live events go on after `position`. */
  onReset?: (info: { topic: string; position: number | null }, subscription: Subscription) => void;
  onSnapshot?: (snapshot: Snapshot, subscription: Subscription) => void;
  /**
   * A derived topic's state (`dashboard`, `dashboard:{store}`), pushed at
   * most once per interval. Giving it makes the subscription ask for a
   * snapshot every time it (re)subscribes; WebSocket only.
   */
  onState?: (data: unknown, frame: StateFrame) => void;
  onSubscribed?: (reply: Subscribed, subscription: Subscription) => void;
  onError?: (error: ServerError, subscription: Subscription) => void;
}

export interface Subscription {
  readonly topic: string;
  /** The last position applied (events at or below it are dropped). */
  readonly position: number | null;
  readonly active: boolean;
  readonly resume: 'new' | 'recovered' | 'reset' | null;
  /** Raise the position after a refetch current at `position`. Never lowers it. */
  setPosition(position: number): void;
  unsubscribe(): void;
}

export interface ClientEvents {
  state: StateChange;
  welcome: Welcome;
  event: EventFrame;
  presence: Presence;
  presence_changed: PresenceChanged;
  heartbeat: Heartbeat;
  warning: Warning;
  reconnect: Reconnect;
  error: ServerError;
  latency: { latencyMs: number | null; rttMs: number | null };
  /** A command of the offline queue changed (queued, sending, retrying, done, conflicted, removed, adopted from another tab). */
  command: CommandChange;
}

export declare class LarderClient {
  constructor(options: LarderClientOptions);
  readonly wsUrl: string;
  readonly sseUrl: string;
  readonly state: ConnectionState;
  readonly stateInfo: Omit<StateChange, 'state' | 'transport'>;
  readonly transport: Transport | null;
  readonly connectionId: string | null;
  readonly user: string | null;
  /** The last position the server routed (welcome, heartbeat). */
  readonly head: number | null;
  readonly heartbeatMs: number | null;
  /** Token expiry, ms since the epoch. */
  readonly expiresAt: number | null;
  /** now − recorded_at of the last delivered event, in ms. */
  readonly latencyMs: number | null;
  /** Round trip of the last ping, in ms. */
  readonly rttMs: number | null;
  readonly stats: { delivered: number; duplicates: number; reconnects: number };
  connect(): this;
  close(): void;
  reconnectNow(): void;
  on<K extends keyof ClientEvents>(type: K, listener: (detail: ClientEvents[K]) => void): () => void;
  subscribe(topic: string, handlers?: SubscribeHandlers): Subscription;
  ping(): Promise<number>;
  presence(store: string): Promise<string[]>;
  leave(store: string): void;
  /** The REST base commands go to. */
  readonly apiUrl: string;
  /** The offline queue. */
  readonly commands: CommandQueue;
  /** Sends a command now, exactly once (one key across retries). Rejects with `CommandError`. */
  command<B = CommandAnswer>(path: string, options?: Omit<CommandRequest, 'path'> & { maxAttempts?: number }): Promise<CommandResult<B>>;
  /** Queues a command: sent in order when connected, kept across reloads. */
  enqueue<M = unknown>(path: string, options?: Omit<CommandRequest, 'path'> & { label?: string; meta?: M }): QueuedCommand<M>;
}

export declare function connect(options: LarderClientOptions): LarderClient;
export declare function backoffDelay(attempt: number, options?: { baseMs?: number; maxMs?: number; random?: () => number }): number;
export declare function topicMatches(topic: string, event: Pick<LarderEvent, 'metadata'>): boolean;
export declare function tokenExpiry(token: string): number | null;

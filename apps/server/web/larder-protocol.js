// The realtime protocol as Larder's client sees it, without a connection:
// its version, the close codes, the event catalog of docs/events.md, which
// topic an event belongs to, and a token's expiry. Pure values and
// functions; larder-client.js re-exports every one of them.

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
    case 'session': return m.session === value;
    case 'orders': return m.store === value && m.entity_type === 'order';
    case 'station': {
      const [store, station] = [rest[0], rest.slice(1).join(':')];
      if (m.store !== store || m.entity_type !== 'order') return false;
      const named = stationsOf(event.data);
      return named.length === 0 || named.includes(station);
    }
    default: return false;
  }
}

/**
 * The kitchen stations an order event's data names: a line's `station` and
 * each fired line's. Empty when the event is about the whole order.
 */
export function stationsOf(data) {
  const named = [];
  if (data && typeof data.station === 'string') named.push(data.station);
  for (const line of (data && Array.isArray(data.lines) ? data.lines : [])) {
    if (line && typeof line.station === 'string') named.push(line.station);
  }
  return named;
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

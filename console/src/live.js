// The live feed: MQTT 3.1.1 over WebSocket (mqtt.js) to the `mqtt` URL of config.json, signed
// in as the app with its access token. Locally that is civic-local's `/mqtt`; on AWS, IoT Core's
// WSS endpoint behind a custom authorizer. Messages are envelopes
// `{v: 1, app, kind, seq, at, data}`, `data` being the REST shape of the entity.
//
// The client rule: after every (re)connect, subscribe, then re-read REST (messages sent while
// offline are gone: clean session, QoS 0); per entity (its topic), drop a message whose seq is
// not above the last one applied, since a re-read or a reordered delivery may have overtaken it.
import mqtt from 'mqtt';
import { config } from './api.js';

/**
 * One topic level from a name (a city, an id): `/`, `+`, `#`, `%` and spaces percent-encoded,
 * as the server writes them, so a name can neither add levels nor act as a wildcard.
 */
export function segment(name) {
  return name.replace(/[/+#% ]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`);
}

/** The last seq applied per entity; survives reconnects, since seqs only grow. */
export class SeqFilter {
  constructor() {
    this.last = new Map();
  }
  /** Whether a message of `entity` with `seq` is newer than what was applied; records it. */
  accept(entity, seq) {
    if (typeof seq !== 'number') return true; // no ordering to keep: apply
    const prev = this.last.get(entity);
    if (prev !== undefined && seq <= prev) return false;
    this.last.set(entity, seq);
    return true;
  }
  /** What a REST read showed, when its shape carries a version (Streetlight's does not). */
  seed(entity, seq) {
    if (typeof seq === 'number' && !(this.last.get(entity) >= seq)) this.last.set(entity, seq);
  }
}

/**
 * Connects and keeps connecting. `onState('on'|'off', reason)` follows the connection;
 * `onSubscribed()` runs after each (re)subscribe, which is when to re-read REST;
 * `onMessage(topic, envelope)` gets only new messages of `app`. Returns `{close}`.
 */
export function connectLive({ url, app, token, filters, filter, onState, onSubscribed, onMessage, onEnd }) {
  const client = mqtt.connect(url, {
    protocolVersion: 4,
    username: app,
    password: token,
    clean: true,
    // The server rewrites it (no take-over of device sessions); any unique id does.
    clientId: `web-${app}-${Math.random().toString(16).slice(2, 10)}`,
    // With `onEnd` the caller reconnects itself (with a new password); mqtt.js would reuse
    // the old one.
    reconnectPeriod: onEnd ? 0 : 2000,
    connectTimeout: 5000,
    keepalive: 30,
  });
  client.on('connect', () => {
    client.subscribe(filters, { qos: 0 }, (err, granted) => {
      // A refused filter comes back as 0x80 (128): say so rather than wait for silence.
      const refused = (granted ?? []).filter((g) => g.qos === 128).map((g) => g.topic);
      if (err || refused.length) {
        onState('off', err ? err.message : `not allowed: ${refused.join(', ')}`);
        return;
      }
      onState('on');
      onSubscribed();
    });
  });
  client.on('message', (topic, payload) => {
    let env;
    try {
      env = JSON.parse(new TextDecoder().decode(payload));
    } catch {
      return; // not ours: every live message is JSON
    }
    if (env?.v !== 1 || env.app !== app) return;
    if (filter.accept(topic, env.seq)) onMessage(topic, env);
  });
  client.on('close', () => {
    onState('off');
    onEnd?.();
  });
  client.on('offline', () => onState('off'));
  client.on('error', (err) => {
    // CONNACK 4/5: the token was refused (expired, revoked). Retrying cannot help.
    if (err?.code === 4 || err?.code === 5) {
      client.end(true);
      if (onEnd) return; // a refused ticket: the caller takes a new one
      onState('off', 'the live feed refused the token; sign in again');
    } else {
      onState('off', err?.message);
    }
  });
  return { close: () => client.end(true) };
}

/**
 * `connectLive` with a password that expires (Ozone's live ticket): `ticket()` gives a fresh
 * one before every connection, since the server closes the connection when its ticket
 * expires and a refused ticket cannot be retried. A failing `ticket()` (e.g. the session is
 * gone) is reported through `onTicketError` and retried after `retryMs`.
 */
export function connectLiveTicketed({ ticket, onTicketError, retryMs = 2000, ...options }) {
  let stopped = false;
  let conn = null;
  let timer = null;
  const again = () => {
    if (!stopped) timer = setTimeout(start, retryMs);
  };
  const start = async () => {
    let password;
    try {
      password = await ticket();
    } catch (e) {
      if (stopped) return;
      options.onState('off', e.message);
      onTicketError?.(e);
      again();
      return;
    }
    if (stopped) return;
    let ended = false; // 'close' may come more than once per client
    conn = connectLive({
      ...options,
      token: password,
      onEnd: () => {
        if (ended) return;
        ended = true;
        again();
      },
    });
  };
  start();
  return {
    close: () => {
      stopped = true;
      clearTimeout(timer);
      conn?.close();
    },
  };
}

/**
 * REST first, live after. `refresh()` re-reads through `read` and hands the newest result to
 * `onRead` (an older read that finishes last is dropped). Live messages that arrive while a
 * read is in flight are held and applied after it, so a read that started before a change
 * cannot overwrite the message that carried it. `onMessage` is the live handler to pass on.
 */
export function readThenLive({ read, onRead, apply, onError, isStopped }) {
  let generation = 0;
  let inflight = 0;
  let held = [];
  const refresh = async () => {
    const mine = ++generation;
    inflight += 1;
    try {
      const result = await read();
      if (!isStopped() && mine === generation) onRead(result);
    } catch (e) {
      if (!isStopped()) onError(e);
    } finally {
      inflight -= 1;
      if (inflight === 0 && !isStopped()) {
        held.forEach(apply);
        held = [];
      }
    }
  };
  const onMessage = (_topic, env) => (inflight ? held.push(env) : apply(env));
  return { refresh, onMessage };
}

/**
 * One view's live data, the whole client rule: `read()` through REST, then the feed
 * (`readThenLive` over `connectLive` with `token`, or over `connectLiveTicketed` when `ticket`
 * is given), re-reading after every (re)subscribe. `onRead(result, filter)` may seed the
 * filter with the versions it read. No callback runs after `close()`. Returns `{close}`.
 */
export function startLive({ app, token, ticket, filters, read, onRead, apply, onError, onState, onSubscribed }) {
  let stopped = false;
  const filter = new SeqFilter();
  const { refresh, onMessage } = readThenLive({
    read,
    onRead: (result) => onRead(result, filter),
    apply,
    onError,
    isStopped: () => stopped,
  });
  refresh();
  let conn = null;
  const options = {
    app,
    filters,
    filter,
    onMessage,
    onState: (state, note) => !stopped && onState(state, note ?? ''),
    onSubscribed: () => {
      if (stopped) return;
      refresh();
      onSubscribed?.();
    },
  };
  config()
    .then((cfg) => {
      if (stopped) return;
      // On AWS each app has its own URL (its custom authorizer's name is in the query).
      const url = cfg.apps?.[app]?.mqtt ?? cfg.mqtt;
      conn = ticket
        ? connectLiveTicketed({ ...options, url, ticket, onTicketError: (e) => !stopped && onError(e) })
        : connectLive({ ...options, url, token });
    })
    .catch((e) => !stopped && onState('off', e.message));
  return {
    close: () => {
      stopped = true;
      conn?.close();
    },
  };
}

// Ozone's devices from REST, then kept current by the live feed: each stored event
// (`ozone/live/devices/{id}/events`) counts on its device and marks it online; each contact
// (`.../status`) sets online and last seen. The chart re-reads on `changes` (debounced).
import { useEffect, useState } from 'react';
import { call } from '../api.js';
import { startLive } from '../live.js';

const APP = 'ozone';
const FILTERS = [`${APP}/live/devices/+/events`, `${APP}/live/devices/+/status`];
/** Events come in bursts (a machine's cycle); the chart re-reads once per burst... */
const CHART_DEBOUNCE_MS = 800;
/** ...and once more later: the fleet's rollups are built off the change feed, so they lag. */
const CHART_SETTLE_MS = 3000;

/** A live ticket for this session: the MQTT password, good for one connection. */
async function ticket() {
  const { body } = await call(APP, '/auth/live/', { method: 'POST', body: {}, cookies: true });
  return body.ticket;
}

/** Whole seconds of an ISO time: live messages carry seconds, the REST listing milliseconds. */
export function secs(iso) {
  const t = Date.parse(iso ?? '');
  return Number.isNaN(t) ? null : Math.floor(t / 1000);
}

/**
 * What a live message does to its device. An event the REST read already counted was
 * received before the second of the contact that read showed (`counted`, which only events
 * move: a status message may overtake its event), so it is not counted twice; one in that
 * very second is counted, as dropping a new event is worse than, rarely, one too many.
 */
export function applyMessage(devices, env) {
  const data = env.data ?? {};
  const id = data.device_id;
  if (!id) return devices;
  const prev = devices.get(id) ?? { device_id: id, event_count: 0 };
  const next = new Map(devices);
  const newer = (at) => secs(at) !== null && !(secs(prev.last_seen) > secs(at));
  if (env.kind === 'event') {
    const at = data.received_at;
    if (secs(at) !== null && secs(at) < secs(prev.counted)) return devices;
    next.set(id, {
      ...prev,
      counted: at ?? prev.counted,
      online: true,
      last_seen: newer(at) ? at : prev.last_seen,
      event_count: (prev.event_count ?? 0) + 1,
      mode: data.event_type ?? prev.mode,
    });
  } else if (env.kind === 'status') {
    const seen = newer(data.last_seen) ? data.last_seen : prev.last_seen;
    next.set(id, { ...prev, online: data.online ?? true, last_seen: seen });
  } else {
    return devices;
  }
  return next;
}

/** `{devices: Map<id, device>, live: {state, note}, changes}`; `changes` grows per burst. */
export function useDevices(onError) {
  const [devices, setDevices] = useState(() => new Map());
  const [live, setLive] = useState({ state: 'off', note: '' });
  const [changes, setChanges] = useState(0);
  useEffect(() => {
    let stopped = false;
    let debounce = null;
    let settle = null;
    const apply = (env) => {
      setDevices((m) => applyMessage(m, env));
      if (env.kind !== 'event') return;
      const redraw = () => !stopped && setChanges((n) => n + 1);
      clearTimeout(debounce);
      clearTimeout(settle);
      debounce = setTimeout(redraw, CHART_DEBOUNCE_MS);
      settle = setTimeout(redraw, CHART_DEBOUNCE_MS + CHART_SETTLE_MS);
    };
    const feed = startLive({
      app: APP,
      ticket,
      filters: FILTERS,
      read: async () => (await call(APP, '/devices/all/', { cookies: true })).body,
      onRead: (body) =>
        setDevices(new Map(body.map((d) => [d.device_id, { ...d, counted: d.last_seen }]))),
      apply,
      onError,
      onState: (state, note) => setLive({ state, note }),
      // Messages sent while disconnected are gone: the feed re-reads; redraw the chart too.
      onSubscribed: () => setChanges((n) => n + 1),
    });
    return () => {
      stopped = true;
      clearTimeout(debounce);
      clearTimeout(settle);
      feed.close();
    };
  }, [onError]);
  return { devices, live, changes };
}

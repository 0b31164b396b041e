// HomeForge's data for the console: the topology, the caller's devices and their types'
// card templates from REST, then each device's state changes from the live feed. A user who
// is not staff may subscribe to their own devices only (`homeforge/live/owners/{me}/#`);
// owners and admins see every device, over REST and live.
import { useEffect, useState } from 'react';
import { call, callAllPages, tokenSession } from '../api.js';
import { startLive } from '../live.js';

export const APP = 'homeforge';

/** The tab's tokens; a refresh token (single-use, rotated) renews the access token. */
export const session = tokenSession(APP, async ({ refresh }) => {
  const { body } = await call(APP, '/token/refresh/', { method: 'POST', body: { refresh } });
  return { token: body.access, refresh: body.refresh };
});
const STAFF = ['owner', 'admin'];

/** The live filter `user` may subscribe to: what their role sees over REST. */
export function liveFilter(user) {
  return STAFF.includes(user.role) ? `${APP}/live/#` : `${APP}/live/owners/${user.id}/#`;
}

export function deviceTopic(owner, id) {
  return `${APP}/live/owners/${owner}/devices/${id}`;
}

/** The topology, every device the caller sees (all pages) and each device's type. */
async function readHome() {
  const [topology, devices] = await Promise.all([
    call(APP, '/topology/', { session }).then((r) => r.body),
    callAllPages(APP, '/devices/', { session }, (b) => b ?? []),
  ]);
  const typeIds = [...new Set(devices.map((d) => d.device_type))];
  const types = await Promise.all(typeIds.map((id) => call(APP, `/device-types/${id}/`, { session }).then((r) => r.body)));
  return { topology, devices, types };
}

/**
 * `{topology, devices, types, live, setDevice}`: REST first, then the feed. A message
 * carries the device's `current_state`, `status` and `last_seen`; its seq is the device's
 * `live_seq`, which the REST read seeds, so a message older than the read is dropped.
 */
export function useHome(user, onError) {
  const [topology, setTopology] = useState({ nodes: [], edges: [] });
  const [devices, setDevices] = useState(() => new Map());
  const [types, setTypes] = useState(() => new Map());
  const [live, setLive] = useState({ state: 'off', note: '' });
  useEffect(() => {
    const feed = startLive({
      app: APP,
      ticket: session.token,
      filters: [liveFilter(user)],
      read: readHome,
      onRead: (read, filter) => {
        setTopology(read.topology);
        setDevices(new Map(read.devices.map((d) => [d.id, d])));
        setTypes(new Map(read.types.map((t) => [t.id, t])));
        for (const d of read.devices) filter.seed(deviceTopic(d.owner, d.id), d.live_seq);
      },
      apply: (env) => {
        if (env.kind !== 'device') return;
        // A device registered after the read is not in the topology yet: the next read has it.
        setDevices((m) => (m.has(env.data.id) ? new Map(m).set(env.data.id, { ...m.get(env.data.id), ...env.data, live_seq: env.seq }) : m));
      },
      onError,
      onState: (state, note) => setLive({ state, note }),
    });
    return feed.close;
  }, [user, onError]);
  // What a REST write answered, for when the feed is off (live, its message follows).
  const setDevice = (id, patch) => setDevices((m) => (m.has(id) ? new Map(m).set(id, { ...m.get(id), ...patch }) : m));
  return { topology, devices, types, live, setDevice };
}

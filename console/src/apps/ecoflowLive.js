// EcoFlow's live list: the newest alerts and broadcasts from REST, then each new or changed
// one from the feed (`ecoflow/live/alerts/{id}`, `ecoflow/live/notifications/{id}`), through
// the one client rule (`startLive`): re-read after every (re)subscribe, drop stale seqs.
import { useEffect, useState } from 'react';
import { call, tokenSession } from '../api.js';
import { startLive } from '../live.js';

export const APP = 'ecoflow';

/** The tab's tokens; a refresh token (single-use, rotated) renews the access token. */
export const session = tokenSession(APP, async ({ refresh }) => {
  const { body } = await call(APP, '/auth/refresh/', { method: 'POST', body: { refresh } });
  return { token: body.access, refresh: body.refresh };
});
/** How many of each the list shows (REST's first page, newest first). */
const SHOWN = 50;

/** Newest first: created_at is RFC 3339 in UTC, so it sorts as text. */
export function newestFirst(items) {
  return [...items.values()].sort((a, b) => b.created_at.localeCompare(a.created_at) || b.id - a.id);
}

async function readFeed() {
  const [alerts, notifications] = await Promise.all([
    call(APP, `/alerts/?limit=${SHOWN}`, { session }),
    call(APP, `/notifications/?limit=${SHOWN}`, { session }),
  ]);
  return { alerts: alerts.body ?? [], notifications: notifications.body ?? [] };
}

const byId = (list) => new Map(list.map((x) => [x.id, x]));

function without(map, id) {
  const next = new Map(map);
  next.delete(id);
  return next;
}

/** The alerts and broadcasts (maps by id) and the feed's state, kept current. */
export function useFeed(onError) {
  const [alerts, setAlerts] = useState(() => new Map());
  const [notifications, setNotifications] = useState(() => new Map());
  const [live, setLive] = useState({ state: 'off', note: '' });
  useEffect(() => {
    const feed = startLive({
      app: APP,
      ticket: session.token,
      filters: [`${APP}/live/alerts/+`, `${APP}/live/notifications/+`],
      read: readFeed,
      // The REST shapes carry no version, so there is nothing to seed the filter with.
      onRead: (read) => {
        setAlerts(byId(read.alerts));
        setNotifications(byId(read.notifications));
      },
      apply: (env) => {
        const { data } = env;
        if (env.kind === 'alert') setAlerts((m) => new Map(m).set(data.id, data));
        else if (env.kind === 'alert_deleted') setAlerts((m) => without(m, data.id));
        else if (env.kind === 'notification') setNotifications((m) => new Map(m).set(data.id, data));
        else if (env.kind === 'notification_deleted') setNotifications((m) => without(m, data.id));
      },
      onError,
      onState: (state, note) => setLive({ state, note }),
    });
    return feed.close;
  }, [onError]);
  return { alerts, notifications, live };
}

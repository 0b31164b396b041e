// Ozone: sign in with the app's session login (an HttpOnly cookie, same origin), then the
// devices with online/offline, last seen and event count, and the usage chart; the live feed
// (a live ticket as the MQTT password) keeps both current without a reload.
import { useCallback, useEffect, useState } from 'react';
import { call } from '../api.js';
import { USERNAME_FIELDS, SignIn, usePageError } from '../SignIn.jsx';
import { UsageChart } from './OzoneChart.jsx';
import { useDevices } from './ozoneLive.js';

export const APP = 'ozone';

async function login(values) {
  const { body } = await call(APP, '/auth/login/', { method: 'POST', body: values, cookies: true });
  return body.user;
}

export default function Ozone() {
  // undefined: asking the server whether the cookie still holds a session.
  const [user, setUser] = useState(undefined);
  const [notice, setNotice] = useState(null);
  useEffect(() => {
    call(APP, '/auth/user/', { cookies: true })
      .then(({ body }) => setUser(body.user))
      .catch(() => setUser(null));
  }, []);
  const signOut = useCallback((reason) => {
    setNotice(reason ?? null);
    setUser(null);
  }, []);
  const logOut = async () => {
    await call(APP, '/auth/logout/', { method: 'POST', body: {}, cookies: true }).catch(() => {});
    signOut();
  };
  if (user === undefined) return <main><h1>Ozone</h1><p>Loading…</p></main>;
  if (!user) return <SignIn title="Ozone" fields={USERNAME_FIELDS} login={login} onSignedIn={setUser} notice={notice} />;
  return <Fleet user={user} onSignOut={signOut} onLogOut={logOut} />;
}

function Fleet({ user, onSignOut, onLogOut }) {
  const { error, onError } = usePageError(onSignOut);
  const { devices, live, changes } = useDevices(onError);
  return (
    <main>
      <div className="bar">
        <h1>Ozone</h1>
        <span className="live" data-live={live.state} title={live.note}>{live.state === 'on' ? 'live' : 'offline'}</span>
        <span id="who">{user.username}{user.is_staff ? ' (staff)' : ''}</span>
        <button id="signout" type="button" onClick={onLogOut}>Sign out</button>
      </div>
      {error && <p id="error" className="error" role="alert">{error}</p>}
      <DeviceTable devices={devices} />
      <UsageChart changes={changes} onError={onError} />
    </main>
  );
}

function DeviceTable({ devices }) {
  const rows = [...devices.values()].sort((a, b) => a.device_id.localeCompare(b.device_id));
  const online = rows.filter((d) => d.online).length;
  if (!rows.length) return <p id="no-devices">No devices yet.</p>;
  return (
    <>
      <div className="counters">
        <div><span data-counter="devices">{rows.length}</span>devices</div>
        <div><span data-counter="online">{online}</span>online</div>
        <div><span data-counter="offline">{rows.length - online}</span>offline</div>
      </div>
      <table>
        <thead>
          <tr><th>device</th><th>status</th><th>last seen</th><th>events</th><th>mode</th></tr>
        </thead>
        <tbody>
          {rows.map((d) => (
            <tr key={d.device_id} data-device={d.device_id} data-online={String(Boolean(d.online))}>
              <td>{d.device_id}</td>
              <td className={d.online ? 'status-on' : 'status-off'}>{d.online ? 'online' : 'offline'}</td>
              <td data-last-seen>{d.last_seen ? d.last_seen.replace(/\.\d+Z$/, 'Z') : '—'}</td>
              <td data-events>{d.event_count ?? 0}</td>
              <td>{d.mode ?? ''}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </>
  );
}

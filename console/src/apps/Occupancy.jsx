// Occupancy: the live count per camera and for the facility, today's hourly chart of one
// camera, and the open alerts with resolve; the live feed keeps all of it current.
// Occupancy has no users: deployed, every route wants an operator-minted access token, which
// the sign-in form takes as is; civic-local runs it open (the seed's mode), and so does the
// page: no sign-in, and the live feed admits any password then.
import { useEffect, useState } from 'react';
import { call, tokenStore } from '../api.js';
import { startLive } from '../live.js';
import { SignIn, usePageError, useSignedIn } from '../SignIn.jsx';
import { HourlyChart } from './OccupancyChart.jsx';

export const APP = 'occupancy';
const session = tokenStore(APP);
const TOKEN_FIELDS = [{ name: 'token', label: 'Access token', type: 'password', autoComplete: 'off' }];
/** The live password when the app runs open: any non-empty one is admitted. */
const OPEN = 'open';

/** A token is good when a route takes it. */
async function login({ token }) {
  await call(APP, '/facility/live', { token });
  return { token };
}

export default function Occupancy() {
  // undefined: asking whether the app wants a token at all.
  const { current, setCurrent, notice, signIn, signOut } = useSignedIn(session, () => session.get() ?? undefined);
  useEffect(() => {
    if (current !== undefined) return;
    call(APP, '/facility/live')
      .then(() => setCurrent({ token: null }))
      .catch(() => setCurrent(null));
  }, [current]);
  if (current === undefined) return <main><h1>Occupancy</h1><p>Loading…</p></main>;
  if (!current) return <SignIn title="Occupancy" fields={TOKEN_FIELDS} login={login} onSignedIn={signIn} notice={notice} />;
  return <Facility token={current.token} onSignOut={signOut} />;
}

/** Cameras with their live state, the facility's totals and the open alerts, from REST. */
async function readAll(token) {
  const get = async (path) => (await call(APP, path, { token })).body;
  const [cameras, facility, alerts] = await Promise.all([get('/cameras'), get('/facility/live'), get('/alerts')]);
  const states = await Promise.all(cameras.map((c) => get(`/cameras/${c.id}/live`)));
  return { cameras, states, facility, alerts };
}

function useFacility(token, onError) {
  const [cameras, setCameras] = useState([]);
  const [states, setStates] = useState(() => new Map());
  const [facility, setFacility] = useState(null);
  const [alerts, setAlerts] = useState(() => new Map());
  const [live, setLive] = useState({ state: 'off', note: '' });
  const [moved, setMoved] = useState(0);
  useEffect(() => {
    const feed = startLive({
      app: APP,
      token: token ?? OPEN,
      filters: [`${APP}/live/#`],
      read: () => readAll(token),
      onRead: (r) => {
        setCameras(r.cameras);
        setStates(new Map(r.states.map((s) => [s.camera_id, s])));
        setFacility(r.facility);
        setAlerts(new Map(r.alerts.map((a) => [a.id, a])));
        setMoved((n) => n + 1);
      },
      apply: (env) => {
        const d = env.data;
        if (env.kind === 'camera') {
          setStates((m) => new Map(m).set(d.camera_id, d));
          setMoved((n) => n + 1);
        } else if (env.kind === 'facility') setFacility(d);
        else if (env.kind === 'alert') setAlerts((m) => withAlert(m, d));
      },
      onError,
      onState: (state, note) => setLive({ state, note }),
    });
    return feed.close;
  }, [token, onError]);
  return { cameras, states, facility, alerts, setAlerts, live, moved };
}

/** Open alerts by id: a resolved one leaves the list. */
function withAlert(alerts, alert) {
  const next = new Map(alerts);
  if (alert.is_resolved) next.delete(alert.id);
  else next.set(alert.id, alert);
  return next;
}

function Facility({ token, onSignOut }) {
  const { error, setError, onError } = usePageError(onSignOut);
  const { cameras, states, facility, alerts, setAlerts, live, moved } = useFacility(token, onError);
  const resolve = async (id) => {
    try {
      await call(APP, `/alerts/${id}/resolve`, { method: 'PUT', token });
      setError(null);
      // Live, the resolution also arrives as a message; either way it leaves the list.
      setAlerts((m) => withAlert(m, { id, is_resolved: true }));
    } catch (e) {
      onError(e);
    }
  };
  return (
    <main>
      <div className="bar">
        <h1>Occupancy</h1>
        <span className="live" data-live={live.state} title={live.note}>{live.state === 'on' ? 'live' : 'offline'}</span>
        <span id="who">{token ? 'token' : 'open (no sign-in required)'}</span>
        {token && <button id="signout" type="button" onClick={() => onSignOut()}>Sign out</button>}
      </div>
      {error && <p id="error" className="error" role="alert">{error}</p>}
      <div className="counters">
        <div><span data-counter="facility_occupancy">{facility?.facility_occupancy ?? 0}</span>in the facility</div>
        <div><span data-counter="entries">{facility?.total_entries_all_cameras ?? 0}</span>entries</div>
        <div><span data-counter="exits">{facility?.total_exits_all_cameras ?? 0}</span>exits</div>
        <div><span data-counter="alerts">{alerts.size}</span>open alerts</div>
      </div>
      <CameraTable cameras={cameras} states={states} />
      <HourlyChart cameras={cameras} token={token} moved={moved} onError={onError} />
      <AlertTable alerts={alerts} onResolve={resolve} />
    </main>
  );
}

function CameraTable({ cameras, states }) {
  if (!cameras.length) return <p id="no-cameras">No cameras yet.</p>;
  return (
    <table>
      <thead>
        <tr><th>camera</th><th>name</th><th>location</th><th>now</th><th>capacity</th><th>entries</th><th>exits</th><th>updated</th></tr>
      </thead>
      <tbody>
        {cameras.map((c) => {
          const s = states.get(c.id) ?? {};
          const full = c.max_occupancy && s.current_occupancy > c.max_occupancy;
          return (
            <tr key={c.id} data-camera={c.id}>
              <td>{c.camera_id}</td>
              <td>{c.camera_name}</td>
              <td>{c.location ?? ''}</td>
              <td data-occupancy className={full ? 'status-error' : ''}>{s.current_occupancy ?? 0}</td>
              <td>{c.max_occupancy ?? '—'}</td>
              <td data-entries>{s.total_entries ?? 0}</td>
              <td data-exits>{s.total_exits ?? 0}</td>
              <td>{s.last_updated ?? ''}</td>
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}

function AlertTable({ alerts, onResolve }) {
  const rows = [...alerts.values()].sort((a, b) => a.id - b.id);
  if (!rows.length) return <p id="no-alerts">No open alerts.</p>;
  return (
    <table>
      <thead>
        <tr><th>alert</th><th>camera</th><th>type</th><th>message</th><th>seen</th><th /></tr>
      </thead>
      <tbody>
        {rows.map((a) => (
          <tr key={a.id} data-alert={a.id}>
            <td>{a.id}</td>
            <td>{a.camera_id}</td>
            <td className="status-error">{a.alert_type}</td>
            <td>{a.message}</td>
            <td>{a.timestamp}</td>
            <td><button type="button" data-resolve={a.id} onClick={() => onResolve(a.id)}>Resolve</button></td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

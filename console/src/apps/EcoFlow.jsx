// EcoFlow: sign in with the app's own login, then the sites (organisations → zones → cameras),
// the carbon summary, a frame uploaded to `sensor/detect` with its count, and the alerts and
// broadcasts, which follow the live feed without a reload.
import { useCallback, useEffect, useState } from 'react';
import { call, callAllPages } from '../api.js';
import { EMAIL_FIELDS, SignIn, usePageError, useSignedIn } from '../SignIn.jsx';
import { APP, newestFirst, session, useFeed } from './ecoflowLive.js';

async function login(values) {
  const { body } = await call(APP, '/auth/login/', { method: 'POST', body: values });
  return { token: body.access, refresh: body.refresh, user: { id: body.user_id, email: body.email, role: body.role, name: body.name } };
}

export default function EcoFlow() {
  const { current, notice, signIn, signOut } = useSignedIn(session);
  if (!current) return <SignIn title="EcoFlow" fields={EMAIL_FIELDS} login={login} onSignedIn={signIn} notice={notice} />;
  return <Dashboard user={current.user} onSignOut={signOut} />;
}

/** Every organisation with its zones and their cameras (one nested listing), and the carbon stats. */
async function readSites() {
  const [orgs, carbon] = await Promise.all([
    callAllPages(APP, '/organizations/', { session }, (b) => b ?? []),
    call(APP, '/carbon/stats/', { session }),
  ]);
  return { orgs, carbon: carbon.body };
}

/** Posts a frame to `sensor/detect` (multipart: the file, its zone and camera). */
async function detect(zone, camera, file) {
  const form = new FormData();
  form.append('zone_id', zone);
  form.append('camera_id', camera);
  form.append('file', file);
  return (await call(APP, '/sensor/detect/', { method: 'POST', session, body: form })).body;
}

function Dashboard({ user, onSignOut }) {
  const { error, onError } = usePageError(onSignOut);
  const [sites, setSites] = useState(null);
  const reload = useCallback(() => readSites().then(setSites, onError), [onError]);
  useEffect(() => {
    reload();
  }, [reload]);
  const { alerts, notifications, live } = useFeed(onError);
  return (
    <main>
      <div className="bar">
        <h1>EcoFlow</h1>
        <span className="live" data-live={live.state} title={live.note}>{live.state === 'on' ? 'live' : 'offline'}</span>
        <span id="who">{user.name || user.email} ({user.role})</span>
        <button id="signout" type="button" onClick={() => onSignOut()}>Sign out</button>
      </div>
      {error && <p id="error" className="error" role="alert">{error}</p>}
      <Carbon stats={sites?.carbon} />
      <div className="columns">
        <section>
          <h2>Sites</h2>
          <Tree orgs={sites?.orgs} />
          <Detect orgs={sites?.orgs ?? []} onCounted={reload} onError={onError} />
        </section>
        <section>
          <h2>Alerts and notifications</h2>
          <Feed alerts={alerts} notifications={notifications} />
        </section>
      </div>
    </main>
  );
}

function Carbon({ stats }) {
  const s = stats?.summary;
  return (
    <div className="counters" id="carbon">
      <div><span data-carbon="total_saved_all_time">{s?.total_saved_all_time ?? 0}</span>carbon saved, all time</div>
      <div><span data-carbon="average_per_detection">{s?.average_per_detection ?? 0}</span>per detection</div>
      <div><span data-carbon="recent">{stats?.recent_history?.length ?? 0}</span>recent figures</div>
    </div>
  );
}

function Tree({ orgs }) {
  if (!orgs) return <p>Loading…</p>;
  if (!orgs.length) return <p id="tree">No organisations yet.</p>;
  return (
    <ul id="tree" className="tree">
      {orgs.map((o) => (
        <li key={o.id} data-org={o.id}>
          <strong>{o.name}</strong> <small>{o.org_type}</small>
          <ul>
            {o.zones.map((z) => (
              <li key={z.id} data-zone={z.id}>
                {z.name} <small>{z.zone_type}</small>
                <ul>
                  {z.cameras.map((c) => (
                    <li key={c.id} data-camera={c.id} className={c.is_active ? '' : 'inactive'}>
                      {c.name}{c.is_active ? '' : ' (inactive)'}
                    </li>
                  ))}
                </ul>
              </li>
            ))}
          </ul>
        </li>
      ))}
    </ul>
  );
}

function Detect({ orgs, onCounted, onError }) {
  const [result, setResult] = useState(null);
  const [busy, setBusy] = useState(false);
  const cameras = orgs.flatMap((o) => o.zones.flatMap((z) => z.cameras.filter((c) => c.is_active).map((c) => ({ o, z, c }))));
  const submit = async (ev) => {
    ev.preventDefault();
    const form = new FormData(ev.currentTarget);
    const [zone, camera] = String(form.get('camera')).split(':');
    setBusy(true);
    try {
      setResult(await detect(zone, camera, form.get('file')));
      onCounted();
    } catch (e) {
      onError(e);
    } finally {
      setBusy(false);
    }
  };
  return (
    <form id="detect" className="inline" onSubmit={submit}>
      <label>Camera
        <select id="detect-camera" name="camera" required>
          {cameras.map(({ o, z, c }) => (
            <option key={c.id} value={`${z.id}:${c.id}`}>{o.name} / {z.name} / {c.name}</option>
          ))}
        </select>
      </label>
      <label>Frame<input id="detect-file" name="file" type="file" accept="image/*" required /></label>
      <button id="detect-submit" type="submit" disabled={busy || !cameras.length}>{busy ? 'Counting…' : 'Count people'}</button>
      {result && (
        <p id="detect-result" data-status={result.status}>
          <span id="detect-count">{result.detected_people}</span> people in {result.zone}
          {' '}({result.occupancy_percentage}, {result.status})
        </p>
      )}
    </form>
  );
}

function Feed({ alerts, notifications }) {
  const rows = [
    ...newestFirst(alerts).map((a) => ({ kind: 'alert', item: a })),
    ...newestFirst(notifications).map((n) => ({ kind: 'notification', item: n })),
  ].sort((x, y) => y.item.created_at.localeCompare(x.item.created_at));
  if (!rows.length) return <p id="feed">Nothing yet.</p>;
  return (
    <ul id="feed" className="feed">
      {rows.map(({ kind, item }) => (kind === 'alert' ? (
        <li key={`a${item.id}`} data-alert={item.id} data-status={item.status}>
          <strong>{item.heading}</strong> <small>{item.status} · {item.alert_type}</small>
          {item.sub_heading && <div>{item.sub_heading}</div>}
        </li>
      ) : (
        <li key={`n${item.id}`} data-notification={item.id}>
          <strong>{item.title}</strong> <small>notification</small>
          <div>{item.message}</div>
        </li>
      )))}
    </ul>
  );
}

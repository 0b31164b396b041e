// Streetlight: sign in with the app's own login, then one city's lights on a plain lat/lng plot
// (no map tiles: the console must work offline and in tests), its summary counters, and on/off
// for operators and admins; everything follows the live feed without a reload.
import { useCallback, useEffect, useState } from 'react';
import { ApiError, call, callAllPages, config, tokenStore } from '../api.js';
import { SeqFilter, connectLive, readThenLive, segment } from '../live.js';
import { LightPlot } from './StreetlightPlot.jsx';

const APP = 'streetlight';
const session = tokenStore(APP);
const CONTROLLERS = ['operator', 'admin'];

export default function Streetlight() {
  const [current, setCurrent] = useState(session.get);
  const [notice, setNotice] = useState(null);
  const signIn = (s) => {
    session.set(s);
    setNotice(null);
    setCurrent(s);
  };
  const signOut = useCallback((reason) => {
    session.clear();
    setNotice(reason ?? null);
    setCurrent(null);
  }, []);
  if (!current) return <SignIn onSignedIn={signIn} notice={notice} />;
  return <City session={current} onSignOut={signOut} />;
}

function SignIn({ onSignedIn, notice }) {
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const submit = async (ev) => {
    ev.preventDefault();
    const form = new FormData(ev.currentTarget);
    setBusy(true);
    try {
      const body = { email: form.get('email'), password: form.get('password') };
      const { body: res } = await call(APP, '/auth/login', { method: 'POST', body });
      onSignedIn({ token: res.data.token, user: res.data.user });
    } catch (e) {
      setError(e instanceof ApiError ? `${e.status}: ${e.message}` : e.message);
    } finally {
      setBusy(false);
    }
  };
  return (
    <main>
      <h1>Streetlight</h1>
      {notice && <p className="error">{notice}</p>}
      <form id="signin" className="inline" onSubmit={submit}>
        <label>Email<input id="email" name="email" type="email" autoComplete="username" required /></label>
        <label>Password<input id="password" name="password" type="password" autoComplete="current-password" required /></label>
        <button id="signin-submit" type="submit" disabled={busy}>Sign in</button>
      </form>
      {error && <p id="signin-error" className="error" role="alert">{error}</p>}
    </main>
  );
}

/** One city's lights (by light_id) and summary, from REST and then the live feed. */
function useCity(city, token, onError) {
  const [lights, setLights] = useState(() => new Map());
  const [summary, setSummary] = useState(null);
  const [live, setLive] = useState({ state: 'off', note: '' });
  useEffect(() => {
    let stopped = false;
    const filter = new SeqFilter();
    setLights(new Map()); // another city's dots must not linger while this one loads
    setSummary(null);
    const apply = (env) => {
      if (env.kind === 'light') setLights((m) => new Map(m).set(env.data.light_id, env.data));
      else if (env.kind === 'summary') setSummary(env.data);
    };
    const { refresh, onMessage } = readThenLive({
      read: () => readCity(city, token),
      onRead: (read) => {
        setLights(new Map(read.lights.map((l) => [l.light_id, l])));
        setSummary(read.summary);
        for (const l of read.lights) filter.seed(lightTopic(city, l.light_id), l.version);
      },
      apply,
      onError,
      isStopped: () => stopped,
    });
    refresh();
    let conn = null;
    config()
      .then((cfg) => {
        if (stopped) return;
        conn = connectLive({
          url: cfg.mqtt,
          app: APP,
          token,
          filters: [`${APP}/live/cities/${cityLevel(city)}/#`],
          filter,
          onState: (state, note) => !stopped && setLive({ state, note: note ?? '' }),
          onSubscribed: () => !stopped && refresh(),
          onMessage,
        });
      })
      .catch((e) => setLive({ state: 'off', note: e.message }));
    return () => {
      stopped = true;
      conn?.close();
    };
  }, [city, token, onError]);
  return { lights, setLights, summary, live };
}

/** The city's topic level as the server writes it: trimmed, lower case, segment-encoded. */
function cityLevel(city) {
  return segment(city.trim().toLowerCase());
}

function lightTopic(city, lightId) {
  return `${APP}/live/cities/${cityLevel(city)}/lights/${segment(lightId)}`;
}

/** Every light of `city` and its summary (none yet: 404, shown as zeros). */
async function readCity(city, token) {
  const q = `?city=${encodeURIComponent(city)}`;
  const lights = await callAllPages(APP, `/lights/list${q}`, { token });
  try {
    const { body } = await call(APP, `/lights/summary${q}`, { token });
    return { lights, summary: body.data };
  } catch (e) {
    if (e instanceof ApiError && e.status === 404) return { lights, summary: null };
    throw e;
  }
}

function City({ session: { token, user }, onSignOut }) {
  const [city, setCity] = useState(user.city);
  const [error, setError] = useState(null);
  // A 401 means the token expired or was revoked: back to the sign-in form, saying why.
  const onError = useCallback(
    (e) => (e instanceof ApiError && e.status === 401 ? onSignOut(e.message) : setError(e.message)),
    [onSignOut],
  );
  const { lights, setLights, summary, live } = useCity(city, token, onError);
  const canControl = CONTROLLERS.includes(user.role);
  const control = async (lightId, action) => {
    try {
      const { body } = await call(APP, '/lights/control', { method: 'POST', token, body: { lightId, action } });
      setError(null);
      // Live, the change arrives as a message with its seq; offline, show the answer itself.
      if (live.state !== 'on') setLights((m) => new Map(m).set(lightId, { ...m.get(lightId), ...body.data }));
    } catch (e) {
      onError(e);
    }
  };
  return (
    <main>
      <div className="bar">
        <h1>Streetlight</h1>
        <span className="live" data-live={live.state} title={live.note}>{live.state === 'on' ? 'live' : 'offline'}</span>
        <span id="who">{user.name} ({user.role})</span>
        <button id="signout" type="button" onClick={() => onSignOut()}>Sign out</button>
      </div>
      <CityPicker city={city} onPick={setCity} />
      {error && <p id="error" className="error" role="alert">{error}</p>}
      <Counters summary={summary} />
      <LightPlot lights={[...lights.values()]} />
      <LightTable lights={lights} canControl={canControl} onControl={control} />
    </main>
  );
}

function CityPicker({ city, onPick }) {
  const submit = (ev) => {
    ev.preventDefault();
    const picked = new FormData(ev.currentTarget).get('city').trim();
    if (picked) onPick(picked);
  };
  return (
    <form id="city-form" className="inline" onSubmit={submit}>
      <label>City<input id="city" name="city" defaultValue={city} key={city} /></label>
      <button type="submit">Show</button>
    </form>
  );
}

const COUNTERS = [
  ['total_lights', 'lights'],
  ['lights_on', 'on'],
  ['lights_off', 'off'],
  ['lights_in_error', 'in error'],
];

function Counters({ summary }) {
  return (
    <div className="counters">
      {COUNTERS.map(([key, label]) => (
        <div key={key}>
          <span data-counter={key}>{summary?.[key] ?? 0}</span>
          {label}
        </div>
      ))}
    </div>
  );
}

function LightTable({ lights, canControl, onControl }) {
  const rows = [...lights.values()].sort((a, b) => a.light_id.localeCompare(b.light_id));
  if (!rows.length) return null;
  return (
    <table>
      <thead>
        <tr><th>light</th><th>name</th><th>status</th><th>since</th>{canControl && <th>control</th>}</tr>
      </thead>
      <tbody>
        {rows.map((l) => (
          <tr key={l.light_id} data-row={l.light_id}>
            <td>{l.light_id}</td>
            <td>{l.name}</td>
            <td className={`status-${l.status}`}>{l.status}{l.error_details ? ` (${l.error_details})` : ''}</td>
            <td>{l.last_status_change}</td>
            {canControl && (
              <td>
                <button type="button" data-control="on" data-for={l.light_id} onClick={() => onControl(l.light_id, 'on')}>On</button>{' '}
                <button type="button" data-control="off" data-for={l.light_id} onClick={() => onControl(l.light_id, 'off')}>Off</button>
              </td>
            )}
          </tr>
        ))}
      </tbody>
    </table>
  );
}

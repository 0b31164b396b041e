// Streetlight: sign in with the app's own login, then one city's lights on a plain lat/lng plot
// (no map tiles: the console must work offline and in tests), its summary counters, and on/off
// for operators and admins; everything follows the live feed without a reload.
import { useEffect, useState } from 'react';
import { ApiError, call, callAllPages, tokenSession } from '../api.js';
import { segment, startLive } from '../live.js';
import { EMAIL_FIELDS, SignIn, usePageError, useSignedIn } from '../SignIn.jsx';
import { LightPlot } from './StreetlightPlot.jsx';

const APP = 'streetlight';
/** The tab's tokens; an access token lasts an hour, a refresh token renews it (once each). */
const session = tokenSession(APP, async ({ refresh }) => {
  const { body } = await call(APP, '/auth/refresh', { method: 'POST', body: { refreshToken: refresh } });
  return { token: body.data.token, refresh: body.data.refreshToken };
});
const CONTROLLERS = ['operator', 'admin'];

async function login(values) {
  const { body } = await call(APP, '/auth/login', { method: 'POST', body: values });
  return { token: body.data.token, refresh: body.data.refreshToken, user: body.data.user };
}

export default function Streetlight() {
  const { current, notice, signIn, signOut } = useSignedIn(session);
  if (!current) return <SignIn title="Streetlight" fields={EMAIL_FIELDS} login={login} onSignedIn={signIn} notice={notice} />;
  return <City user={current.user} onSignOut={signOut} />;
}

/** One city's lights (by light_id) and summary, from REST and then the live feed. */
function useCity(city, onError) {
  const [lights, setLights] = useState(() => new Map());
  const [summary, setSummary] = useState(null);
  const [live, setLive] = useState({ state: 'off', note: '' });
  useEffect(() => {
    setLights(new Map()); // another city's dots must not linger while this one loads
    setSummary(null);
    const feed = startLive({
      app: APP,
      ticket: session.token,
      filters: [`${APP}/live/cities/${cityLevel(city)}/#`],
      read: () => readCity(city),
      onRead: (read, filter) => {
        setLights(new Map(read.lights.map((l) => [l.light_id, l])));
        setSummary(read.summary);
        for (const l of read.lights) filter.seed(lightTopic(city, l.light_id), l.version);
      },
      apply: (env) => {
        if (env.kind === 'light') setLights((m) => new Map(m).set(env.data.light_id, env.data));
        else if (env.kind === 'summary') setSummary(env.data);
      },
      onError,
      onState: (state, note) => setLive({ state, note }),
    });
    return feed.close;
  }, [city, onError]);
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
async function readCity(city) {
  const q = `?city=${encodeURIComponent(city)}`;
  const lights = await callAllPages(APP, `/lights/list${q}`, { session });
  try {
    const { body } = await call(APP, `/lights/summary${q}`, { session });
    return { lights, summary: body.data };
  } catch (e) {
    if (e instanceof ApiError && e.status === 404) return { lights, summary: null };
    throw e;
  }
}

function City({ user, onSignOut }) {
  const [city, setCity] = useState(user.city);
  const { error, setError, onError } = usePageError(onSignOut);
  const { lights, setLights, summary, live } = useCity(city, onError);
  const canControl = CONTROLLERS.includes(user.role);
  const control = async (lightId, action) => {
    try {
      const { body } = await call(APP, '/lights/control', { method: 'POST', session, body: { lightId, action } });
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

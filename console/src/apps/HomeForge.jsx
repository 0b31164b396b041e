// HomeForge: sign in with the app's own login (a JWT kept in this tab), then the topology
// drawn with React Flow and one card per device with the controls of its type's
// `card_template` (toggle, slider, button; gauge and text show the value). A control patches
// the device's state through the REST API; the graph and the cards follow the live feed.
import { useEffect, useRef, useState } from 'react';
import { call } from '../api.js';
import { USERNAME_FIELDS, SignIn, usePageError, useSignedIn } from '../SignIn.jsx';
import { Topology, shown } from './HomeForgeGraph.jsx';
import { APP, session, useHome } from './homeforgeLive.js';

async function login(values) {
  const { body } = await call(APP, '/login/', { method: 'POST', body: values });
  const { body: me } = await call(APP, '/me/', { token: body.access });
  const user = { id: me.id, username: me.username, role: me.profile.role };
  return { token: body.access, refresh: body.refresh, user };
}

export default function HomeForge() {
  const { current, notice, signIn, signOut } = useSignedIn(session);
  if (!current) return <SignIn title="HomeForge" fields={USERNAME_FIELDS} login={login} onSignedIn={signIn} notice={notice} />;
  return <Home user={current.user} onSignOut={signOut} />;
}

function Home({ user, onSignOut }) {
  const { error, setError, onError } = usePageError(onSignOut);
  const { topology, devices, types, live, setDevice } = useHome(user, onError);
  const canWrite = user.role !== 'viewer';
  const setState = async (id, key, value) => {
    try {
      const path = `/devices/${id}/state/`;
      const { body } = await call(APP, path, { method: 'PATCH', session, body: { [key]: value } });
      setError(null);
      if (live.state !== 'on') setDevice(id, { status: body.device_status, current_state: body.current_state });
    } catch (e) {
      onError(e);
    }
  };
  const rows = [...devices.values()].sort((a, b) => a.id - b.id);
  return (
    <main>
      <div className="bar">
        <h1>HomeForge</h1>
        <span className="live" data-live={live.state} title={live.note}>{live.state === 'on' ? 'live' : 'offline'}</span>
        <span id="who">{user.username} ({user.role})</span>
        <button id="signout" type="button" onClick={() => onSignOut()}>Sign out</button>
      </div>
      {error && <p id="error" className="error" role="alert">{error}</p>}
      <Topology topology={topology} devices={devices} />
      {!rows.length && <p id="no-devices">No devices yet.</p>}
      <div className="cards">
        {rows.map((d) => (
          <DeviceCard key={d.id} device={d} type={types.get(d.device_type)} canWrite={canWrite} onSet={setState} />
        ))}
      </div>
    </main>
  );
}

function DeviceCard({ device, type, canWrite, onSet }) {
  const controls = type?.card_template?.controls ?? [];
  return (
    <section className="card" data-card={device.id}>
      <h3>{device.name} <small className={`status-${device.status}`}>{device.status}</small></h3>
      {!controls.length && <p>No controls.</p>}
      {controls.map((c) => (
        <Control key={`${c.widget_type}-${c.variable_mapping}-${c.label}`} control={c} device={device}
          disabled={!canWrite} onSet={(v) => onSet(device.id, c.variable_mapping, v)} />
      ))}
    </section>
  );
}

/** One control of a card template, bound to the state key its `variable_mapping` names. */
function Control({ control, device, disabled, onSet }) {
  const key = control.variable_mapping;
  const value = device.current_state?.[key];
  const attrs = { 'data-control': key, 'data-for': device.id, disabled };
  switch (control.widget_type) {
    case 'TOGGLE':
      return (
        <label className="check">
          <input type="checkbox" {...attrs} checked={value === true} onChange={(e) => onSet(e.target.checked)} />
          {control.label}
        </label>
      );
    case 'SLIDER':
      return <Slider control={control} value={value} attrs={attrs} onSet={onSet} />;
    case 'BUTTON':
      return <button type="button" {...attrs} onClick={() => onSet(true)}>{control.label}</button>;
    default: // GAUGE, TEXT: the value, read-only
      return <p>{control.label}: <b data-value={key}>{value === undefined ? '—' : shown(value)}</b></p>;
  }
}

/**
 * A slider sends once the hand rests (250 ms after the last move), not on every step; while
 * it moves it shows the hand's value, then the device's again.
 */
function Slider({ control, value, attrs, onSet }) {
  const [draft, setDraft] = useState(null);
  const timer = useRef(null);
  useEffect(() => () => clearTimeout(timer.current), []);
  const min = control.min_value ?? 0;
  const max = control.max_value ?? 100;
  const move = (e) => {
    const v = Number(e.target.value);
    setDraft(v);
    clearTimeout(timer.current);
    timer.current = setTimeout(() => {
      onSet(v);
      setDraft(null);
    }, 250);
  };
  const current = draft ?? (typeof value === 'number' ? value : min);
  return (
    <label>
      {control.label} <output data-value={attrs['data-control']}>{current}</output>
      <input type="range" {...attrs} min={min} max={max} step={control.step ?? 1} value={current} onChange={move} />
    </label>
  );
}

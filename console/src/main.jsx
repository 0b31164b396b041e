// The console's shell: a hash router (`#/` home, `#/{app}` one app), so the server needs only
// static files and any deep link survives a reload.
import { useEffect, useState } from 'react';
import { createRoot } from 'react-dom/client';
import EcoFlow from './apps/EcoFlow.jsx';
import HomeForge from './apps/HomeForge.jsx';
import Occupancy from './apps/Occupancy.jsx';
import Ozone from './apps/Ozone.jsx';
import Streetlight from './apps/Streetlight.jsx';
import './style.css';

/** The five apps; `page` is set once an app's console exists. */
const APPS = [
  { name: 'occupancy', title: 'Occupancy', about: 'cameras, live occupancy, alerts', page: Occupancy },
  { name: 'streetlight', title: 'Streetlight', about: 'street lights per city', page: Streetlight },
  { name: 'homeforge', title: 'HomeForge', about: 'smart-home devices and topology', page: HomeForge },
  { name: 'ozone', title: 'Ozone', about: 'machine telemetry', page: Ozone },
  { name: 'ecoflow', title: 'EcoFlow', about: 'sites, crowd alerts, notifications', page: EcoFlow },
];

function useHashRoute() {
  const read = () => window.location.hash.replace(/^#\/?/, '').split('/')[0];
  const [route, setRoute] = useState(read);
  useEffect(() => {
    const onChange = () => setRoute(read());
    window.addEventListener('hashchange', onChange);
    return () => window.removeEventListener('hashchange', onChange);
  }, []);
  return route;
}

function Home() {
  return (
    <main>
      <h1>Civic console</h1>
      <ul className="apps">
        {APPS.map((a) => (
          <li key={a.name} data-app={a.name}>
            {a.page ? <a href={`#/${a.name}`}>{a.title}</a> : <span>{a.title}</span>}
            <small> — {a.about}</small>
            {!a.page && <em className="coming"> coming</em>}
          </li>
        ))}
      </ul>
    </main>
  );
}

function Console() {
  const route = useHashRoute();
  const app = APPS.find((a) => a.name === route);
  let body;
  if (!app) body = <Home />;
  else if (!app.page) body = <main><h1>{app.title}</h1><p>Coming: this app has no console page yet.</p></main>;
  else body = <app.page />;
  return (
    <>
      <nav>
        <a href="#/">Civic console</a>
        {APPS.filter((a) => a.page).map((a) => (
          <a key={a.name} href={`#/${a.name}`}>{a.title}</a>
        ))}
        <a href="/">platform</a>
      </nav>
      {body}
    </>
  );
}

createRoot(document.getElementById('root')).render(<Console />);

// Today's hourly rollups of one camera (`/cameras/{id}/hourly`), drawn with uPlot: entries,
// exits and the time-weighted average occupancy per hour. It re-reads, once per burst, after
// the camera's live count moves (`moved`), since the rollups change with every batch.
import { useEffect, useRef, useState } from 'react';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { call } from '../api.js';

const APP = 'occupancy';
const REREAD_MS = 500;
const LINES = [
  ['entries', '#2a9d8f', 2],
  ['exits', '#e76f51', 2],
  ['avg_occupancy', '#1f2d3d', 1],
];

/** Hours of today: labels are the facility's local `YYYY-MM-DD HH:MM`; today is the latest day. */
export function today(rows) {
  const day = rows.length ? rows[rows.length - 1].hour.slice(0, 10) : '';
  return rows.filter((r) => r.hour.startsWith(day));
}

/** uPlot's columns: x is the hour of the day, then each line's values. */
export function chartData(rows) {
  const xs = rows.map((r) => Number(r.hour.slice(11, 13)));
  return [xs, ...LINES.map(([key]) => rows.map((r) => r[key]))];
}

export function HourlyChart({ cameras, token, moved, onError }) {
  const [picked, setPicked] = useState(null);
  const [rows, setRows] = useState(null);
  const camera = picked ?? cameras[0]?.id ?? null;
  useEffect(() => {
    if (camera === null) return undefined;
    let stale = false;
    const read = () =>
      call(APP, `/cameras/${camera}/hourly?days=1`, { token })
        .then(({ body }) => !stale && setRows(today(body)))
        .catch((e) => !stale && onError(e));
    const timer = setTimeout(read, rows === null ? 0 : REREAD_MS);
    return () => {
      stale = true;
      clearTimeout(timer);
    };
    // `rows` only decides the first read's delay.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [camera, token, moved, onError]);
  if (camera === null) return null;
  const total = (rows ?? []).reduce((n, r) => n + r.entries, 0);
  return (
    <section className="usage">
      <form className="inline" onSubmit={(ev) => ev.preventDefault()}>
        <label>Today, hourly, camera
          <select id="chart-camera" value={camera} onChange={(ev) => setPicked(Number(ev.target.value))}>
            {cameras.map((c) => <option key={c.id} value={c.id}>{c.camera_id}</option>)}
          </select>
        </label>
        <span>entries today: <b data-hourly-entries>{total}</b></span>
      </form>
      <Plot rows={rows} camera={camera} />
    </section>
  );
}

/** The uPlot instance lives outside React: made once, fed new data after. */
function Plot({ rows, camera }) {
  const box = useRef(null);
  const plot = useRef(null);
  const ready = rows !== null;
  useEffect(() => {
    if (!ready) return undefined;
    const width = Math.max(box.current.clientWidth, 320);
    const series = [{ label: 'hour' }, ...LINES.map(([label, stroke, w]) => ({ label, stroke, width: w, points: { size: 7 } }))];
    const opts = { width, height: 240, series, scales: { x: { time: false, range: [0, 23] } }, legend: { live: false } };
    plot.current = new uPlot(opts, chartData(rows), box.current);
    return () => {
      plot.current.destroy();
      plot.current = null;
    };
    // Made once; new data goes through setData below.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [ready]);
  useEffect(() => {
    if (rows && plot.current) plot.current.setData(chartData(rows));
  }, [rows]);
  return <div className="chart" ref={box} data-chart="hourly" data-camera={camera} data-points={rows?.length ?? 0} />;
}

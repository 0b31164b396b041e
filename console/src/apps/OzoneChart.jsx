// The fleet's usage from `/api/test/stats/`: one line per treatment and the total, drawn with
// uPlot; the granularity picks the bucket (and a span that keeps the points few enough to
// draw), compare adds the previous period's total, laid over this one bucket by bucket.
import { useEffect, useRef, useState } from 'react';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { call } from '../api.js';

const APP = 'ozone';
/** Bucket → days of history shown: a day of minutes is 1,440 points, a week would be 10,080. */
const SPANS = { minute: 1, hour: 2, day: 30, month: 365 };
const LINES = [
  ['total', '#1f2d3d', 2],
  ['BASIC', '#2a9d8f', 1],
  ['STANDARD', '#e9c46a', 1],
  ['PREMIUM', '#e76f51', 1],
];

/** uPlot's columns from a stats answer: x in Unix seconds, then each line's values. */
export function chartData(stats) {
  const xs = stats.labels.map((l) => Date.parse(l) / 1000);
  const line = (series, name) => series.find((s) => s.name === name)?.data ?? [];
  const cols = [xs, ...LINES.map(([name]) => line(stats.series, name))];
  if (stats.previous) {
    // The previous period has as many buckets or fewer; bucket i lies over bucket i.
    const prev = line(stats.previous.series, 'total');
    cols.push(xs.map((_, i) => prev[i] ?? null));
  }
  return cols;
}

function options(width, compare) {
  const series = [{}, ...LINES.map(([label, stroke, w]) => ({ label, stroke, width: w }))];
  if (compare) series.push({ label: 'previous total', stroke: '#888', dash: [6, 4], width: 1 });
  return { width, height: 280, series, scales: { x: { time: true } }, legend: { live: false } };
}

export function UsageChart({ changes, onError }) {
  const [granularity, setGranularity] = useState('hour');
  const [compare, setCompare] = useState(false);
  const [stats, setStats] = useState(null);
  useEffect(() => {
    let stale = false;
    const q = `?granularity=${granularity}&days=${SPANS[granularity]}&compare=${compare}`;
    call(APP, `/test/stats/${q}`, { cookies: true })
      .then(({ body }) => !stale && setStats(body))
      .catch((e) => !stale && onError(e));
    return () => {
      stale = true;
    };
  }, [granularity, compare, changes, onError]);
  return (
    <section className="usage">
      <form className="inline" onSubmit={(ev) => ev.preventDefault()}>
        <label>Granularity
          <select id="granularity" value={granularity} onChange={(ev) => setGranularity(ev.target.value)}>
            {Object.keys(SPANS).map((g) => <option key={g} value={g}>{g} (last {SPANS[g]} d)</option>)}
          </select>
        </label>
        <label className="check">
          <input id="compare" type="checkbox" checked={compare} onChange={(ev) => setCompare(ev.target.checked)} />
          compare with the previous period
        </label>
      </form>
      {stats && <Totals stats={stats} />}
      <Plot stats={stats} compare={compare} />
    </section>
  );
}

function Totals({ stats }) {
  return (
    <div className="counters">
      {LINES.map(([name]) => (
        <div key={name}>
          <span data-usage={name}>{stats.totals?.[name] ?? 0}</span>
          {name.toLowerCase()}
          {stats.change_pct && <small data-change={name}> {pct(stats.change_pct[name])}</small>}
        </div>
      ))}
    </div>
  );
}

function pct(v) {
  if (v === null || v === undefined) return 'n/a';
  return `${v > 0 ? '+' : ''}${Math.round(v)} %`;
}

/** The uPlot instance lives outside React: made once per line set, fed new data after. */
function Plot({ stats, compare }) {
  const box = useRef(null);
  const plot = useRef(null);
  const lines = stats ? (stats.previous ? 'compare' : 'plain') : null;
  useEffect(() => {
    if (!lines) return undefined;
    const width = Math.max(box.current.clientWidth, 320);
    plot.current = new uPlot(options(width, lines === 'compare'), chartData(stats), box.current);
    return () => {
      plot.current.destroy();
      plot.current = null;
    };
    // Only the line set remakes the plot; new data goes through setData below.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [lines]);
  useEffect(() => {
    if (stats && plot.current) plot.current.setData(chartData(stats));
  }, [stats, lines]);
  const points = stats?.labels?.length ?? 0;
  return (
    <div
      className="chart"
      ref={box}
      data-chart="usage"
      data-granularity={stats?.granularity ?? ''}
      data-compare={String(Boolean(stats?.previous) && compare)}
      data-points={points}
    />
  );
}

// The lights as dots on a plain coordinate plot: longitude → x, latitude → y (north up), one
// scale for both axes (longitude shrunk by cos(latitude), so a square block stays square). No
// map tiles: the console works offline, and tests have no network.

const W = 640;
const H = 400;
const PAD = 30;
// A lone light, or lights on one line, would divide by zero: the view spans at least this many
// degrees (about 100 m).
const MIN_SPAN = 0.001;

/** The function from (lat, lng) to SVG (x, y) that fits every light in the view. */
export function projection(lights) {
  const lats = lights.map((l) => l.latitude);
  const lngs = lights.map((l) => l.longitude);
  const midLat = (Math.min(...lats) + Math.max(...lats)) / 2;
  const midLng = (Math.min(...lngs) + Math.max(...lngs)) / 2;
  const shrink = Math.cos((midLat * Math.PI) / 180) || 1;
  const spanX = Math.max((Math.max(...lngs) - Math.min(...lngs)) * shrink, MIN_SPAN);
  const spanY = Math.max(Math.max(...lats) - Math.min(...lats), MIN_SPAN);
  const scale = Math.min((W - 2 * PAD) / spanX, (H - 2 * PAD) / spanY);
  return (lat, lng) => [W / 2 + (lng - midLng) * shrink * scale, H / 2 - (lat - midLat) * scale];
}

export function LightPlot({ lights }) {
  if (!lights.length) return <p id="no-lights">No lights in this city.</p>;
  const at = projection(lights);
  return (
    <svg className="plot" viewBox={`0 0 ${W} ${H}`} role="img" aria-label="lights by position">
      {lights.map((l) => {
        const [x, y] = at(l.latitude, l.longitude);
        return (
          <g key={l.light_id}>
            <circle data-light={l.light_id} data-status={l.status} cx={x} cy={y} r={9}>
              <title>{`${l.light_id} ${l.name}: ${l.status}`}</title>
            </circle>
            <text x={x + 12} y={y + 4} fontSize="11">{l.light_id}</text>
          </g>
        );
      })}
    </svg>
  );
}

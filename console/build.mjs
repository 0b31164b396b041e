// Bundles the console into dist/: one JS and one CSS file (esbuild, JSX automatic, minified),
// index.html, and dist/.stamp, which scripts/console-build compares with the hash of the
// sources to know whether dist/ is current. Run by scripts/console-build; by hand: `node build.mjs`.
import * as esbuild from 'esbuild';
import { copyFile, mkdir, rm, writeFile } from 'node:fs/promises';

const dist = new URL('./dist/', import.meta.url);
// A fresh dist/: a file the sources no longer produce must not linger and still be served.
await rm(dist, { recursive: true, force: true });
await mkdir(dist, { recursive: true });
const result = await esbuild.build({
  entryPoints: { app: 'src/main.jsx' },
  bundle: true,
  minify: true,
  sourcemap: true,
  format: 'esm',
  target: 'es2020',
  platform: 'browser',
  outdir: 'dist',
  jsx: 'automatic',
  // React's production build; mqtt.js reads process.env too.
  define: { 'process.env.NODE_ENV': '"production"' },
  metafile: true,
  logLevel: 'warning',
  absWorkingDir: new URL('.', import.meta.url).pathname,
});
await copyFile(new URL('./index.html', import.meta.url), new URL('index.html', dist));
// Written last: an interrupted build leaves no stamp, so the next console-build runs again.
// Without CONSOLE_STAMP (a build by hand) the stamp matches no hash, which is also a rebuild.
await writeFile(new URL('.stamp', dist), (process.env.CONSOLE_STAMP ?? 'built by hand') + '\n');
for (const [file, { bytes }] of Object.entries(result.metafile.outputs)) {
  if (!file.endsWith('.map')) console.log(`${file} ${(bytes / 1024).toFixed(0)} KiB`);
}

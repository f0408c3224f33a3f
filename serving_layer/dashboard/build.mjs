// Builds the dashboard into dist/: one JS bundle and one stylesheet with content hashes in
// their names (served as immutable), a manifest the serving layer reads to link them, and
// the sizes (raw and gzipped) the README's budget is checked against.
import * as esbuild from "esbuild";
import { gzipSync } from "node:zlib";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { basename } from "node:path";

const BUDGET_GZIP_BYTES = 150 * 1024; // the initial JavaScript, gzipped (issue 18)
const outdir = "dist/assets";
rmSync("dist", { recursive: true, force: true });

const result = await esbuild.build({
  entryPoints: { app: "src/main.jsx" },
  bundle: true,
  minify: process.env.PARALLAX_DASHBOARD_DEBUG !== "1",
  sourcemap: "linked",
  format: "esm",
  target: ["chrome100", "firefox100", "safari15"],
  jsx: "automatic",
  jsxImportSource: "preact",
  outdir,
  entryNames: "[name]-[hash]",
  assetNames: "[name]-[hash]",
  metafile: true,
  legalComments: "linked",
  logLevel: "warning",
});

const manifest = { assets: {}, sizes: {} };
for (const [path, out] of Object.entries(result.metafile.outputs)) {
  if (path.endsWith(".map") || path.endsWith(".LEGAL.txt")) continue;
  const name = basename(path);
  const kind = name.endsWith(".js") ? "js" : name.endsWith(".css") ? "css" : null;
  if (!kind || !out.entryPoint && kind === "js") continue;
  manifest.assets[kind] = name;
  const bytes = readFileSync(path);
  manifest.sizes[name] = { bytes: bytes.length, gzip: gzipSync(bytes, { level: 9 }).length };
}
// The shell every page of the app is served as (serving_layer/blueprints/pages.py).
writeFileSync("dist/index.html", `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>Parallax</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/assets/${manifest.assets.css}">
<script type="module" src="/assets/${manifest.assets.js}"></script>
</head>
<body>
<div id="app"><p class="boot">Loading Parallax…</p></div>
<noscript>Parallax's dashboard needs JavaScript.</noscript>
</body>
</html>
`);
writeFileSync("dist/manifest.json", JSON.stringify(manifest, null, 2) + "\n");
for (const [name, size] of Object.entries(manifest.sizes)) {
  console.log(`${name}: ${(size.bytes / 1024).toFixed(1)} KiB, ${(size.gzip / 1024).toFixed(1)} KiB gzipped`);
}
const js = manifest.sizes[manifest.assets.js];
if (js.gzip > BUDGET_GZIP_BYTES) {
  console.error(`the initial JavaScript is ${(js.gzip / 1024).toFixed(1)} KiB gzipped, over the budget of 150 KiB`);
  process.exit(1);
}

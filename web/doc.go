// Package web is the Aghali web app: a mobile-first, dependency-light single-page app embedded in
// the binary, and the [http.Handler] that serves it.
//
// The app (static/) is plain HTML, CSS and ES modules with no build step; its only third-party
// code is MapLibre GL JS, vendored by scripts/vendor-web.sh into static/vendor/. It talks to the
// server only through the HTTP API of docs/api.md (/api/v1), same-origin, with the session cookie
// and the session's CSRF token.
//
// Invariants:
//   - Everything the app loads comes from this binary: no CDN, web font, analytics or map tiles
//     (the map style is a plain background plus the farm's own GeoJSON layers, so it needs no
//     glyph or sprite URLs). The Content-Security-Policy sent with the page enforces it.
//   - go build needs neither npm nor the internet: vendored files are committed.
//   - The handler holds no mutable state after construction; each [Handler] call builds its own
//     immutable asset table from the embedded files.
//
// Caching: index.html is served for "/" and for every path that is not an asset (so deep links
// such as /farms/7 work) with Cache-Control no-cache. index.html references its assets with a
// ?v=<content hash> query, and an import map does the same for the ES modules, so an asset
// requested with its current hash is cacheable for a year (immutable); any other request for it
// is revalidated through its ETag. Text assets are served gzipped to clients that accept it,
// from committed .gz files (vendor) or compressed once at construction (the app's own files).
package web

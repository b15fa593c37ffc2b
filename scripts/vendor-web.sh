#!/bin/sh
# Vendors the web app's only third-party runtime code, MapLibre GL JS, from npm into
# web/static/vendor/maplibre-gl/. The copied files are committed, so `go build` needs neither npm
# nor the internet; run this script only to change the pinned version, then commit the result.
#
# The version and the tarball's integrity are pinned here. To upgrade: set MAPLIBRE_VERSION, run
# `npm view maplibre-gl@<version> dist.integrity`, paste it into MAPLIBRE_INTEGRITY, run the script,
# check the app in a browser (go test ./web/...), commit.
#
# 5.x is the last major with the single-file UMD build (dist/maplibre-gl.js with its worker inlined);
# 6.x ships ES modules plus a separate worker that together are about 60% larger gzipped.
set -eu

MAPLIBRE_VERSION=5.24.1
MAPLIBRE_INTEGRITY=sha512-HyiYBwtsbk3L1n1EPLJHWqdoyMiF80n7tEYXFZyu2m1TjvaNx6KMLiFeDdmszt1/mq2zvsR1TJuX/NMu5BonXQ==

root=$(cd "$(dirname "$0")/.." && pwd)
dest="$root/web/static/vendor/maplibre-gl"

for tool in npm node tar gzip; do
	command -v "$tool" >/dev/null 2>&1 || { echo "vendor-web: $tool is required" >&2; exit 1; }
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

# npm pack fetches the published tarball without running any package scripts.
(cd "$tmp" && npm pack --silent "maplibre-gl@$MAPLIBRE_VERSION" >/dev/null)
tgz="$tmp/maplibre-gl-$MAPLIBRE_VERSION.tgz"
got=$(node -e '
	const data = require("fs").readFileSync(process.argv[1]);
	process.stdout.write("sha512-" + require("crypto").createHash("sha512").update(data).digest("base64"));
' "$tgz")
if [ "$got" != "$MAPLIBRE_INTEGRITY" ]; then
	echo "vendor-web: integrity mismatch for maplibre-gl@$MAPLIBRE_VERSION" >&2
	echo "  want $MAPLIBRE_INTEGRITY" >&2
	echo "  got  $got" >&2
	exit 1
fi
tar -xzf "$tgz" -C "$tmp"

rm -rf "$dest"
mkdir -p "$dest"
cp "$tmp/package/dist/maplibre-gl.js" "$tmp/package/dist/maplibre-gl.css" "$dest/"
cp "$tmp/package/LICENSE.txt" "$dest/LICENSE.txt"
printf '%s\n' "$MAPLIBRE_VERSION" >"$dest/VERSION"

# Precompressed copies: web.Handler serves them to clients that accept gzip, so a phone on a weak
# link downloads about a quarter of the bytes without the server compressing on every request.
# -n leaves the name and time out of the header, so reruns produce identical files.
for f in maplibre-gl.js maplibre-gl.css; do
	gzip -9 -n -c "$dest/$f" >"$dest/$f.gz"
done

echo "vendor-web: maplibre-gl@$MAPLIBRE_VERSION -> ${dest#"$root"/}" >&2
ls -l "$dest" >&2

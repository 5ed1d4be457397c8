#!/usr/bin/env bash
# Installs what building and testing shikong needs and is missing, from Debian packages.
# Usage: scripts/deps.sh build|test
#   build: C toolchain parts for the bundled PROJ and SQLite builds
#   test:  build + the real tools the tests run (GDAL, …)
set -euo pipefail
want=(pkg-config cmake clang libclang-dev sqlite3 libsqlite3-dev libtiff-dev libcurl4-openssl-dev unzip)
if [ "${1:-build}" = test ]; then
  want+=(gdal-bin)
  # The web map's browser test: Debian's Chromium (playwright-core drives it; no downloaded
  # browser) and a CJK font so screenshots show Chinese. Node.js and npm come with the machine.
  want+=(chromium fonts-wqy-microhei)
  # The mobile app's desktop window (Dioxus desktop = wry on WebKitGTK), built by the workspace
  # tests; its end-to-end test drives the same views in Chromium.
  want+=(libwebkit2gtk-4.1-dev libgtk-3-dev libxdo-dev libsoup-3.0-dev xvfb xauth)
fi
missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}" >&2
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if [ "${1:-build}" = test ]; then
  # Real clients of the OGC API that tests run against the live server.
  python3 -c "import owslib" 2>/dev/null || python3 -m pip install -q --disable-pip-version-check "owslib==0.35.0"
  # The web map's npm packages (maplibre-gl, esbuild, playwright-core), pinned by package-lock.json.
  web="$(dirname "$0")/../sync-server/http/web"
  [ -d "$web/node_modules/playwright-core" ] || npm ci --prefix "$web" --no-audit --no-fund --loglevel=error
fi

#!/usr/bin/env bash
# Installs what building and testing shikong needs and is missing, from Debian packages.
# Usage: scripts/deps.sh build|desktop|test
#   build:   C toolchain parts for the bundled PROJ and SQLite builds
#   desktop: build + what the desktop app (desktop/, Tauri 2) builds with: WebKitGTK, libdbus, and
#            the npm packages its front end is bundled from
#   test:    desktop + the real tools the tests run (GDAL, Chromium, tauri-driver, PostgreSQL, …)
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
  # The desktop app's end-to-end test drives its window through WebDriver: tauri-driver (below) in
  # front of WebKitGTK's own driver.
  want+=(webkit2gtk-driver)
  # The desktop print test reads the PDF's text and fonts back (pdftotext, pdffonts).
  want+=(poppler-utils)
  # The PostgreSQL store's tests start private clusters (shikong-pgtest: initdb + postgres in a
  # temporary folder, no system service): Debian's server and PostGIS for its default version.
  want+=(postgresql postgresql-postgis)
  # The MQTT bridge's tests attach to a private mosquitto (started with its own config on a free
  # port; the package's system service is not used).
  want+=(mosquitto)
fi
if [ "${1:-build}" = test ] || [ "${1:-build}" = desktop ]; then
  # The desktop app: Tauri 2 is wry on WebKitGTK; keyring's Secret Service client links libdbus.
  want+=(libwebkit2gtk-4.1-dev libgtk-3-dev libxdo-dev libsoup-3.0-dev libdbus-1-dev)
  # Printing to PDF embeds a system CJK font (desktop/src/print.rs looks for Noto Sans CJK,
  # 文泉驿微米黑, …); its unit test and the print test need one.
  want+=(fonts-wqy-microhei)
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
if [ "${1:-build}" = test ] || [ "${1:-build}" = desktop ]; then
  # The web map's npm packages (maplibre-gl, esbuild, playwright-core), pinned by package-lock.json;
  # desktop/build.rs bundles the desktop's front end from the same packages.
  web="$(dirname "$0")/../sync-server/http/web"
  [ -d "$web/node_modules/playwright-core" ] || npm ci --prefix "$web" --no-audit --no-fund --loglevel=error
fi
if [ "${1:-build}" = test ]; then
  # Real clients of the OGC API that tests run against the live server.
  python3 -c "import owslib" 2>/dev/null || python3 -m pip install -q --disable-pip-version-check "owslib==0.35.0"
  # The analysis engine's anchors (tests/analysis_anchors.rs recomputes its reference files with them
  # and compares the versions they record, so numpy, scipy and pandas are pinned too: a new pandas
  # release once turned that test red on a fresh machine). Installed unless every pin is met.
  anchors=("esda==2.9.0" "libpysal==4.14.1" "scikit-learn==1.9.1" "pymannkendall==1.4.3" "hdbscan==0.8.44"
    "movingpandas==0.23.0" "geopandas==1.2.0" "shapely==2.2.0" "pyproj==3.7.2" "geographiclib==2.1"
    "numpy==2.4.6" "scipy==1.17.1" "pandas==3.1.1")
  python3 - "${anchors[@]}" <<'PY' 2>/dev/null \
    || python3 -m pip install -q --disable-pip-version-check "${anchors[@]}"
import sys
from importlib.metadata import version
sys.exit(any(version(n) != v for n, v in (a.split("==") for a in sys.argv[1:])))
PY
  # A real SensorThings API client (Fraunhofer IOSB's, FROST-Server's own Python client).
  python3 -c "import frost_sta_client" 2>/dev/null || python3 -m pip install -q --disable-pip-version-check "frost-sta-client==1.1.53"
  # The WebDriver server for Tauri apps (crates.io), in front of WebKitWebDriver.
  command -v tauri-driver >/dev/null || cargo install --locked tauri-driver --version 2.1.0
fi

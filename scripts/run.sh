#!/usr/bin/env bash
# Runs shikong on its embedded default: a SQLite/GeoPackage store in ./demo-data loaded with real
# demo data (China's official divisions) and generated sample assets in 洪山区, Wuhan, served over
# HTTP (OGC API – Features, HTML pages for browsers). Installs what it lacks by itself.
#   SHIKONG_DATA    data directory (default: demo-data)
#   SHIKONG_LISTEN  address to serve on (default: 127.0.0.1:8080)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh build
data_src="$(scripts/fetch-data.sh)"
cargo build --release --locked -p shikong-server
bin="${CARGO_TARGET_DIR:-target}/release/shikong"
DATA="${SHIKONG_DATA:-demo-data}"
LISTEN="${SHIKONG_LISTEN:-127.0.0.1:8080}"
if [ ! -f "$DATA/store.gpkg" ]; then
  "$bin" demo --data "$DATA" --source "$data_src"   # also builds the gazetteer
  password="$(head -c 12 /dev/urandom | base64 | tr -d '/+=')"
  printf '%s\n' "$password" | "$bin" user add --data "$DATA" --role admin admin >/dev/null
  printf 'admin password (shown once): %s\n' "$password"
fi
"$bin" layer list --data "$DATA"
cat <<MSG

Store: $DATA/store.gpkg (a GeoPackage: QGIS opens it). Open the URL printed below in a browser.
Command line, e.g.:  $bin history --data $DATA --layer manhole 420111-JG-00007
MSG
exec "$bin" serve --data "$DATA" --listen "$LISTEN"

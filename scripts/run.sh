#!/usr/bin/env bash
# Runs shikong on its embedded default: a SQLite/GeoPackage store in ./demo-data loaded with real
# demo data (China's official divisions) and generated sample assets in 洪山区, Wuhan, served over
# HTTP (OGC API – Features, HTML pages for browsers). Installs what it lacks by itself.
#   SHIKONG_DATA    data directory (default: demo-data)
#   SHIKONG_LISTEN  address to serve on (default: 127.0.0.1:8080)
#   SHIKONG_MQTT    address of the embedded MQTT broker (default: 127.0.0.1:1883)
#   SHIKONG_SENSORS live simulated sensor stations in 洪山区 (default: 8; 0: none)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh build
data_src="$(scripts/fetch-data.sh)"
cargo build --release --locked -p shikong-server
bin="${CARGO_TARGET_DIR:-target}/release/shikong"
DATA="${SHIKONG_DATA:-demo-data}"
LISTEN="${SHIKONG_LISTEN:-127.0.0.1:8080}"
MQTT="${SHIKONG_MQTT:-127.0.0.1:1883}"
SENSORS="${SHIKONG_SENSORS:-8}"
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
if [ "$SENSORS" = 0 ]; then
  exec "$bin" serve --data "$DATA" --listen "$LISTEN" --mqtt "$MQTT"
fi
# Live readings on the map: SENSORS simulated stations in 洪山区 (water level, manhole cover tilt,
# street-lamp current, PM2.5; made once as SensorThings Things, reused by name) publish 2 readings
# a second in total over MQTT, as the admin with a token issued here; log in $DATA/sensors.log.
out="$DATA/serve.out"
: >"$out"
"$bin" serve --data "$DATA" --listen "$LISTEN" --mqtt "$MQTT" > >(tee -a "$out") &
server=$!
trap 'kill "$server" ${sim:+"$sim"} 2>/dev/null || true' EXIT
trap 'exit 130' INT TERM
# The server's first line names the address it is bound to.
until url="$(sed -n 's/^shikong listening on //p' "$out")" && [ -n "$url" ]; do
  kill -0 "$server" 2>/dev/null || exit 1
  sleep 0.2
done
url="${url/0.0.0.0/127.0.0.1}"
token="$("$bin" user token --data "$DATA" admin --hours 720)"
"$bin" sensors simulate --server "$url" --token "$token" --stations "$SENSORS" --rate 2 \
  >"$DATA/sensors.log" 2>&1 &
sim=$!
wait "$server"

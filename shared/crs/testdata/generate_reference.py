#!/usr/bin/env python3
"""Regenerates reference.csv, the table shikong-crs is tested against.

Every expected value comes from an implementation no one on this project wrote:
  - EPSG transforms: pyproj (PROJ 9.5 with its own proj.db), always_xy=True (x = lon/easting).
  - GCJ-02 / BD-09 forward offsets: PyPI coord-convert (the canonical published algorithm).
  - Geodesic lengths, azimuths, areas and perimeters: PyPI geographiclib (Karney's reference
    implementation) on the CGCS2000 ellipsoid a = 6378137, 1/f = 298.257222101.

Run from anywhere (see README.md beside this file for the pinned install command):
    python3 shared/crs/testdata/generate_reference.py
The output is deterministic (seeded), so a regeneration with the same versions is byte-identical.
"""

import csv
import os
import random
import sys

import coord_convert.transform as cc
import pyproj
from geographiclib.geodesic import Geodesic
from pyproj import Transformer

CGCS2000 = Geodesic(6378137.0, 1 / 298.257222101)
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "reference.csv")
COLUMNS = ["kind", "from", "to", "in_x", "in_y", "out_x", "out_y",
           "length_m", "area_m2", "perimeter_m", "azimuth_deg", "wkt"]

rng = random.Random(20240501)
rows = []


def num(v):
    return repr(float(v))


def china_point():
    """A point spread over mainland China's extent (lon 73.5-135, lat 18-53.5)."""
    return rng.uniform(73.5, 135.0), rng.uniform(18.0, 53.5)


_transformers = {}


def transformer(src, dst):
    key = (src, dst)
    if key not in _transformers:
        _transformers[key] = Transformer.from_crs(src, dst, always_xy=True)
    return _transformers[key]


def epsg_row(src, dst, x, y):
    ox, oy = transformer(src, dst).transform(x, y, errcheck=True)
    rows.append(["transform", src, dst, num(x), num(y), num(ox), num(oy), "", "", "", "", ""])


def zone_cm(code):
    """Central meridian of a CGCS2000 Gauss-Krueger EPSG code, read from PROJ itself."""
    crs = pyproj.CRS.from_epsg(code)
    for p in crs.coordinate_operation.params:
        if p.name == "Longitude of natural origin":
            return p.value
    raise SystemExit(f"EPSG:{code} has no central meridian")


def zone_point(code, half_width):
    cm = zone_cm(code)
    return rng.uniform(cm - half_width, cm + half_width), rng.uniform(18.0, 53.5)


# --- EPSG transforms -------------------------------------------------------------------------
for _ in range(60):
    epsg_row("EPSG:4490", "EPSG:3857", *china_point())
for _ in range(40):
    epsg_row("EPSG:4326", "EPSG:3857", *china_point())
for _ in range(40):
    x, y = transformer("EPSG:4490", "EPSG:3857").transform(*china_point())
    epsg_row("EPSG:3857", "EPSG:4490", x, y)
for _ in range(20):
    epsg_row("EPSG:4326", "EPSG:4490", *china_point())
for _ in range(20):
    epsg_row("EPSG:4490", "EPSG:4326", *china_point())

# Every CGCS2000 Gauss-Krueger zone, points within the zone (3 deg zones: CM +- 1.5, 6 deg: +- 3).
for code in range(4534, 4555):  # 3 deg, no prefix
    for _ in range(8):
        epsg_row("EPSG:4490", f"EPSG:{code}", *zone_point(code, 1.5))
for code in range(4513, 4534):  # 3 deg, zone prefix
    for _ in range(5):
        epsg_row("EPSG:4490", f"EPSG:{code}", *zone_point(code, 1.5))
for code in range(4502, 4513):  # 6 deg, no prefix
    for _ in range(8):
        epsg_row("EPSG:4490", f"EPSG:{code}", *zone_point(code, 3.0))
for code in range(4491, 4502):  # 6 deg, zone prefix
    for _ in range(5):
        epsg_row("EPSG:4490", f"EPSG:{code}", *zone_point(code, 3.0))

# Inverse projections, WGS 84 into a zone, zone to Web Mercator, zone to zone.
for code, n in [(4547, 30), (4526, 20), (4509, 20), (4498, 20), (4534, 5), (4554, 5)]:
    for _ in range(n):
        lon, lat = zone_point(code, 1.5)
        x, y = transformer("EPSG:4490", f"EPSG:{code}").transform(lon, lat)
        epsg_row(f"EPSG:{code}", "EPSG:4490", x, y)
for _ in range(20):
    epsg_row("EPSG:4326", "EPSG:4547", *zone_point(4547, 1.5))
for _ in range(20):
    x, y = transformer("EPSG:4490", "EPSG:4547").transform(*zone_point(4547, 1.5))
    epsg_row("EPSG:4547", "EPSG:3857", x, y)
for _ in range(20):
    # Near the 115.5 deg E boundary between CM 114 and CM 117.
    x, y = transformer("EPSG:4490", "EPSG:4547").transform(rng.uniform(115.0, 116.0), rng.uniform(25.0, 42.0))
    epsg_row("EPSG:4547", "EPSG:4548", x, y)
for _ in range(10):
    x, y = transformer("EPSG:4490", "EPSG:4526").transform(*zone_point(4526, 1.5))
    epsg_row("EPSG:4526", "EPSG:4547", x, y)

# --- GCJ-02 / BD-09 (forward only: the inverses are checked by round trip) ---------------------
def offset_row(src, dst, fn, x, y):
    ox, oy = fn(x, y)
    rows.append(["transform", src, dst, num(x), num(y), num(ox), num(oy), "", "", "", "", ""])


for _ in range(300):
    offset_row("EPSG:4326", "GCJ02", cc.wgs2gcj, *china_point())
for _ in range(20):
    offset_row("EPSG:4490", "GCJ02", cc.wgs2gcj, *china_point())
for _ in range(150):
    offset_row("GCJ02", "BD09", cc.gcj2bd, *china_point())
for _ in range(100):
    offset_row("EPSG:4326", "BD09", cc.wgs2bd, *china_point())
# Outside the box the offset is the identity (Tokyo, Paris, Singapore, Ulaanbaatar's north, the box edge).
for x, y in [(139.6917, 35.6895), (2.3522, 48.8566), (103.8198, 1.3521 - 0.6), (106.9, 56.0),
             (71.99, 39.0), (137.84, 45.0), (120.0, 0.8), (120.0, 55.9)]:
    offset_row("EPSG:4326", "GCJ02", cc.wgs2gcj, x, y)
    offset_row("EPSG:4326", "BD09", cc.wgs2bd, x, y)


# --- Geodesic measurement on CGCS2000 ---------------------------------------------------------
def ring_wkt(ring):
    return "(" + ",".join(f"{x!r} {y!r}" for x, y in ring) + ")"


def ring_area_perimeter(ring):
    """Unsigned area and perimeter of a closed ring (first == last) with geodesic edges."""
    p = CGCS2000.Polygon()
    for x, y in ring[:-1]:
        p.AddPoint(y, x)
    _, perimeter, area = p.Compute(False, True)
    return abs(area), perimeter


def polygon_row(label, polygons):
    """polygons: list of polygons, each a list of rings (exterior first, then holes)."""
    area = perimeter = 0.0
    for rings in polygons:
        for i, ring in enumerate(rings):
            a, p = ring_area_perimeter(ring)
            area += a if i == 0 else -a
            perimeter += p
    if len(polygons) == 1:
        wkt = "POLYGON (" + ",".join(ring_wkt(r) for r in polygons[0]) + ")"
    else:
        wkt = "MULTIPOLYGON (" + ",".join("(" + ",".join(ring_wkt(r) for r in rings) + ")" for rings in polygons) + ")"
    rows.append(["measure", "EPSG:4490", label, "", "", "", "", "0.0", num(area), num(perimeter), "", wkt])


def line_row(label, line):
    length = sum(CGCS2000.Inverse(a[1], a[0], b[1], b[0])["s12"] for a, b in zip(line, line[1:]))
    azimuth = ""
    if len(line) == 2:
        azimuth = num(CGCS2000.Inverse(line[0][1], line[0][0], line[1][1], line[1][0])["azi1"] % 360.0)
    wkt = "LINESTRING " + ring_wkt(line)
    rows.append(["measure", "EPSG:4490", label, "", "", "", "", num(length), "0.0", "0.0", azimuth, wkt])


def cell(lon, lat, size=1.0):
    return [[(lon, lat), (lon + size, lat), (lon + size, lat + size), (lon, lat + size), (lon, lat)]]


polygon_row("cell-1deg-30N", [cell(114.0, 30.0)])
polygon_row("cell-1deg-20N", [cell(110.0, 20.0)])
polygon_row("cell-1deg-40N", [cell(116.0, 40.0)])
polygon_row("cell-1deg-50N", [cell(125.0, 50.0)])
polygon_row("cell-0.01deg-30N", [cell(114.3, 30.5, 0.01)])

# A district-sized polygon drawn roughly around Hongshan District (洪山区), Wuhan, about 500 km².
# Hand-drawn for testing, NOT an official boundary. Clockwise on purpose (orientation must not matter).
HONGSHAN = [
    (114.262, 30.498), (114.283, 30.557), (114.318, 30.598), (114.352, 30.621), (114.398, 30.629),
    (114.447, 30.622), (114.489, 30.609), (114.532, 30.596), (114.571, 30.577), (114.603, 30.548),
    (114.617, 30.511), (114.608, 30.472), (114.579, 30.439), (114.538, 30.412), (114.488, 30.398),
    (114.436, 30.392), (114.389, 30.401), (114.344, 30.418), (114.307, 30.441), (114.279, 30.467),
    (114.262, 30.498),
]
HONGSHAN_CW = list(reversed(HONGSHAN))
# A lake-shaped hole inside it (roughly where East Lake's southern part lies).
LAKE = [
    (114.402, 30.532), (114.431, 30.541), (114.457, 30.536), (114.469, 30.519), (114.455, 30.503),
    (114.426, 30.498), (114.404, 30.509), (114.402, 30.532),
]
polygon_row("district-hongshan", [[HONGSHAN_CW]])
polygon_row("district-hongshan-with-hole", [[HONGSHAN_CW, LAKE]])
polygon_row("multipolygon-district-and-cell", [[HONGSHAN_CW, LAKE], cell(115.0, 31.0, 0.05)])

# Distances with azimuths between city pairs and random nearby pairs.
CITIES = {
    "wuhan": (114.3055, 30.5928), "beijing": (116.4074, 39.9042), "shanghai": (121.4737, 31.2304),
    "guangzhou": (113.2644, 23.1291), "urumqi": (87.6168, 43.8256), "harbin": (126.5350, 45.8038),
    "lhasa": (91.1409, 29.6456), "sanya": (109.5119, 18.2528),
}
names = list(CITIES)
for a, b in zip(names, names[1:] + names[:1]):
    line_row(f"distance-{a}-{b}", [CITIES[a], CITIES[b]])
for i in range(12):
    lon, lat = china_point()
    line_row(f"distance-short-{i}", [(lon, lat), (lon + rng.uniform(-0.01, 0.01), lat + rng.uniform(-0.01, 0.01))])
line_row("polyline-wuhan-beijing-harbin", [CITIES["wuhan"], CITIES["beijing"], CITIES["harbin"]])
line_row("polyline-yangtze-ish", [(114.20, 30.50), (114.28, 30.56), (114.33, 30.61), (114.42, 30.66), (114.50, 30.67)])

with open(OUT, "w", newline="", encoding="utf-8") as f:
    w = csv.writer(f, lineterminator="\n")
    w.writerow(COLUMNS)
    w.writerows(rows)

print(f"wrote {len(rows)} rows to {OUT} (pyproj {pyproj.__version__}, PROJ {pyproj.proj_version_str})",
      file=sys.stderr)

"""Peers of `shikong-bench analysis` (sync-server/bench/src/analysis.rs), embedded in the bench.

Run as: python3 -c <this> KIND DIR [ARGS...]; the bench writes its data into DIR as little-endian
arrays and reads the peer's results from DIR. Every timing is taken with perf_counter around the
library call only; imports and data preparation are reported separately ("import", "setup")
and are not counted. Each line printed is "key value".
"""
import sys
import time
import warnings

T0 = time.perf_counter()
warnings.filterwarnings("ignore")
import numpy as np  # noqa: E402

KIND, D, ARGS = sys.argv[1], sys.argv[2], sys.argv[3:]


def report(key, value):
    print(key, value, flush=True)


def arr(name, dtype, cols=None):
    a = np.fromfile(f"{D}/{name}", dtype=dtype)
    return a.reshape(-1, cols) if cols else a


def projected(lonlat):
    """EPSG:4490 -> EPSG:4547 (CGCS2000 / 3-degree Gauss-Kruger CM 114E), metres."""
    from pyproj import Transformer

    t = Transformer.from_crs(4490, 4547, always_xy=True)
    x, y = t.transform(lonlat[:, 0], lonlat[:, 1])
    return np.column_stack([x, y])


def timed(key, f):
    s = time.perf_counter()
    out = f()
    report(key, time.perf_counter() - s)
    return out


def best_of(key, f):
    """The clustering rule, the same as the bench's for shikong: the best of up to 3 runs,
    no further run once 20 s have been spent."""
    best, spent, runs = float("inf"), 0.0, 0
    while runs < 3 and (runs == 0 or spent < 20.0):
        s = time.perf_counter()
        out = f()
        took = time.perf_counter() - s
        best, spent, runs = min(best, took), spent + took, runs + 1
    report(key, best)
    report("runs", runs)
    return out


if KIND == "gi":
    import esda
    import libpysal
    import scipy.sparse as sp

    report("import", time.perf_counter() - T0)
    report("version", f"esda-{esda.__version__}/libpysal-{libpysal.__version__}")
    band = float(ARGS[0])
    s = time.perf_counter()
    pts = arr("points.f64", "<f8", 2)
    y = arr("values.f64", "<f8")
    offsets = arr("offsets.u64", "<u8").astype(np.int64)
    nb = arr("neighbours.u32", "<u4").astype(np.int32)
    n = len(y)
    xy = projected(pts)
    report("setup", time.perf_counter() - s)
    # (a) the W built from shikong's neighbour lists (not timed: the peer's search is not counted)
    s = time.perf_counter()
    w = libpysal.weights.W.from_sparse(sp.csr_matrix((np.ones(len(nb)), nb, offsets), shape=(n, n)))
    report("w_from_lists", time.perf_counter() - s)
    g = timed("g_local_lists", lambda: esda.G_Local(y, w, transform="B", star=True, permutations=0))
    np.asarray(g.Zs, dtype="<f8").tofile(f"{D}/z_lists.f64")
    del g, w
    # (b) the whole job in PySAL: DistanceBand on projected metres, then G_Local
    wd = timed("distance_band", lambda: libpysal.weights.DistanceBand(xy, threshold=band, binary=True, silence_warnings=True))
    g = timed("g_local_band", lambda: esda.G_Local(y, wd, transform="B", star=True, permutations=0))
    np.asarray(g.Zs, dtype="<f8").tofile(f"{D}/z_band.f64")
    np.asarray([wd.cardinalities[i] for i in range(n)], dtype="<f8").tofile(f"{D}/card_band.f64")
elif KIND == "dbscan":
    import sklearn
    from sklearn.cluster import DBSCAN

    report("import", time.perf_counter() - T0)
    report("version", f"scikit-learn-{sklearn.__version__}")
    eps, min_samples = float(ARGS[0]), int(ARGS[1])
    s = time.perf_counter()
    xy = projected(arr("points.f64", "<f8", 2))
    report("setup", time.perf_counter() - s)
    m = best_of("fit", lambda: DBSCAN(eps=eps, min_samples=min_samples, n_jobs=-1).fit(xy))
    m.labels_.astype("<i4").tofile(f"{D}/labels.i32")
elif KIND == "hdbscan":
    import hdbscan
    from importlib.metadata import version

    report("import", time.perf_counter() - T0)
    report("version", f"hdbscan-{version('hdbscan')}")
    mcs, ms = int(ARGS[0]), int(ARGS[1])
    s = time.perf_counter()
    xy = projected(arr("points.f64", "<f8", 2))
    report("setup", time.perf_counter() - s)
    m = best_of("fit", lambda: hdbscan.HDBSCAN(min_cluster_size=mcs, min_samples=ms, core_dist_n_jobs=-1, approx_min_span_tree=False).fit(xy))
    m.labels_.astype("<i4").tofile(f"{D}/labels.i32")
elif KIND == "stops":
    from datetime import timedelta

    import movingpandas as mpd
    import pandas as pd

    report("import", time.perf_counter() - T0)
    report("version", f"movingpandas-{mpd.__version__}")
    max_diameter, min_duration = float(ARGS[0]), float(ARGS[1])
    s = time.perf_counter()
    a = arr("fixes.f64", "<f8", 3)
    df = pd.DataFrame({"lon": a[:, 0], "lat": a[:, 1], "t": pd.to_datetime(a[:, 2].astype(np.int64), unit="s")})
    traj = mpd.Trajectory(df, 1, t="t", x="lon", y="lat", crs="EPSG:4326")
    report("setup", time.perf_counter() - s)
    det = mpd.TrajectoryStopDetector(traj)
    ranges = timed(
        "detect",
        lambda: det.get_stop_time_ranges(max_diameter=max_diameter, min_duration=timedelta(seconds=min_duration)),
    )
    epoch = pd.Timestamp(0)
    out = [((pd.Timestamp(r.t_0) - epoch).total_seconds(), (pd.Timestamp(r.t_n) - epoch).total_seconds()) for r in ranges]
    np.asarray(out, dtype="<f8").reshape(-1, 2).tofile(f"{D}/stops.f64")
else:
    sys.exit(f"unknown kind {KIND}")

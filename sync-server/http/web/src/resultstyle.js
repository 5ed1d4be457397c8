// How an analysis result is drawn (issue 19): the main column a process added decides the colours
// and the legend — Getis-Ord's `gi_bin` on a diverging red (hot) / blue (cold) scale, LISA's
// `lisa_cluster` and DBSCAN/HDBSCAN's `cluster` as categories (noise grey). A column this file
// does not know (a process added later) is drawn in one colour with no legend, so a new process
// still shows.

const BINS = [
  [3, '#d7191c', 'sk_bin_3'],
  [2, '#f17c4a', 'sk_bin_2'],
  [1, '#fec980', 'sk_bin_1'],
  [0, '#d9d9d9', 'sk_bin_0'],
  [-1, '#c7e6f0', 'sk_bin_m1'],
  [-2, '#6baed6', 'sk_bin_m2'],
  [-3, '#2c7bb6', 'sk_bin_m3'],
];
const LISA = [
  ['HH', '#d7191c', 'sk_lisa_HH'],
  ['LL', '#2c7bb6', 'sk_lisa_LL'],
  ['HL', '#fdae61', 'sk_lisa_HL'],
  ['LH', '#abd9e9', 'sk_lisa_LH'],
  ['NS', '#d9d9d9', 'sk_lisa_NS'],
];
/** Categorical colours of clusters 0, 1, …, repeating after ten (Tableau 10). */
export const PALETTE = ['#4e79a7', '#f28e2b', '#59a14f', '#e15759', '#76b7b2', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#17becf'];
const NOISE = '#9e9e9e';
const PLAIN = '#ff7f00';
/** Point radii (pixels): findings, and what is not significant or noise. */
const LARGE = 6;
const SMALL = 3;
/** Legend rows of clusters beyond this are summed up in one row. */
const LEGEND_CLUSTERS = 12;

/**
 * The style of `features`: `{ column, color, radius }` with `color` and `radius` (of points)
 * MapLibre expressions, and `legend(t)` → rows `{ value, color, label, count }` (empty for an
 * unknown column). What is not significant (or noise) is drawn smaller, so the findings stand out.
 */
export function resultStyle(features) {
  const has = (k) => features.some((f) => f.properties && k in f.properties);
  const count = (k, v) => features.filter((f) => f.properties && f.properties[k] === v).length;
  if (has('gi_bin')) {
    return {
      column: 'gi_bin',
      radius: ['case', ['==', ['to-number', ['get', 'gi_bin'], 0], 0], SMALL, LARGE],
      color: ['match', ['to-number', ['get', 'gi_bin']], ...BINS.flatMap(([v, c]) => [v, c]), '#d9d9d9'],
      legend: (t) => BINS.map(([v, c, k]) => ({ value: String(v), color: c, label: t(k), count: count('gi_bin', v) })),
    };
  }
  if (has('lisa_cluster')) {
    return {
      column: 'lisa_cluster',
      radius: ['case', ['==', ['to-string', ['get', 'lisa_cluster']], 'NS'], SMALL, LARGE],
      color: ['match', ['to-string', ['get', 'lisa_cluster']], ...LISA.flatMap(([v, c]) => [v, c]), '#d9d9d9'],
      legend: (t) => LISA.map(([v, c, k]) => ({ value: v, color: c, label: t(k), count: count('lisa_cluster', v) })),
    };
  }
  if (has('cluster')) {
    const labels = [...new Set(features.map((f) => f.properties && f.properties.cluster))]
      .filter((v) => Number.isInteger(v))
      .sort((a, b) => a - b);
    return {
      column: 'cluster',
      radius: ['case', ['<', ['to-number', ['get', 'cluster'], -1], 0], SMALL, LARGE],
      color: [
        'case',
        ['<', ['to-number', ['get', 'cluster'], -1], 0],
        NOISE,
        ['to-color', ['at', ['%', ['to-number', ['get', 'cluster']], PALETTE.length], ['literal', PALETTE]]],
      ],
      legend: (t) => {
        const rows = [];
        const clusters = labels.filter((v) => v >= 0);
        for (const v of clusters.slice(0, LEGEND_CLUSTERS)) {
          rows.push({ value: String(v), color: PALETTE[v % PALETTE.length], label: t('sk_cluster_n', { n: v }), count: count('cluster', v) });
        }
        if (clusters.length > LEGEND_CLUSTERS) {
          rows.push({ value: 'more', color: 'transparent', label: t('sk_more_clusters', { n: clusters.length - LEGEND_CLUSTERS }), count: null });
        }
        if (labels.includes(-1)) rows.push({ value: '-1', color: NOISE, label: t('sk_noise'), count: count('cluster', -1) });
        return rows;
      },
    };
  }
  return { column: null, color: PLAIN, radius: LARGE, legend: () => [] };
}

/** The map layers of a GeoJSON source `id` in `style`: polygons, lines and points. */
export function resultLayers(id, { color, radius }) {
  const kind = (k) => ['==', ['geometry-type'], k];
  return [
    {
      id: `${id}-fill`,
      type: 'fill',
      source: id,
      filter: ['any', kind('Polygon'), kind('MultiPolygon')],
      paint: { 'fill-color': color, 'fill-opacity': 0.6, 'fill-outline-color': '#555' },
    },
    {
      id: `${id}-line`,
      type: 'line',
      source: id,
      filter: ['any', kind('LineString'), kind('MultiLineString')],
      paint: { 'line-color': color, 'line-width': 3 },
    },
    {
      id: `${id}-point`,
      type: 'circle',
      source: id,
      filter: ['any', kind('Point'), kind('MultiPoint')],
      paint: { 'circle-color': color, 'circle-radius': radius, 'circle-stroke-color': '#333', 'circle-stroke-width': 1 },
    },
  ];
}

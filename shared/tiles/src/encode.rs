//! Building vector tile layers from store geometries: project into the tile, clip to the buffered
//! square, simplify for the zoom, snap to the integer grid, fix ring orientation, encode commands.
//!
//! Coordinates arrive as CGCS2000 lon/lat and are projected by a [`TileProjector`] of the tile's
//! matrix set. Simplification (Douglas–Peucker via `geo`) runs in tile units, so its tolerance is
//! a fraction of a pixel at every zoom: coarse zooms lose detail no screen could show, the
//! deepest zooms keep every vertex. Geometry that collapses on the grid (a polygon smaller than a
//! grid cell, a line shorter than one unit) is dropped, as PostGIS's `ST_AsMVTGeom` does.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use geo::SimplifyIdx;
use prost::Message;
use shikong_model::{Coord, Geometry, Value};

use crate::clip::{ClipBox, Pt, clip_line, clip_ring};
use crate::mvt::{self, CLOSE_PATH, GeomType, LINE_TO, MOVE_TO, command, zigzag};
use crate::tms::TileProjector;

/// How a layer is encoded.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EncodeOptions {
    /// Units per tile side.
    pub extent: u32,
    /// Units kept beyond each tile edge, so lines and fills join seamlessly and symbols at the
    /// edge are not cut.
    pub buffer: u32,
    /// Douglas–Peucker tolerance in tile units (0: no simplification).
    pub tolerance: f64,
    /// Keep at most one point per square of this many units (`None`: keep every point). Coarse
    /// zooms of dense point layers would otherwise carry thousands of points per pixel.
    pub thin_points: Option<u32>,
}

impl Default for EncodeOptions {
    fn default() -> Self {
        EncodeOptions { extent: 4096, buffer: 64, tolerance: 1.0, thin_points: None }
    }
}

impl EncodeOptions {
    /// The default per-zoom policy: below zoom 12 (a tile wider than ~10 km) points are thinned
    /// to one per 8×8 units (512×512 per tile, one per screen pixel on high-DPI screens); up to
    /// zoom 17 lines and rings are simplified with a 1-unit tolerance (1/16 of a pixel of a
    /// 256-pixel tile); from zoom 18 on every vertex is kept.
    pub fn for_zoom(z: u8) -> Self {
        EncodeOptions {
            tolerance: if z >= 18 { 0.0 } else { 1.0 },
            thin_points: (z < 12).then_some(8),
            ..EncodeOptions::default()
        }
    }

    /// The buffer as a fraction of the tile width (what tile ranges and query boxes use).
    pub fn buffer_fraction(&self) -> f64 {
        f64::from(self.buffer) / f64::from(self.extent)
    }

    fn clip_box(&self) -> ClipBox {
        ClipBox { min: -f64::from(self.buffer), max: f64::from(self.extent + self.buffer) }
    }
}

/// A non-string attribute value, by kind and bits (strings are looked up by `&str`, so a
/// repeated text value costs no allocation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Scalar {
    Uint(u64),
    Sint(i64),
    Double(u64),
    Bool(bool),
}

/// Accumulates the features of one layer of one tile.
#[derive(Debug)]
pub struct LayerBuilder {
    layer: mvt::Layer,
    opts: EncodeOptions,
    keys: HashMap<String, u32>,
    strings: HashMap<String, u32>,
    scalars: HashMap<Scalar, u32>,
    cells: std::collections::HashSet<(i32, i32)>,
    // Scratch buffers reused across features.
    pts: Vec<Pt>,
}

impl LayerBuilder {
    pub fn new(name: &str, opts: EncodeOptions) -> Self {
        LayerBuilder {
            layer: mvt::Layer {
                version: 2,
                name: name.to_owned(),
                features: Vec::new(),
                keys: Vec::new(),
                values: Vec::new(),
                extent: Some(opts.extent),
            },
            opts,
            keys: HashMap::new(),
            strings: HashMap::new(),
            scalars: HashMap::new(),
            cells: std::collections::HashSet::new(),
            pts: Vec::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.layer.features.len()
    }

    pub fn is_empty(&self) -> bool {
        self.layer.features.is_empty()
    }

    /// Adds a feature; returns `false` when nothing of its geometry falls in the tile (or it
    /// collapsed on the grid), in which case nothing was added. Null values are skipped.
    pub fn add<'a>(
        &mut self,
        geometry: &Geometry,
        proj: &TileProjector,
        id: Option<u64>,
        properties: impl IntoIterator<Item = (&'a str, &'a Value)>,
    ) -> bool {
        let Some((ty, commands)) = self.geometry(geometry, proj) else { return false };
        let mut tags = Vec::new();
        for (k, v) in properties {
            let vi = match v {
                Value::Null => continue,
                Value::Text(s) => self.string(s),
                Value::Bool(b) => self.scalar(Scalar::Bool(*b)),
                Value::Integer(i) if *i >= 0 => self.scalar(Scalar::Uint(*i as u64)),
                Value::Integer(i) => self.scalar(Scalar::Sint(*i)),
                Value::Real(f) => self.scalar(Scalar::Double(f.to_bits())),
                other => self.string(&other.to_text()),
            };
            tags.push(self.key(k));
            tags.push(vi);
        }
        self.layer.features.push(mvt::Feature { id, tags, r#type: Some(ty as i32), geometry: commands });
        true
    }

    fn key(&mut self, k: &str) -> u32 {
        if let Some(i) = self.keys.get(k) {
            return *i;
        }
        let i = self.layer.keys.len() as u32;
        self.layer.keys.push(k.to_owned());
        self.keys.insert(k.to_owned(), i);
        i
    }

    fn string(&mut self, s: &str) -> u32 {
        if let Some(i) = self.strings.get(s) {
            return *i;
        }
        let i = self.layer.values.len() as u32;
        self.layer.values.push(mvt::Value { string_value: Some(s.to_owned()), ..mvt::Value::default() });
        self.strings.insert(s.to_owned(), i);
        i
    }

    fn scalar(&mut self, v: Scalar) -> u32 {
        let next = self.layer.values.len() as u32;
        match self.scalars.entry(v) {
            Entry::Occupied(e) => *e.get(),
            Entry::Vacant(e) => {
                let mut m = mvt::Value::default();
                match v {
                    Scalar::Uint(u) => m.uint_value = Some(u),
                    Scalar::Sint(i) => m.sint_value = Some(i),
                    Scalar::Double(bits) => m.double_value = Some(f64::from_bits(bits)),
                    Scalar::Bool(b) => m.bool_value = Some(b),
                }
                self.layer.values.push(m);
                e.insert(next);
                next
            }
        }
    }

    /// The finished layer message, its key and value tables ordered by use (see
    /// [`order_by_use`]).
    pub fn into_layer(self) -> mvt::Layer {
        let mut layer = self.layer;
        order_by_use(&mut layer);
        layer
    }

    /// The layer encoded as a complete one-layer tile (empty bytes when it has no feature).
    pub fn into_tile_bytes(self) -> Vec<u8> {
        if self.is_empty() {
            return Vec::new();
        }
        mvt::Tile { layers: vec![self.into_layer()] }.encode_to_vec()
    }

    fn project(&mut self, line: &[Coord], proj: &TileProjector, drop_last: bool) {
        self.pts.clear();
        let n = if drop_last { line.len().saturating_sub(1) } else { line.len() };
        self.pts.extend(line[..n].iter().map(|c| proj.project(c.x, c.y)));
    }

    fn geometry(&mut self, g: &Geometry, proj: &TileProjector) -> Option<(GeomType, Vec<u32>)> {
        let mut enc = Commands::default();
        let ty = match g {
            Geometry::Point(c) => {
                self.point(*c, proj, &mut enc);
                GeomType::Point
            }
            Geometry::MultiPoint(cs) => {
                for c in cs {
                    self.point(*c, proj, &mut enc);
                }
                GeomType::Point
            }
            Geometry::LineString(l) => {
                self.line(l, proj, &mut enc);
                GeomType::Linestring
            }
            Geometry::MultiLineString(ls) => {
                for l in ls {
                    self.line(l, proj, &mut enc);
                }
                GeomType::Linestring
            }
            Geometry::Polygon(rings) => {
                self.polygon(rings, proj, &mut enc);
                GeomType::Polygon
            }
            Geometry::MultiPolygon(polys) => {
                for rings in polys {
                    self.polygon(rings, proj, &mut enc);
                }
                GeomType::Polygon
            }
        };
        if ty == GeomType::Point {
            enc.finish_points();
        }
        (!enc.out.is_empty()).then_some((ty, enc.out))
    }

    fn point(&mut self, c: Coord, proj: &TileProjector, enc: &mut Commands) {
        let p = proj.project(c.x, c.y);
        if !self.opts.clip_box().contains(p) {
            return;
        }
        let q = snap(p);
        if let Some(cell) = self.opts.thin_points {
            let cell = cell.max(1) as i32;
            if !self.cells.insert((q.0.div_euclid(cell), q.1.div_euclid(cell))) {
                return;
            }
        }
        enc.point(q);
    }

    fn line(&mut self, l: &[Coord], proj: &TileProjector, enc: &mut Commands) {
        self.project(l, proj, false);
        let b = self.opts.clip_box();
        if self.pts.len() < 2 || !b.meets(&self.pts) {
            return;
        }
        for part in clip_line(&self.pts, b) {
            let q = snap_all(&simplify(&part, self.opts.tolerance));
            if q.len() >= 2 {
                enc.line(&q);
            }
        }
    }

    fn polygon(&mut self, rings: &[Vec<Coord>], proj: &TileProjector, enc: &mut Commands) {
        let b = self.opts.clip_box();
        let mut out: Vec<Vec<(i32, i32)>> = Vec::with_capacity(rings.len());
        for (i, ring) in rings.iter().enumerate() {
            self.project(ring, proj, ring.first() == ring.last());
            if self.pts.len() < 3 || !b.meets(&self.pts) {
                if i == 0 {
                    return; // no exterior, no polygon
                }
                continue;
            }
            let clipped = clip_ring(&self.pts, b);
            let q = snap_ring(&simplify_ring(&clipped, self.opts.tolerance));
            let a = if q.len() >= 3 { area2(&q) } else { 0 };
            if a == 0 {
                if i == 0 {
                    return;
                }
                continue;
            }
            // Exterior rings have positive area in tile coordinates (y down), holes negative.
            let want_positive = i == 0;
            let mut q = q;
            if (a > 0) != want_positive {
                q.reverse();
            }
            out.push(q);
        }
        for r in &out {
            enc.ring(r);
        }
    }
}

/// Reorders the layer's keys and values, most used first, and rewrites the features' tags.
///
/// Why: a tag is a varint index into these tables, one byte below 128, two below 16,384, three
/// beyond. In first-seen order the shared values of a dense layer (a material, a road name, a
/// year) get indexes interleaved with the values unique to one feature (its id, its code), so
/// after a few hundred features every tag costs two or three bytes. Most used first, the shared
/// values keep the small indexes and only the unique values pay three bytes. Values used equally
/// often are grouped by the key that first used them (all ids, then all codes): like text next to
/// like text is what gzip compresses best. Then first-seen order, so the output is deterministic.
fn order_by_use(layer: &mut mvt::Layer) {
    let mut key_uses = vec![0u32; layer.keys.len()];
    let mut value_uses = vec![0u32; layer.values.len()];
    let mut value_key = vec![u32::MAX; layer.values.len()];
    for f in &layer.features {
        for kv in f.tags.chunks_exact(2) {
            key_uses[kv[0] as usize] += 1;
            value_uses[kv[1] as usize] += 1;
            let k = &mut value_key[kv[1] as usize];
            *k = (*k).min(kv[0]);
        }
    }
    let key_map = permute(&mut layer.keys, |i| (std::cmp::Reverse(key_uses[i]), 0, i));
    let value_map = permute(&mut layer.values, |i| (std::cmp::Reverse(value_uses[i]), value_key[i], i));
    for f in &mut layer.features {
        for kv in f.tags.chunks_exact_mut(2) {
            kv[0] = key_map[kv[0] as usize];
            kv[1] = value_map[kv[1] as usize];
        }
    }
}

/// Sorts `items` by `rank` of their index and returns old index → new index.
fn permute<T: Default, R: Ord>(items: &mut Vec<T>, rank: impl Fn(usize) -> R) -> Vec<u32> {
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by_key(|&i| rank(i));
    let mut map = vec![0u32; items.len()];
    let mut old = std::mem::take(items);
    items.reserve_exact(old.len());
    for (new, &i) in order.iter().enumerate() {
        map[i] = new as u32;
        items.push(std::mem::take(&mut old[i]));
    }
    map
}

#[inline]
fn snap(p: Pt) -> (i32, i32) {
    (p.0.round() as i32, p.1.round() as i32)
}

/// Snaps to the grid, dropping repeated points.
fn snap_all(pts: &[Pt]) -> Vec<(i32, i32)> {
    let mut out: Vec<(i32, i32)> = Vec::with_capacity(pts.len());
    for p in pts {
        let q = snap(*p);
        if out.last() != Some(&q) {
            out.push(q);
        }
    }
    out
}

/// Like [`snap_all`] for an open ring: also drops a last point equal to the first.
fn snap_ring(pts: &[Pt]) -> Vec<(i32, i32)> {
    let mut out = snap_all(pts);
    while out.len() > 1 && out.first() == out.last() {
        out.pop();
    }
    out
}

fn simplify(pts: &[Pt], tolerance: f64) -> Vec<Pt> {
    if tolerance <= 0.0 || pts.len() <= 2 {
        return pts.to_vec();
    }
    let ls: geo::LineString<f64> = pts.iter().map(|&(x, y)| geo::coord! { x: x, y: y }).collect();
    ls.simplify_idx(tolerance).into_iter().map(|i| pts[i]).collect()
}

/// Simplifies an open ring (closing it for Douglas–Peucker, which keeps both ends).
fn simplify_ring(pts: &[Pt], tolerance: f64) -> Vec<Pt> {
    if tolerance <= 0.0 || pts.len() <= 3 {
        return pts.to_vec();
    }
    let mut closed = pts.to_vec();
    closed.push(pts[0]);
    let mut s = simplify(&closed, tolerance);
    s.pop();
    s
}

/// Twice the signed area (surveyor's formula) in tile units.
fn area2(r: &[(i32, i32)]) -> i64 {
    let mut a = 0i64;
    for i in 0..r.len() {
        let (p, q) = (r[i], r[(i + 1) % r.len()]);
        a += i64::from(p.0) * i64::from(q.1) - i64::from(q.0) * i64::from(p.1);
    }
    a
}

/// The command stream of one feature, with the cursor carried across parts.
#[derive(Debug, Default)]
struct Commands {
    out: Vec<u32>,
    cursor: (i32, i32),
    points: Vec<(i32, i32)>,
}

impl Commands {
    fn delta(&mut self, p: (i32, i32)) {
        self.out.push(zigzag(p.0 - self.cursor.0));
        self.out.push(zigzag(p.1 - self.cursor.1));
        self.cursor = p;
    }

    fn point(&mut self, p: (i32, i32)) {
        self.points.push(p);
    }

    /// Points of a (multi)point feature go in one MoveTo with a count.
    fn finish_points(&mut self) {
        if self.points.is_empty() {
            return;
        }
        let pts = std::mem::take(&mut self.points);
        self.out.push(command(MOVE_TO, pts.len() as u32));
        for p in pts {
            self.delta(p);
        }
    }

    fn line(&mut self, pts: &[(i32, i32)]) {
        self.out.push(command(MOVE_TO, 1));
        self.delta(pts[0]);
        self.out.push(command(LINE_TO, (pts.len() - 1) as u32));
        for p in &pts[1..] {
            self.delta(*p);
        }
    }

    fn ring(&mut self, pts: &[(i32, i32)]) {
        self.line(pts);
        self.out.push(command(CLOSE_PATH, 1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{DecodedGeometry, decode_tile};
    use crate::tms::{TileId, TileMatrixSet};

    /// A projector where lon/lat are (nearly) tile units: CGCS2000Quad zoom 0, tile (1, 0) spans
    /// lon 0..180, lat 90..-90, so 4096 units = 180°.
    fn proj() -> TileProjector {
        TileMatrixSet::Cgcs2000Quad.projector(TileId { z: 0, x: 1, y: 0 }, 4096)
    }

    /// lon/lat of tile units (x, y) in [`proj`]'s tile.
    fn at(x: f64, y: f64) -> Coord {
        Coord::xy(x * 180.0 / 4096.0, 90.0 - y * 180.0 / 4096.0)
    }

    fn one(g: &Geometry, opts: EncodeOptions) -> Option<DecodedGeometry> {
        let mut b = LayerBuilder::new("t", opts);
        let name = Value::Text("井盖".into());
        let depth = Value::Real(1.5);
        if !b.add(g, &proj(), Some(7), [("名称", &name), ("depth", &depth), ("gone", &Value::Null)]) {
            return None;
        }
        let tile = decode_tile(&b.into_tile_bytes()).unwrap();
        assert_eq!(tile.len(), 1);
        let f = &tile[0].features[0];
        assert_eq!(f.id, Some(7));
        assert_eq!(f.properties.len(), 2, "null skipped");
        assert_eq!(f.properties[0], ("名称".to_owned(), Value::Text("井盖".into())));
        Some(f.geometry.clone())
    }

    fn check(g: Geometry, expected: Option<DecodedGeometry>) {
        assert_eq!(one(&g, EncodeOptions::default()), expected, "{g:?}");
    }

    #[test]
    fn geometries() {
        use DecodedGeometry as D;
        check(Geometry::Point(at(100.0, 200.0)), Some(D::Points(vec![(100, 200)])));
        check(Geometry::Point(at(-30.0, 4100.0)), Some(D::Points(vec![(-30, 4100)])));
        check(Geometry::Point(at(-100.0, 200.0)), None);
        check(
            Geometry::MultiPoint(vec![at(1.0, 2.0), at(5000.0, 5.0), at(3.0, 4.0)]),
            Some(D::Points(vec![(1, 2), (3, 4)])),
        );
        check(
            Geometry::LineString(vec![at(10.0, 10.0), at(10.0, 5000.0)]),
            Some(D::Lines(vec![vec![(10, 10), (10, 4160)]])),
        );
        // Out, in, out again: clipped into two parts of one feature.
        check(
            Geometry::LineString(vec![at(10.0, 10.0), at(10.0, 5000.0), at(20.0, 5000.0), at(20.0, 10.0)]),
            Some(D::Lines(vec![vec![(10, 10), (10, 4160)], vec![(20, 4160), (20, 10)]])),
        );
        // A ring given counter-clockwise in lon/lat becomes a positive-area exterior; its hole
        // negative.
        let ring = |pts: &[(f64, f64)]| pts.iter().map(|&(x, y)| at(x, y)).collect::<Vec<_>>();
        let outer = ring(&[(0.0, 100.0), (100.0, 100.0), (100.0, 0.0), (0.0, 0.0), (0.0, 100.0)]);
        let hole = ring(&[(10.0, 10.0), (20.0, 10.0), (20.0, 20.0), (10.0, 20.0), (10.0, 10.0)]);
        let Some(D::Polygons(rings)) = one(&Geometry::Polygon(vec![outer.clone(), hole]), EncodeOptions::default())
        else {
            panic!("no polygon")
        };
        assert_eq!(rings.len(), 2);
        assert!(area2(&rings[0]) > 0 && area2(&rings[1]) < 0, "{rings:?}");
        // Smaller than a grid cell: gone.
        check(Geometry::Polygon(vec![ring(&[(1.0, 1.0), (1.2, 1.0), (1.2, 1.2), (1.0, 1.0)])]), None);
        // Far outside: gone.
        check(Geometry::Polygon(vec![ring(&[(6000.0, 1.0), (7000.0, 1.0), (7000.0, 9.0), (6000.0, 1.0)])]), None);
    }

    #[test]
    fn simplification_follows_the_zoom_policy() {
        // A line with a 0.4-unit wiggle: gone with tolerance 1, kept with tolerance 0 (and
        // snapping then keeps whatever survives the grid).
        let wiggly: Vec<Coord> = (0..=100).map(|i| at(f64::from(i) * 10.0, 500.0 + f64::from(i % 2) * 0.4)).collect();
        let g = Geometry::LineString(wiggly);
        let Some(DecodedGeometry::Lines(l)) = one(&g, EncodeOptions::for_zoom(10)) else { panic!() };
        assert_eq!(l[0].len(), 2);
        let Some(DecodedGeometry::Lines(l)) = one(&g, EncodeOptions::for_zoom(18)) else { panic!() };
        assert_eq!(l[0].len(), 101);
    }

    #[test]
    fn thinning_keeps_one_point_per_cell() {
        let mut b = LayerBuilder::new("t", EncodeOptions { thin_points: Some(8), ..EncodeOptions::default() });
        let mut kept = 0;
        for i in 0..64 {
            let g = Geometry::Point(at(96.0 + f64::from(i % 8) * 0.5, 96.0 + f64::from(i / 8) * 0.5));
            kept += usize::from(b.add(&g, &proj(), None, []));
        }
        assert_eq!(kept, 1);
        assert!(b.add(&Geometry::Point(at(200.0, 200.0)), &proj(), None, []));
    }

    #[test]
    fn values_are_shared() {
        let mut b = LayerBuilder::new("t", EncodeOptions::default());
        let v = [Value::Text("铸铁".into()), Value::Integer(-3), Value::Integer(3), Value::Bool(true)];
        for i in 0..10 {
            let g = Geometry::Point(at(f64::from(i), 1.0));
            b.add(&g, &proj(), None, [("material", &v[0]), ("n", &v[1]), ("m", &v[2]), ("ok", &v[3])]);
        }
        let layer = b.into_layer();
        assert_eq!(layer.keys.len(), 4);
        assert_eq!(layer.values.len(), 4);
        assert_eq!(layer.features.len(), 10);
        assert_eq!(layer.values[1].sint_value, Some(-3));
        assert_eq!(layer.values[2].uint_value, Some(3));
    }

    #[test]
    fn shared_values_get_the_small_indexes() {
        // 300 features, each with a unique code and one of two materials: in first-seen order the
        // second material would get index 3; by use the two materials take indexes 0 and 1.
        let mats = [Value::Text("铸铁".into()), Value::Text("钢".into())];
        let mut b = LayerBuilder::new("t", EncodeOptions::default());
        let mut want = Vec::new();
        for i in 0..300 {
            let code = Value::Text(format!("JG-{i:05}"));
            let g = Geometry::Point(at(f64::from(i % 50), f64::from(i / 50)));
            assert!(b.add(&g, &proj(), None, [("code", &code), ("material", &mats[i as usize % 2])]));
            want.push(vec![("code".to_owned(), code.clone()), ("material".to_owned(), mats[i as usize % 2].clone())]);
        }
        let layer = b.into_layer();
        assert_eq!(layer.keys.len(), 2);
        let mut idx: Vec<&str> = layer.values[..2].iter().filter_map(|v| v.string_value.as_deref()).collect();
        idx.sort_unstable();
        assert_eq!(idx, ["钢", "铸铁"]);
        assert!(layer.features.iter().all(|f| f.tags[3] < 2), "materials take indexes 0 and 1");
        let bytes = mvt::Tile { layers: vec![layer] }.encode_to_vec();
        let got: Vec<_> = decode_tile(&bytes).unwrap()[0].features.iter().map(|f| f.properties.clone()).collect();
        assert_eq!(got, want, "same properties, same order, after the reordering");
    }

    #[test]
    fn empty_layer_is_no_bytes() {
        assert!(LayerBuilder::new("t", EncodeOptions::default()).into_tile_bytes().is_empty());
    }

    proptest::proptest! {
        #[test]
        fn polygons_keep_their_orientation_rules_and_stay_in_the_buffer(
            pts in proptest::collection::vec((-3000.0f64..7000.0, -3000.0f64..7000.0), 3..12)
        ) {
            let mut ring: Vec<Coord> = pts.iter().map(|&(x, y)| at(x, y)).collect();
            ring.push(ring[0]);
            let g = Geometry::Polygon(vec![ring]);
            if let Some(DecodedGeometry::Polygons(rings)) = one(&g, EncodeOptions::default()) {
                proptest::prop_assert!(area2(&rings[0]) > 0);
                for r in &rings {
                    for p in r {
                        proptest::prop_assert!((-64..=4160).contains(&p.0) && (-64..=4160).contains(&p.1), "{p:?}");
                    }
                }
            }
        }
    }
}

//! The boolean overlays: pairwise intersection / union / difference, and the layer operations
//! built on them (clip, erase, intersect two layers, dissolve, union of a layer).
//!
//! Why the fill rule: every polygon is first oriented (exterior counter-clockwise, holes
//! clockwise) and the operations count windings with the non-zero rule, so a MultiPolygon whose
//! parts overlap (common in digitised data, invalid by the OGC rules) counts its overlap once
//! instead of cutting it out, as the even-odd rule would.

use std::collections::HashMap;
use std::hash::Hash;

use geo::algorithm::bool_ops::FillRule as GeoFillRule;
use geo::orient::{Direction, Orient};
use geo::{BooleanOps, BoundingRect, Intersects, LineString, MultiLineString, MultiPolygon, Polygon, Rect};
use i_overlay::core::fill_rule::FillRule;
use i_overlay::core::overlay_rule::OverlayRule;
use i_overlay::float::overlay::{FloatOverlay, OverlayOptions};
use rayon::prelude::*;
use rstar::{AABB, RTree, primitives::GeomWithData, primitives::Rectangle};
use shikong_model::{Coord, Geometry};

use super::{Areal, areal, check_layer, limits, polygonal};
use crate::error::{AnalysisError, Result};
use crate::geodesic::geodesic_m;

/// An oriented polygonal input.
fn oriented(what: &'static str, index: usize, g: &Geometry) -> Result<MultiPolygon<f64>> {
    Ok(polygonal(what, index, g)?.orient(Direction::Default))
}

/// i_overlay's options: OGC-valid output (holes touching the shell at a point split off as the
/// OGC rules want), and every vertex kept, collinear or not. Areas are geodesic, and a straight
/// lon/lat edge through a vertex is two geodesics, not one: dropping the vertex would move the
/// boundary (by 10 cm at the middle of a 3 km east-west edge at 30°N), so `A ∩ A` would not have
/// the area of `A`, nor agree with PostGIS, which keeps input vertices.
fn options() -> OverlayOptions<f64> {
    OverlayOptions { preserve_input_collinear: true, preserve_output_collinear: true, ..OverlayOptions::ogc() }
}

/// The rings of polygons as i_overlay paths (implicitly closed: the repeated point is left out).
fn paths<'a>(polys: impl IntoIterator<Item = &'a Polygon<f64>>) -> Vec<Vec<[f64; 2]>> {
    polys
        .into_iter()
        .flat_map(|p| std::iter::once(p.exterior()).chain(p.interiors()))
        .filter(|r| r.0.len() >= 4)
        .map(|r| r.0[..r.0.len() - 1].iter().map(|c| [c.x, c.y]).collect())
        .collect()
}

fn from_shapes(shapes: Vec<Vec<Vec<[f64; 2]>>>) -> MultiPolygon<f64> {
    let ring = |path: Vec<[f64; 2]>| {
        let mut l = LineString(path.into_iter().map(|[x, y]| geo::coord! { x: x, y: y }).collect());
        l.close();
        l
    };
    MultiPolygon(
        shapes
            .into_iter()
            .filter(|s| !s.is_empty())
            .map(|s| {
                let mut rings = s.into_iter().map(ring);
                let outer = rings.next().unwrap_or_else(|| LineString(vec![]));
                Polygon::new(outer, rings.collect())
            })
            .collect(),
    )
}

/// One boolean operation. Inputs are oriented, so the non-zero rule counts overlapping parts of
/// a MultiPolygon once.
fn op(a: &MultiPolygon<f64>, b: &MultiPolygon<f64>, rule: OverlayRule) -> MultiPolygon<f64> {
    let shapes = FloatOverlay::with_subj_and_clip_custom(&paths(&a.0), &paths(&b.0), options(), Default::default())
        .overlay(rule, FillRule::NonZero);
    from_shapes(shapes)
}

/// The union of many oriented polygons in one sweep.
pub(crate) fn union_of<'a>(parts: impl IntoIterator<Item = &'a MultiPolygon<f64>>) -> MultiPolygon<f64> {
    let subject = paths(parts.into_iter().flat_map(|m| m.0.iter()));
    let shapes = FloatOverlay::with_subj_custom(&subject, options(), Default::default())
        .overlay(OverlayRule::Subject, FillRule::NonZero);
    from_shapes(shapes)
}

fn pairwise(a: &Geometry, b: &Geometry, kind: OverlayRule) -> Result<Option<Areal>> {
    let mut vertices = 0;
    check_layer("geometry a", std::slice::from_ref(a), &mut vertices)?;
    check_layer("geometry b", std::slice::from_ref(b), &mut vertices)?;
    let (a, b) = (oriented("geometry a", 0, a)?, oriented("geometry b", 0, b)?);
    Ok(areal(op(&a, &b, kind)))
}

/// The part of `a` inside `b` (PostGIS `ST_Intersection`), `None` when they do not overlap.
pub fn intersection(a: &Geometry, b: &Geometry) -> Result<Option<Areal>> {
    pairwise(a, b, OverlayRule::Intersect)
}

/// `a` and `b` together (PostGIS `ST_Union(a, b)`).
pub fn union(a: &Geometry, b: &Geometry) -> Result<Option<Areal>> {
    pairwise(a, b, OverlayRule::Union)
}

/// The part of `a` outside `b` (PostGIS `ST_Difference`), `None` when `b` covers `a`.
pub fn difference(a: &Geometry, b: &Geometry) -> Result<Option<Areal>> {
    pairwise(a, b, OverlayRule::Difference)
}

fn oriented_layer(what: &'static str, layer: &[Geometry]) -> Result<Vec<MultiPolygon<f64>>> {
    layer.iter().enumerate().map(|(i, g)| oriented(what, i, g)).collect()
}

/// All polygons of a layer merged (PostGIS `ST_Union` as an aggregate), `None` for an empty
/// layer.
pub fn union_all(layer: &[Geometry]) -> Result<Option<Areal>> {
    check_layer("feature", layer, &mut 0)?;
    let polys = oriented_layer("feature", layer)?;
    Ok(areal(union_of(&polys)))
}

/// One group of [`dissolve`].
#[derive(Debug, Clone, PartialEq)]
pub struct Dissolved<K> {
    pub key: K,
    /// Indices of the features merged, ascending.
    pub members: Vec<usize>,
    pub result: Areal,
}

/// The union of the polygons sharing a key (`keys[i]` is feature `i`'s), one result per key in
/// the order keys first appear; a group whose union is empty (only degenerate polygons) is left
/// out.
pub fn dissolve<K>(layer: &[Geometry], keys: &[K]) -> Result<Vec<Dissolved<K>>>
where
    K: Eq + Hash + Clone + Send + Sync,
{
    if keys.len() != layer.len() {
        return Err(AnalysisError::LengthMismatch { what: "dissolve keys", got: keys.len(), expected: layer.len() });
    }
    check_layer("feature", layer, &mut 0)?;
    let polys = oriented_layer("feature", layer)?;
    let mut slot: HashMap<&K, usize> = HashMap::new();
    let mut groups: Vec<(K, Vec<usize>)> = Vec::new();
    for (i, k) in keys.iter().enumerate() {
        let g = *slot.entry(k).or_insert_with(|| {
            groups.push((k.clone(), Vec::new()));
            groups.len() - 1
        });
        groups[g].1.push(i);
    }
    let merged: Vec<Option<Areal>> =
        groups.par_iter().map(|(_, members)| areal(union_of(members.iter().map(|&i| &polys[i])))).collect();
    Ok(groups
        .into_iter()
        .zip(merged)
        .filter_map(|((key, members), r)| r.map(|result| Dissolved { key, members, result }))
        .collect())
}

/// A feature of [`clip`] or [`erase`]: what remains of feature `index`, with its measures.
#[derive(Debug, Clone, PartialEq)]
pub struct Clipped {
    /// The feature's index in its layer (its attributes stay with the caller).
    pub index: usize,
    /// MultiPolygon for polygons, MultiLineString for lines, Point / MultiPoint for points.
    pub geometry: Geometry,
    /// Geodesic area (polygons), m²; 0 otherwise.
    pub area_m2: f64,
    /// Area of each polygon of `geometry`, m² (empty for lines and points).
    pub part_areas_m2: Vec<f64>,
    /// Geodesic length (lines), m; 0 otherwise.
    pub length_m: f64,
}

impl Clipped {
    fn areal(index: usize, a: Areal) -> Self {
        Clipped { index, geometry: a.geometry, area_m2: a.area_m2, part_areas_m2: a.part_areas_m2, length_m: 0.0 }
    }
}

/// The features of `layer` cut to the polygons of `mask` (PostGIS `ST_Intersection` with the
/// union of the mask): polygons, lines and points; features left with nothing are left out.
pub fn clip(layer: &[Geometry], mask: &[Geometry]) -> Result<Vec<Clipped>> {
    cut(layer, mask, false)
}

/// The features of `layer` with the polygons of `mask` cut away (PostGIS `ST_Difference` with the
/// union of the mask); features left with nothing are left out.
pub fn erase(layer: &[Geometry], mask: &[Geometry]) -> Result<Vec<Clipped>> {
    cut(layer, mask, true)
}

fn cut(layer: &[Geometry], mask: &[Geometry], outside: bool) -> Result<Vec<Clipped>> {
    let mut vertices = 0;
    check_layer("feature", layer, &mut vertices)?;
    check_layer("mask feature", mask, &mut vertices)?;
    let mask = oriented_layer("mask feature", mask)?;
    let tree = envelope_tree(&mask);
    let cut_one = |(index, g): (usize, &Geometry)| -> Result<Option<Clipped>> {
        // The mask polygons near the feature, in one boolean operation with it (not a union of
        // the mask first): each operation snaps to its own grid, and snapping twice would leave
        // slivers where the feature and the mask share edges.
        let near: Vec<_> = envelope(g)
            .map(|e| {
                tree.locate_in_envelope_intersecting(aabb(&e)).flat_map(|r| mask[r.data].0.iter().cloned()).collect()
            })
            .unwrap_or_default();
        let apart = near.is_empty();
        let mask = MultiPolygon(near);
        match g {
            Geometry::Polygon(_) | Geometry::MultiPolygon(_) => {
                let a = oriented("feature", index, g)?;
                let out = match (apart, outside) {
                    (true, false) => return Ok(None),
                    (true, true) => a,
                    (false, _) => op(&a, &mask, if outside { OverlayRule::Difference } else { OverlayRule::Intersect }),
                };
                Ok(areal(out).map(|r| Clipped::areal(index, r)))
            }
            Geometry::LineString(_) | Geometry::MultiLineString(_) => {
                let lines: MultiLineString<f64> = match g.to_geo() {
                    geo::Geometry::LineString(l) => MultiLineString(vec![l]),
                    geo::Geometry::MultiLineString(m) => m,
                    _ => unreachable!("matched a linear geometry"),
                };
                let kept = match (apart, outside) {
                    (true, false) => return Ok(None),
                    (true, true) => lines,
                    (false, _) => mask.clip_with_fill_rule(&lines, outside, GeoFillRule::NonZero),
                };
                let parts: Vec<Vec<Coord>> = kept
                    .0
                    .iter()
                    .filter(|l| l.0.len() >= 2)
                    .map(|l| l.0.iter().map(|c| Coord::xy(c.x, c.y)).collect())
                    .collect();
                if parts.is_empty() {
                    return Ok(None);
                }
                let length_m = parts
                    .iter()
                    .flat_map(|l| l.windows(2))
                    .map(|w| geodesic_m([w[0].x, w[0].y], [w[1].x, w[1].y]))
                    .sum();
                let geometry = Geometry::MultiLineString(parts);
                Ok(Some(Clipped { index, geometry, area_m2: 0.0, part_areas_m2: Vec::new(), length_m }))
            }
            Geometry::Point(_) | Geometry::MultiPoint(_) => {
                let pts: Vec<Coord> = match g {
                    Geometry::Point(c) => vec![*c],
                    Geometry::MultiPoint(cs) => cs.clone(),
                    _ => unreachable!("matched a point geometry"),
                };
                // A point on the mask's boundary counts as inside, as in ST_Intersects.
                let kept: Vec<Coord> = pts
                    .into_iter()
                    .filter(|c| (!apart && mask.intersects(&geo::Point::new(c.x, c.y))) != outside)
                    .map(|c| Coord::xy(c.x, c.y))
                    .collect();
                let geometry = match (g, kept.len()) {
                    (_, 0) => return Ok(None),
                    (Geometry::Point(_), _) => Geometry::Point(kept[0]),
                    _ => Geometry::MultiPoint(kept),
                };
                Ok(Some(Clipped { index, geometry, area_m2: 0.0, part_areas_m2: Vec::new(), length_m: 0.0 }))
            }
        }
    };
    let out: Vec<Option<Clipped>> = layer.par_iter().enumerate().map(cut_one).collect::<Result<_>>()?;
    Ok(out.into_iter().flatten().collect())
}

fn envelope(g: &Geometry) -> Option<Rect<f64>> {
    g.bbox().map(|b| Rect::new(geo::coord! { x: b.min_x, y: b.min_y }, geo::coord! { x: b.max_x, y: b.max_y }))
}

fn aabb(r: &Rect<f64>) -> AABB<[f64; 2]> {
    AABB::from_corners([r.min().x, r.min().y], [r.max().x, r.max().y])
}

/// An R-tree of the polygons' envelopes, each carrying its index.
fn envelope_tree(polys: &[MultiPolygon<f64>]) -> RTree<GeomWithData<Rectangle<[f64; 2]>, usize>> {
    let boxes = polys
        .iter()
        .enumerate()
        .filter_map(|(j, p)| {
            let r = p.bounding_rect()?;
            Some(GeomWithData::new(Rectangle::from_corners([r.min().x, r.min().y], [r.max().x, r.max().y]), j))
        })
        .collect();
    RTree::bulk_load(boxes)
}

/// One overlapping pair of [`intersect_layers`].
#[derive(Debug, Clone, PartialEq)]
pub struct Intersected {
    /// Index of the feature in layer a.
    pub a: usize,
    /// Index of the feature in layer b.
    pub b: usize,
    pub result: Areal,
}

/// Every pair of polygons, one from each layer, that overlap with positive area, and their
/// intersection (ArcGIS "Intersect", the PostGIS join `ST_Intersection(a.geom, b.geom) … WHERE
/// ST_Intersects`), ordered by `a` then `b`. The candidate pairs come from an R-tree on the
/// envelopes of layer b; more than [`limits::MAX_PAIRS`] of them is refused before any is
/// computed.
pub fn intersect_layers(a: &[Geometry], b: &[Geometry]) -> Result<Vec<Intersected>> {
    let mut vertices = 0;
    check_layer("layer a feature", a, &mut vertices)?;
    check_layer("layer b feature", b, &mut vertices)?;
    let pa = oriented_layer("layer a feature", a)?;
    let pb = oriented_layer("layer b feature", b)?;
    let tree = envelope_tree(&pb);
    let mut pairs: Vec<(usize, usize)> = Vec::new();
    for (i, g) in a.iter().enumerate() {
        let Some(e) = envelope(g) else { continue };
        let first = pairs.len();
        pairs.extend(tree.locate_in_envelope_intersecting(aabb(&e)).map(|r| (i, r.data)));
        pairs[first..].sort_unstable();
        if pairs.len() > limits::MAX_PAIRS {
            return Err(AnalysisError::TooMany {
                what: "feature pairs with overlapping envelopes",
                got: pairs.len(),
                limit: "overlay::limits::MAX_PAIRS",
                max: limits::MAX_PAIRS,
            });
        }
    }
    let results: Vec<Option<Intersected>> =
        pairs
            .par_iter()
            .map(|&(i, j)| {
                areal(op(&pa[i], &pb[j], OverlayRule::Intersect))
                    .filter(|r| r.area_m2 > 0.0)
                    .map(|result| Intersected { a: i, b: j, result })
            })
            .collect();
    Ok(results.into_iter().flatten().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn square(x: f64, y: f64, s: f64) -> Vec<Vec<Coord>> {
        vec![vec![Coord::xy(x, y), Coord::xy(x + s, y), Coord::xy(x + s, y + s), Coord::xy(x, y + s), Coord::xy(x, y)]]
    }

    #[test]
    fn overlapping_parts_of_a_multipolygon_count_once() {
        let (a, b) = (square(114.30, 30.50, 0.01), square(114.305, 30.505, 0.01));
        let both = Geometry::MultiPolygon(vec![a.clone(), b.clone()]);
        let merged = union_all(&[Geometry::Polygon(a), Geometry::Polygon(b)]).unwrap().unwrap();
        let own = intersection(&both, &both).unwrap().unwrap();
        assert!((own.area_m2 - merged.area_m2).abs() <= 1e-9 * merged.area_m2, "{} {}", own.area_m2, merged.area_m2);
        assert_eq!(own.part_areas_m2.len(), 1);
    }

    #[test]
    fn intersection_with_itself_keeps_the_area_of_collinear_vertices() {
        // Vertices in the middle of east-west edges: as geodesics, the edges bend there.
        let ring =
            [(114.30, 30.50), (114.32, 30.50), (114.34, 30.50), (114.34, 30.52), (114.30, 30.52), (114.30, 30.50)];
        let g = Geometry::Polygon(vec![ring.iter().map(|&(x, y)| Coord::xy(x, y)).collect()]);
        let m = shikong_geodesy::measure_geodesic(&g).unwrap();
        let r = intersection(&g, &g).unwrap().unwrap();
        assert!((r.area_m2 - m.area_m2).abs() <= 1e-9 * m.area_m2, "{} vs {}", r.area_m2, m.area_m2);
    }

    #[test]
    fn clip_and_erase_lines_and_points_keep_indices() {
        let mask = [Geometry::Polygon(square(114.30, 30.50, 0.01))];
        let layer = [
            Geometry::Point(Coord::xy(114.305, 30.505)),
            Geometry::Point(Coord::xy(114.5, 30.5)),
            Geometry::LineString(vec![Coord::xy(114.29, 30.505), Coord::xy(114.32, 30.505)]),
            Geometry::MultiPoint(vec![Coord::xy(114.305, 30.505), Coord::xy(114.6, 30.5)]),
        ];
        let c = clip(&layer, &mask).unwrap();
        assert_eq!(c.iter().map(|x| x.index).collect::<Vec<_>>(), [0, 2, 3]);
        assert_eq!(c[2].geometry, Geometry::MultiPoint(vec![Coord::xy(114.305, 30.505)]));
        let inside = geodesic_m([114.30, 30.505], [114.31, 30.505]);
        assert!((c[1].length_m - inside).abs() < 1e-6, "{} vs {inside}", c[1].length_m);
        let e = erase(&layer, &mask).unwrap();
        assert_eq!(e.iter().map(|x| x.index).collect::<Vec<_>>(), [1, 2, 3]);
        let total = geodesic_m([114.29, 30.505], [114.32, 30.505]);
        // The three pieces are three geodesics, a hair longer than one geodesic over the whole
        // east-west line (which bends 10 cm north of the parallel at its middle).
        let pieces = e[1].length_m + c[1].length_m;
        assert!((0.0..1e-3).contains(&(pieces - total)), "{pieces} vs {total}");
    }

    #[test]
    fn bounds_and_mismatches_are_named() {
        let many = vec![Geometry::Point(Coord::xy(114.3, 30.5)); limits::MAX_FEATURES + 1];
        let e = union_all(&many).unwrap_err().to_string();
        assert!(e.contains("MAX_FEATURES"), "{e}");
        let one = [Geometry::Polygon(square(114.30, 30.50, 0.01))];
        let e = dissolve(&one, &["a", "b"]).unwrap_err().to_string();
        assert_eq!(e, "dissolve keys has 2 entries but there are 1 units");
        let e = intersection(&one[0], &Geometry::Point(Coord::xy(114.3, 30.5))).unwrap_err().to_string();
        assert_eq!(e, "geometry b 0: is a Point, and this operation needs polygons");
    }
}

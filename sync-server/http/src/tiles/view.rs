//! Where a generated style (and so the web map `/map`) opens: on the data a person came for, not
//! on the centre of every layer's union extent.
//!
//! A deployment keeps the city's assets next to reference layers of a whole province or country
//! (China's administrative divisions, a national road network, the gazetteer). The union of all
//! extents is centred between them — in Sichuan for the demo, whose divisions cover all of China
//! while its assets cover a district of Wuhan — and a map opened there at street zoom shows
//! nothing. So the layers are grouped by scale: sorted by the longer side of their extents
//! (at least [`MIN_SIDE`]), they are split at the first jump between neighbours of at least
//! [`REFERENCE_GAP`]-fold above a layer larger than a point; the larger group are reference layers
//! (a city's district boundaries, a country's divisions) and do not pull the start view, which is
//! the union of the smaller group. A layer with one stray far-away feature
//! has a continent-sized extent and falls into the reference group the same way. Layers of one
//! scale (one city, or one country) are all kept.
//!
//! The zoom fits that extent into a typical window ([`fit_zoom`]); `/map` fits it to the real
//! window from the style's `shikong:bounds`. Pure functions: the style code feeds the extents in.

use shikong_model::Bbox;

/// The smallest side an extent counts with (degrees, about 5 km): a layer of one point or one
/// street does not make every district-sized layer look like a reference layer.
pub(super) const MIN_SIDE: f64 = 0.05;

/// How many times longer the next layer's extent must be for it (and every larger one) to count
/// as a reference layer.
pub(super) const REFERENCE_GAP: f64 = 10.0;

fn side(b: &Bbox) -> f64 {
    (b.max_x - b.min_x).max(b.max_y - b.min_y).max(MIN_SIDE)
}

/// The start view of named extents: (the union of the focus layers' extents, the names of the
/// reference layers left out). `None` when no layer has an extent.
pub(super) fn focus<'a>(extents: &[(&'a str, Bbox)]) -> Option<(Bbox, Vec<&'a str>)> {
    let mut sorted: Vec<(f64, &'a str, Bbox)> = extents.iter().map(|(n, b)| (side(b), *n, *b)).collect();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
    // The first jump between neighbours of at least REFERENCE_GAP (index of the first layer above
    // it) that has a layer larger than a point below it: the smallest scale of real data is what
    // a person came for (a district's assets under a city's boundaries under a country's
    // divisions), and a layer of one point alone is not that scale.
    let cut = sorted
        .windows(2)
        .enumerate()
        .find(|(i, w)| w[1].0 / w[0].0 >= REFERENCE_GAP && sorted[..=*i].iter().any(|(s, _, _)| *s > MIN_SIDE))
        .map_or(sorted.len(), |(i, _)| i + 1);
    let view = sorted[..cut].iter().map(|(_, _, b)| *b).reduce(|a, b| a.union(&b))?;
    let mut reference: Vec<&str> = sorted[cut..].iter().map(|(_, n, _)| *n).collect();
    reference.sort_unstable();
    Some((view, reference))
}

/// Web Mercator y of a latitude, as a fraction of the world's height (0 at the equator).
fn mercator_y(lat: f64) -> f64 {
    let l = lat.clamp(-85.051_128, 85.051_128).to_radians();
    (std::f64::consts::FRAC_PI_4 + l / 2.0).tan().ln() / (2.0 * std::f64::consts::PI)
}

/// The zoom (MapLibre's 512-pixel world) at which `b` fits `width × height` pixels, to 0.1,
/// between 1 and 16 (a single point opens at 16, not at the deepest zoom).
pub(super) fn fit_zoom(b: &Bbox, width: f64, height: f64) -> f64 {
    let dx = ((b.max_x - b.min_x) / 360.0).max(1e-9);
    let dy = (mercator_y(b.max_y) - mercator_y(b.min_y)).max(1e-9);
    let z = (width / 512.0 / dx).log2().min((height / 512.0 / dy).log2());
    ((z * 10.0).floor() / 10.0).clamp(1.0, 16.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(x0: f64, y0: f64, x1: f64, y1: f64) -> Bbox {
        Bbox::new(x0, y0, x1, y1).unwrap()
    }

    const CHINA: [f64; 4] = [73.5, 18.2, 134.8, 53.5];

    #[test]
    fn country_wide_reference_layers_do_not_pull_the_view() {
        let manhole = b(114.28, 30.45, 114.40, 30.55);
        let road = b(114.31, 30.48, 114.37, 30.52);
        let poi = b(114.366, 30.505, 114.414, 30.563);
        let [x0, y0, x1, y1] = CHINA;
        let layers = [("division", b(x0, y0, x1, y1)), ("manhole", manhole), ("road", road), ("poi", poi)];
        let (view, reference) = focus(&layers).unwrap();
        assert_eq!(reference, ["division"]);
        assert_eq!(view, manhole.union(&road).union(&poi));
        let z = fit_zoom(&view, 960.0, 700.0);
        assert!((11.0..=13.0).contains(&z), "{z}");
    }

    #[test]
    fn a_city_s_boundaries_and_a_country_s_divisions_both_stay_out() {
        let manhole = b(114.28, 30.45, 114.40, 30.55);
        let poi = b(114.366, 30.505, 114.414, 30.563);
        let districts = b(113.70, 29.97, 115.08, 31.36);
        let [x0, y0, x1, y1] = CHINA;
        let layers = [("division", b(x0, y0, x1, y1)), ("district", districts), ("manhole", manhole), ("poi", poi)];
        let (view, reference) = focus(&layers).unwrap();
        assert_eq!(reference, ["district", "division"]);
        assert_eq!(view, manhole.union(&poi));
        // One point below city-wide layers is not the scale a person came for.
        let one = b(114.41, 30.51, 114.41, 30.51);
        let (view, reference) = focus(&[("one", one), ("district", districts)]).unwrap();
        assert!(reference.is_empty());
        assert_eq!(view, one.union(&districts));
    }

    #[test]
    fn layers_of_one_scale_are_all_kept() {
        let a = b(114.30, 30.50, 114.34, 30.54);
        let c = b(114.33, 30.49, 114.38, 30.53);
        assert_eq!(focus(&[("a", a), ("c", c)]), Some((a.union(&c), vec![])));
        // One country-wide layer alone is the view (at a country's zoom).
        let [x0, y0, x1, y1] = CHINA;
        let (view, reference) = focus(&[("division", b(x0, y0, x1, y1))]).unwrap();
        assert!(reference.is_empty());
        assert!(fit_zoom(&view, 960.0, 700.0) < 5.0);
        assert_eq!(focus(&[]), None);
    }

    #[test]
    fn a_stray_feature_makes_a_layer_reference_and_single_points_are_not_outliers() {
        // A lamp layer with one feature typed in at (0, 0): its extent spans half the world.
        let lamps = b(0.0, 0.0, 114.40, 30.55);
        let manhole = b(114.28, 30.45, 114.40, 30.55);
        let one_poi = b(114.4136, 30.5128, 114.4136, 30.5128);
        let (view, reference) = focus(&[("lamp", lamps), ("manhole", manhole), ("poi", one_poi)]).unwrap();
        assert_eq!(reference, ["lamp"]);
        assert_eq!(view, manhole.union(&one_poi));
        // A single point opens at street zoom, not at the deepest one.
        assert_eq!(fit_zoom(&one_poi, 960.0, 700.0), 16.0);
    }
}

//! Integration tests of the geocoder: behaviour on a small hand-made gazetteer (records, versions,
//! snapshots, subsets, reverse, suggestions) and accuracy on the labelled test set built from the
//! real NBS division lists (see testdata/README.md).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod accuracy;
mod behaviour;

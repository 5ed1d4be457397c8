//! Where transaction time comes from: the workspace's one clock seam, defined in `shikong-model`
//! and re-exported here so store callers name `shikong_store::Clock` as before. Passed in, so
//! tests can make histories at chosen instants.

pub use shikong_model::clock::{Clock, FixedStepClock, SystemClock};

//! Where "now" comes from: the workspace's one clock seam, defined in `shikong-model` and
//! re-exported here so auth callers name `shikong_auth::Clock` as before. Passed in, so token
//! expiry and login lockout are tested at chosen instants instead of by sleeping.

pub use shikong_model::clock::{Clock, ManualClock, SystemClock};

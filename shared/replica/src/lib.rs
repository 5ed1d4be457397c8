//! Offline replicas (issue 5): a GeoPackage file the server cuts for a user's request (layers,
//! area), which GDAL and QGIS open as usual, and which the apps edit offline for days.
//!
//! One file holds, beside the feature tables (laid out like the central store's, so QGIS shows
//! them the same way): the layer schemas that drive forms, the entity documents of edited
//! features only (an unedited feature's document is the deterministic base of its row, derived
//! when needed — a replica of freshly imported data is a plain GeoPackage plus a few columns), the
//! queue of local changes (outbox), open conflicts, attachments with their evidence metadata, and
//! the sync cursor. The format is specified in `docs/replica-format.md`.
//!
//! - [`ReplicaWriter`] — the server writes a new replica (bulk load).
//! - [`Replica`] — the device: reads, validated edits ([`Replica::create_feature`],
//!   [`Replica::set_fields`], …, [`Replica::undo`], [`Replica::resolve`]), attachments, and the
//!   transport-free sync steps ([`Replica::push_batch`], [`Replica::apply_push_response`],
//!   [`Replica::apply_pull_page`]).
//!
//! Architecture invariant: file I/O only, no networking; the sync client moves bytes. Validation
//! is `shikong_model::feature::conform`, the server's own function; merging is `shikong_crdt`.
#![forbid(unsafe_code)]

mod attachments;
mod capture;
mod codec;
mod conflicts;
mod edit;
mod error;
mod format;
mod gazetteer;
mod replica;
mod resend;
mod sync;
mod table;
mod tasks;
mod verify;
mod writer;

pub use attachments::{AttachmentInfo, Evidence, MAX_ATTACHMENT_BYTES, sha256_hex};
pub use capture::{ExternalImport, RevertedEdit};
pub use edit::{NewFeature, RejectedChange};
pub use error::{ReplicaError, Result};
pub use format::{FORMAT_VERSION, ReplicaInfo, ReplicaLayer};
pub use gazetteer::GazetteerSnapshot;
pub use replica::{FeatureKey, LocalStatus, Replica, ReplicaFeature};
pub use shikong_crdt::{Actor, EditMeta, Resolved};
pub use sync::{PullSummary, PushSummary};
pub use tasks::{QueuedTaskAction, TaskActionStatus};
pub use writer::ReplicaWriter;

/// Every replica geometry is CGCS2000 longitude/latitude, as in the store.
pub const SRS_ID: i32 = 4490;

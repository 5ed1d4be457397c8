//! The typed contract of every JSON body besides the sync messages: what the server's handlers
//! write and what the clients read. Both sides use these types, so a field renamed on one side
//! fails to compile on the other instead of silently reading a default.
//!
//! One module per topic: [`auth`] (sign-in, accounts), [`layers`] (layer definitions, the
//! collection list), [`features`] (features sent and answered), [`geocode`] (the address
//! service), [`reports`] (citizens' reports), [`history`] (a feature's versions), [`packages`]
//! (offline tile packages), [`conflicts`] (conflict review), [`stats`] (layer statistics),
//! [`processes`] (OGC API – Processes: the analysis engine's processes and jobs),
//! [`problem`] (error answers).
//! Requests refuse unknown members where the server always did; answers accept them, so a later
//! server may add some. Each module pins its JSON with golden tests: a changed shape is a
//! deliberate, visible edit.

pub mod alerts;
pub mod auth;
pub mod calendar;
pub mod case_stats;
pub mod cases;
pub mod conflicts;
pub mod events;
pub mod features;
pub mod geocode;
pub mod harvest;
pub mod history;
pub mod items;
pub mod layers;
pub mod packages;
pub mod problem;
pub mod processes;
pub mod records;
pub mod reports;
pub mod sensors;
pub mod services;
pub mod stats;
pub mod system;
pub mod tasks;

pub use auth::{
    DeviceEntry, DeviceInfo, DeviceList, DeviceRegistered, EnrolRequest, EnrolResponse, EnrolmentCreated,
    EnrolmentRequest, LoginRequest, LoginResponse, MeResponse, NewUserRequest, QrCode, ReasonRequest,
    RegisterDeviceRequest, RegisterRequest, RegisterResponse, RoleRequest, RuleChanged, RuleInfo, RuleList,
    RuleRequest, TokenUser, UserChanged, UserInfo, UserList,
};
pub use events::LiveEvent;
pub use features::{Feature, FeatureCollectionType, FeatureProperties, FeatureType, NewFeature};
pub use geocode::{
    AddressComponents, AliasDoc, AliasList, BatchCreated, BatchJob, BatchState, DivisionCodes, DivisionLevel,
    GeocodeCandidate, GeocodeResponse, GeocodeStatus, MatchLevel, NearAddress, NearRoad, NoMatchReason, PlacePoint,
    PointSource, ReverseResponse, ReverseUnit, Suggestion, Suggestions, UnitBasis,
};
pub use history::{DeviceEdit, FeatureHistory, FieldChange, HistoryVersion, TxInfo, VersionOp};
pub use items::{FeaturePage, Queryable, Queryables};
pub use layers::{Collection, Collections, Extent, LayerDoc, Link, SpatialExtent, TemporalExtent, TxExtent};
pub use packages::{FeatureArea, PackageArea, PackageEstimate, PackageRequest};
pub use problem::Problem;
pub use reports::{MyReports, ReportFeature, ReportLayer, ReportLayers, ReportProperties, ReportStatus};
pub use sensors::{
    SensorState, Series, SeriesPoint, SeriesSource, StationCollection, StationFeature, StationProperties,
    StationReading,
};

#[cfg(test)]
pub(crate) use golden::golden;

#[cfg(test)]
mod golden {
    use std::fmt::Debug;

    use serde::Serialize;
    use serde::de::DeserializeOwned;

    /// Pins a type's JSON: `value` serializes to exactly `json` (members in this order; the
    /// literal may be spread over lines), and `json` parses back to `value`.
    #[track_caller]
    pub(crate) fn golden<T: Serialize + DeserializeOwned + PartialEq + Debug>(value: T, json: &str) {
        let expected: serde_json::Value = serde_json::from_str(json).expect("the golden JSON parses");
        assert_eq!(serde_json::to_string(&value).unwrap(), serde_json::to_string(&expected).unwrap());
        assert_eq!(serde_json::from_str::<T>(json).unwrap(), value);
    }
}

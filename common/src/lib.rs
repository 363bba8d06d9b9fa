//! Plumbing shared by every Floe role: the clock seam, object-store construction and
//! instrumentation, Prometheus metrics, the admin HTTP server and tracing set-up.
//! Kept deliberately small; anything role-specific lives in its role's crate.

pub mod admin;
pub mod clock;
pub mod imds;
pub mod metrics;
pub mod objects;
pub mod telemetry;

pub use clock::{Clock, SystemClock};
pub use metrics::Metrics;
pub use objects::{Listed, ObjectStoreUrl, Objects, ObjectsError};

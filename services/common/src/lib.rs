//! The Agora service kit: what every Agora service repeats, in one place.
//!
//! A service is a library crate that builds a [`server::Service`] (its routes, OpenAPI
//! document and readiness checks) from its configuration; this crate adds the rest:
//! configuration readers, structured logs, request ids, problem+json errors, JSON
//! extractors that refuse unknown fields, bearer-token verification, cursor
//! pagination, the PostgreSQL pool and migrations, and the operations endpoints.

pub mod accounts;
pub mod auth;
pub mod client;
pub mod client_addr;
pub mod config;
#[cfg(feature = "db")]
pub mod db;
pub mod extract;
#[cfg(feature = "db")]
pub mod foundation;
#[cfg(feature = "db")]
pub mod jobs;
pub mod metrics;
pub mod middleware;
pub mod notices;
pub mod openapi;
pub mod ops;
pub mod pagination;
pub mod photos;
#[cfg(feature = "db")]
pub mod prepared;
pub mod problem;
pub mod ratelimit;
pub mod relations;
pub mod revocations;
pub mod routing;
pub mod runtime;
#[cfg(feature = "db")]
mod schema;
pub mod server;
pub mod signing;
#[cfg(feature = "store")]
pub mod store;
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;

pub use auth::{Caller, MaybeCaller, TokenVerifier};

/// Every program built on the kit allocates with mimalloc: glibc's malloc kept a heap per
/// thread that had ever hashed a password (19 MiB each) and never gave it back (1.4 GiB
/// resident after a thousand logins), and took 7% of the CPU in the social mix.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
pub use problem::{ApiError, ApiResult, FieldError};
pub use server::Service;

//! Call me back: a visitor (through the widget) or a site's backend (REST) asks the gateway to call
//! a phone number; the gateway dials it over the trunk, greets the customer, and on the confirming
//! digit sends the call into a queue like any other customer.
//!
//! - [`number`]: numbers as typed → E.164.
//! - [`guard`]: the toll-fraud guard (lists, rate limits, caps), sans-IO.
//! - [`store`]: requests in SQLite ([`sqlite`]) or PostgreSQL ([`pg`]), so a restart loses no pending or
//!   scheduled callback, and a due callback is claimed by one node at a time.
//! - [`schedule`]: when a node polls its store for due work and renews its leases, and the
//!   retry rules (sans-IO).
//! - [`service`]: the task that owns the guard, the store and the schedule, and dials.

pub mod guard;
pub mod number;
pub mod pg;
pub mod schedule;
pub mod service;
pub mod sqlite;
pub mod store;

#[cfg(test)]
mod service_tests;

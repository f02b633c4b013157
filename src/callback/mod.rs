//! Call me back: a visitor (through the widget) or a site's backend (REST) asks the gateway to call
//! a phone number; the gateway dials it over the trunk, greets the customer, and on the confirming
//! digit sends the call into a queue like any other customer.
//!
//! - [`number`]: numbers as typed → E.164.
//! - [`guard`]: the toll-fraud guard (lists, rate limits, caps), sans-IO.
//! - [`store`]: requests in SQLite, so a restart loses no pending or scheduled callback.
//! - [`service`]: the task that owns the guard, the store and the schedule, and dials.

pub mod guard;
pub mod number;
pub mod service;
pub mod store;

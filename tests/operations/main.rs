//! Running the gateway: health and drain, overload limits and metrics, call records, webhooks, the REST API.
//!
//! One test binary per area (each binary links the whole gateway): every file is a module named for
//! what it proves.

#[path = "../common/mod.rs"]
mod common;

mod api_keys_and_scopes;
mod call_records_one_per_call;
mod http_health_readiness_and_drain;
mod overload_refuses_new_calls_and_metrics_show_it;
mod rest_api_agents_queues_calls;
mod webhooks_survive_a_receiver_outage;
mod widget_socket_edges;

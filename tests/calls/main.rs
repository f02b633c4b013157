//! Whole calls in process: browser, trunk and callback customers through the IVR and queues to SIP agents, hunting, hold, transfers, the external IVR, the demo agent.
//!
//! One test binary per area (each binary links the whole gateway): every file is a module named for
//! what it proves.

#[path = "../common/mod.rs"]
mod common;

mod agent_behind_nat_heard_from_the_first_packet;
mod agent_busy_hunts_next;
mod agent_hold_and_blind_transfer;
mod agents_call_each_other;
mod agents_consult_then_transfer;
mod browser_call_reaches_agent_with_context;
mod callback_over_the_trunk;
mod calls_are_recorded_in_stereo;
mod calls_go_to_a_siprec_recorder;
mod demo_agent_answers_and_echoes;
mod external_ivr_refers_back_to_a_queue;
mod inbound_trunk_call_reaches_agent;
mod nodes_share_agents_and_queues;
mod parties_hear_each_other;
mod rest_call_control;
mod supervisors_listen_whisper_barge_and_take_over;
mod trunk_queue_skips_the_ivr;
mod widget_socket_drops_and_the_call_goes_on;

//! The media plane: the browser leg, the two-party bridge on simulated time and on real sockets, digits, source switches, Opus.
//!
//! One test binary per area (each binary links the whole gateway): every file is a module named for
//! what it proves.

#[path = "../common/mod.rs"]
mod common;

mod browser_bridged_to_sip_phone;
mod browser_leg_answers_a_webrtc_offer;
mod browser_stream_survives_source_switches;
mod browsers_share_one_worker_port;
mod dtmf_crosses_the_bridge;
mod media_task_bridges_real_sockets;
mod opus_browser_transcoded_to_pcmu_phone;

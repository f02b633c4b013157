//! The ACD core as the configuration describes it.

use super::Acd;

/// The ACD core for the configured queues and agents, and each queue's average handling time
/// (the seed of its estimated wait); agents with a static URI are online from the start.
pub fn from_config(
    cfg: &crate::config::Config,
) -> (Acd, std::collections::HashMap<String, std::time::Duration>) {
    let mut acd = Acd::new();
    let mut average = std::collections::HashMap::new();
    for q in &cfg.queues {
        // Validated with the config, so the rules parse; a bad one falls back to the defaults.
        acd.add_queue(&q.name, q.rules().unwrap_or_default());
        average.insert(
            q.name.clone(),
            std::time::Duration::from_secs(q.average_handle_secs),
        );
    }
    let now = std::time::Instant::now();
    for a in &cfg.agents {
        let queues: Vec<&str> = a.queues.iter().map(String::as_str).collect();
        let skills: Vec<(&str, u8)> = a.skills.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        acd.add_agent(&a.id, &queues, &skills);
        if a.uri.is_some() {
            acd.handle_presence(now, &a.id, true);
        }
    }
    while acd.poll_output().is_some() {}
    (acd, average)
}

//! Recording retention: files older than `recording.retention_days` are deleted, and their records
//! say when. The choice is sans-IO ([`expired`]); [`run`] lists the directory, deletes and tells
//! the records, once at start and then every hour.

use crate::records::writer::Records;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// Of `files` (name, last modified), the recordings (`<call id>.wav`, `<call id>-<n>.wav`) older
/// than `days` at `now`, with their call ids.
pub fn expired(files: &[(String, SystemTime)], now: SystemTime, days: u64) -> Vec<(String, u64)> {
    let max_age = Duration::from_secs(days * 86_400);
    files
        .iter()
        .filter(|(_, modified)| now.duration_since(*modified).is_ok_and(|age| age > max_age))
        .filter_map(|(name, _)| {
            let stem = name.strip_suffix(".wav")?;
            let call = stem.split('-').next()?.parse().ok()?;
            Some((name.clone(), call))
        })
        .collect()
}

/// Deletes expired recordings from `dir` every hour until `stop`; records are told of each.
pub async fn run(dir: PathBuf, days: u64, records: Records, stop: CancellationToken) {
    loop {
        let d = dir.clone();
        let listed = tokio::task::spawn_blocking(move || list(&d)).await;
        let files = listed.unwrap_or_default();
        let now = SystemTime::now();
        let gone = expired(&files, now, days);
        for (name, call) in gone {
            let path = dir.join(&name);
            match tokio::fs::remove_file(&path).await {
                Ok(()) => {
                    info!(file = %path.display(), call, "recording deleted (retention)");
                    records.mark_recording_deleted(call, path.display().to_string());
                }
                Err(e) => warn!(file = %path.display(), error = %e, "recording not deleted"),
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(3600)) => {}
            _ = stop.cancelled() => return,
        }
    }
}

fn list(dir: &std::path::Path) -> Vec<(String, SystemTime)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| {
            let modified = e.metadata().ok()?.modified().ok()?;
            Some((e.file_name().to_string_lossy().to_string(), modified))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_recordings_past_their_days_are_chosen() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(100 * 86_400);
        let age = |d: u64| now - Duration::from_secs(d * 86_400 + 1);
        let files = vec![
            ("4711.wav".to_string(), age(31)),
            ("4712-2.wav".to_string(), age(40)),
            ("4713.wav".to_string(), age(29)),
            ("notes.txt".to_string(), age(90)),
            ("x.wav".to_string(), age(90)),
        ];
        let mut got = expired(&files, now, 30);
        got.sort();
        assert_eq!(
            got,
            vec![
                ("4711.wav".to_string(), 4711),
                ("4712-2.wav".to_string(), 4712)
            ]
        );
    }
}

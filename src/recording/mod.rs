//! Call recordings on disk: a WAV file written by a thread of its own, fed stereo audio over a
//! bounded channel in half-second batches (a thread woken 50 times a second per call costs more
//! than the recording itself), so a slow or full disk never stalls the media task (a batch that
//! finds the channel full is dropped and counted). The frames come from the media core's
//! [`crate::media::recorder::StereoRecorder`].
//!
//! Crash safety: every 2 s the WAV header's sizes are rewritten, so a process that dies leaves a
//! valid WAV holding all but the last two and a half seconds. A write error (disk full,
//! directory not writable) stops the writing, not the call: the outcome says why.

pub mod retention;
pub mod wav;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use tokio::sync::oneshot;

/// Batches the writer may lag behind (10 s of audio) before batches are dropped.
const QUEUE: usize = 20;
/// Frames in a batch (0.5 s).
const BATCH: usize = 25;

/// How a recording ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The file.
    pub path: PathBuf,
    /// Seconds of audio written (each channel).
    pub secs: f64,
    /// Bytes in the file.
    pub bytes: u64,
    /// Frames dropped because the writer lagged.
    pub dropped_frames: u64,
    /// Why writing stopped early, if it did.
    pub error: Option<String>,
}

enum Job {
    Frame(Vec<i16>),
    Finish(oneshot::Sender<Outcome>),
}

/// The media task's end of a recording being written.
pub struct Sink {
    tx: SyncSender<Job>,
    dropped: Arc<AtomicU64>,
    batch: Vec<i16>,
    frames: usize,
}

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sink").finish_non_exhaustive()
    }
}

impl Sink {
    /// Starts writing `path` (8 kHz, 16-bit, two channels) on a thread of its own.
    pub fn start(path: PathBuf) -> Sink {
        let (tx, rx) = sync_channel(QUEUE);
        let dropped = Arc::new(AtomicU64::new(0));
        let d = dropped.clone();
        let spawned = std::thread::Builder::new()
            .name("recording".into())
            .stack_size(64 * 1024)
            .spawn(move || write_all(&path, &rx, &d));
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "recording thread could not start");
        }
        Sink {
            tx,
            dropped,
            batch: Vec::new(),
            frames: 0,
        }
    }

    /// One interleaved stereo frame; never blocks (a full queue drops the batch, counted).
    pub fn push(&mut self, frame: &[i16]) {
        self.batch.extend_from_slice(frame);
        self.frames += 1;
        if self.frames >= BATCH {
            self.send_batch();
        }
    }

    fn send_batch(&mut self) {
        if self.frames == 0 {
            return;
        }
        let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(BATCH * 320));
        if let Err(TrySendError::Full(_)) = self.tx.try_send(Job::Frame(batch)) {
            self.dropped
                .fetch_add(self.frames as u64, Ordering::Relaxed);
        }
        self.frames = 0;
    }

    /// Ends the file; the outcome arrives when the writer is done.
    pub fn finish(mut self) -> oneshot::Receiver<Outcome> {
        self.send_batch();
        let (tx, rx) = oneshot::channel();
        // Blocking here would stall the media task; a writer that is that far behind has its
        // channel full, and the finish waits for room on a thread of its own.
        let job = Job::Finish(tx);
        if let Err(TrySendError::Full(job)) = self.tx.try_send(job) {
            let sender = self.tx.clone();
            std::thread::spawn(move || {
                let _ = sender.send(job);
            });
        }
        rx
    }
}

/// The writer thread: the file, then every batch, the header fixed up every 2 s and at the end.
fn write_all(path: &Path, rx: &Receiver<Job>, dropped: &AtomicU64) {
    let mut file = wav::WavFile::create(path);
    // The first write error stops the writing; what was written before it still counts.
    let mut failed: Option<std::io::Error> = None;
    let mut batches = 0u64;
    while let Ok(job) = rx.recv() {
        match job {
            Job::Frame(f) => {
                let Ok(w) = file.as_mut() else { continue };
                if failed.is_some() {
                    continue;
                }
                batches += 1;
                let r = w.write_frame(&f).and_then(|()| {
                    if batches.is_multiple_of(4) {
                        w.sync_header()
                    } else {
                        Ok(())
                    }
                });
                failed = r.err();
            }
            Job::Finish(reply) => {
                let (secs, bytes, error) = match file.as_mut() {
                    Ok(w) => {
                        // A file whose writing failed still gets its header fixed if it can be.
                        let closed = w.close().err();
                        let error = failed.or(closed).map(|e| e.to_string());
                        (w.samples_per_channel() as f64 / 8000.0, w.bytes(), error)
                    }
                    Err(e) => (0.0, 0, Some(e.to_string())),
                };
                let _ = reply.send(Outcome {
                    path: path.to_path_buf(),
                    secs,
                    bytes,
                    dropped_frames: dropped.load(Ordering::Relaxed),
                    error,
                });
                return;
            }
        }
    }
}

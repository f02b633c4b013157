//! Who hears which tone: the customer's 440 Hz, an agent's 1000 Hz and a third party's 700 Hz (a
//! supervisor, a consulted colleague), told apart by their Goertzel levels in what each heard.

use super::call::MediaBrowser;
use super::phones::AgentPhone;
use clicktocall::media::tone::goertzel;
use std::time::Duration;

/// The tones: the customer's, the agent's, the third party's.
pub const TONES: [f64; 3] = [440.0, 1000.0, 700.0];

/// A tone's level in `s` (the Goertzel magnitude, per sample).
pub fn level(s: &[i16], hz: f64) -> f64 {
    goertzel(s, hz, 8000).sqrt()
}

/// Which of [`TONES`] are in `s`: clearly present (> 300) or absent (< 60; anything between
/// fails the test as unclear).
pub fn tones(s: &[i16]) -> [bool; 3] {
    TONES.map(|hz| {
        let l = level(s, hz);
        assert!(!(60.0..=300.0).contains(&l), "{hz} Hz at an unclear {l:.0}");
        l > 300.0
    })
}

/// What the customer, the agent and the third party each heard in the next second (after
/// 400 ms for the routes to settle).
pub async fn next_second(c: &MediaBrowser, a: &AgentPhone, b: &AgentPhone) -> [[bool; 3]; 3] {
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (i, j, k) = (c.heard_len(), a.heard_len(), b.heard_len());
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let a_heard = a.heard.lock().unwrap()[j..].to_vec();
    let b_heard = b.heard.lock().unwrap()[k..].to_vec();
    [tones(&c.heard_since(i)), tones(&a_heard), tones(&b_heard)]
}

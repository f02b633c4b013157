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

/// Like [`tones`], but an unclear level is an error instead of a failed test.
fn clear_tones(s: &[i16]) -> Result<[bool; 3], String> {
    let mut out = [false; 3];
    for (o, hz) in out.iter_mut().zip(TONES) {
        let l = level(s, hz);
        if (60.0..=300.0).contains(&l) {
            return Err(format!("{hz} Hz at an unclear {l:.0}"));
        }
        *o = l > 300.0;
    }
    Ok(out)
}

/// What the customer, the agent and the third party each heard in the next second (after
/// 400 ms for the routes to settle).
pub async fn next_second(c: &MediaBrowser, a: &AgentPhone, b: &AgentPhone) -> [[bool; 3]; 3] {
    let heard = one_second(c, a, b).await;
    heard.map(|h| h.unwrap_or_else(|e| panic!("{e}")))
}

async fn one_second(
    c: &MediaBrowser,
    a: &AgentPhone,
    b: &AgentPhone,
) -> [Result<[bool; 3], String>; 3] {
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (i, j, k) = (c.heard_len(), a.heard_len(), b.heard_len());
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let a_heard = a.heard.lock().unwrap()[j..].to_vec();
    let b_heard = b.heard.lock().unwrap()[k..].to_vec();
    [
        clear_tones(&c.heard_since(i)),
        clear_tones(&a_heard),
        clear_tones(&b_heard),
    ]
}

/// What the three heard once a change has settled: the first of up to three seconds (each after
/// 400 ms) that matches `want`, else the last one. A change of routes lands in a few
/// milliseconds; on a test machine whose two cores run several gateways and str0m browsers in
/// debug builds, one listener may hear nothing for a moment while its task waits for a core
/// (CI saw a customer hear nothing for one second once in many runs). Who hears whom is
/// still checked exactly; a route that never comes (or never goes) fails.
pub async fn settles(
    c: &MediaBrowser,
    a: &AgentPhone,
    b: &AgentPhone,
    want: [[bool; 3]; 3],
) -> [[bool; 3]; 3] {
    let mut last = Vec::new();
    for attempt in 1..=3 {
        let heard = one_second(c, a, b).await;
        if heard.iter().zip(want).all(|(h, w)| h.as_ref() == Ok(&w)) {
            return want;
        }
        eprintln!("second {attempt}: heard {heard:?}, want {want:?}");
        last = heard.to_vec();
    }
    let last: Vec<[bool; 3]> = last
        .into_iter()
        .map(|h| h.unwrap_or_else(|e| panic!("{e}")))
        .collect();
    [last[0], last[1], last[2]]
}

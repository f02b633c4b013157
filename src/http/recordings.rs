//! `GET /api/calls/{id}/recording`: a call's recording (its first file, `<recording.directory>/<id>.wav`),
//! streamed, with HTTP Range (RFC 9110 §14: one range per request; more are answered whole), so a
//! player can seek in an hour-long call without downloading it. Behind the API key.

use super::api::ApiError;
use super::HttpState;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

/// A `Range` that cannot be satisfied (416).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unsatisfiable;

/// The byte range a `Range` header asks of a `len`-byte file: `Ok(None)` for the whole file (no
/// header, or one this server answers whole), `Err` when it cannot be satisfied.
pub fn range(value: Option<&str>, len: u64) -> Result<Option<(u64, u64)>, Unsatisfiable> {
    let Some(spec) = value.and_then(|v| v.trim().strip_prefix("bytes=")) else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None); // several ranges: the whole file is a valid answer
    }
    let (a, b) = spec.split_once('-').ok_or(Unsatisfiable)?;
    let (a, b) = (a.trim(), b.trim());
    let (start, end) = match (a.is_empty(), b.is_empty()) {
        (false, _) => {
            let start: u64 = a.parse().map_err(|_| Unsatisfiable)?;
            let end = if b.is_empty() {
                len.saturating_sub(1)
            } else {
                b.parse::<u64>()
                    .map_err(|_| Unsatisfiable)?
                    .min(len.saturating_sub(1))
            };
            (start, end)
        }
        (true, false) => {
            let n: u64 = b.parse().map_err(|_| Unsatisfiable)?;
            if n == 0 {
                return Err(Unsatisfiable);
            }
            (len.saturating_sub(n), len.saturating_sub(1))
        }
        (true, true) => return Err(Unsatisfiable),
    };
    if start >= len || start > end {
        return Err(Unsatisfiable);
    }
    Ok(Some((start, end)))
}

/// `GET /api/calls/{id}/recording`
pub async fn get_recording(
    State(state): State<HttpState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let none = || {
        ApiError(
            StatusCode::NOT_FOUND,
            "no_recording",
            format!("no recording of call {id:?}"),
        )
    };
    // A number, so the path can only ever name a file in the recordings directory.
    let call: u64 = id.parse().map_err(|_| none())?;
    let path = state.cfg.recording.directory.join(format!("{call}.wav"));
    let mut file = tokio::fs::File::open(&path).await.map_err(|_| none())?;
    let len = file.metadata().await.map_err(|_| none())?.len();
    let wanted = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    let Ok(r) = range(wanted, len) else {
        return Ok((
            StatusCode::RANGE_NOT_SATISFIABLE,
            [(header::CONTENT_RANGE, format!("bytes */{len}"))],
        )
            .into_response());
    };
    let (status, start, end) = match r {
        Some((a, b)) => (StatusCode::PARTIAL_CONTENT, a, b),
        None => (StatusCode::OK, 0, len.saturating_sub(1)),
    };
    let count = if len == 0 { 0 } else { end - start + 1 };
    file.seek(std::io::SeekFrom::Start(start))
        .await
        .map_err(|_| none())?;
    let body = Body::from_stream(tokio_util::io::ReaderStream::new(file.take(count)));
    let mut resp = (
        status,
        [
            (header::CONTENT_TYPE, "audio/wav".to_string()),
            (header::ACCEPT_RANGES, "bytes".to_string()),
            (header::CONTENT_LENGTH, count.to_string()),
        ],
        body,
    )
        .into_response();
    if status == StatusCode::PARTIAL_CONTENT {
        if let Ok(v) = format!("bytes {start}-{end}/{len}").parse() {
            resp.headers_mut().insert(header::CONTENT_RANGE, v);
        }
    }
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::{range, Unsatisfiable};

    #[test]
    fn ranges_as_rfc_9110_reads_them() {
        assert_eq!(range(None, 100), Ok(None));
        assert_eq!(range(Some("bytes=0-9"), 100), Ok(Some((0, 9))));
        assert_eq!(range(Some("bytes=90-"), 100), Ok(Some((90, 99))));
        assert_eq!(range(Some("bytes=-10"), 100), Ok(Some((90, 99))));
        assert_eq!(
            range(Some("bytes=50-500"), 100),
            Ok(Some((50, 99))),
            "clipped"
        );
        assert_eq!(
            range(Some("bytes=0-1,5-6"), 100),
            Ok(None),
            "several: whole"
        );
        assert_eq!(
            range(Some("items=0-1"), 100),
            Ok(None),
            "another unit: whole"
        );
        for bad in [
            "bytes=100-",
            "bytes=9-3",
            "bytes=-0",
            "bytes=-",
            "bytes=x-3",
            "bytes=3",
        ] {
            assert_eq!(range(Some(bad), 100), Err(Unsatisfiable), "{bad}");
        }
        assert_eq!(range(Some("bytes=-500"), 100), Ok(Some((0, 99))));
    }
}

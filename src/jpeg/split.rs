//! Splitting a stream of concatenated JPEGs (an `.mjpeg` file, a dongle's stream saved to disk)
//! into frames by following the marker structure, not by searching for `FF D9`: marker segments
//! (an EXIF thumbnail, say) may contain any bytes, only entropy-coded data is escaped.

use super::JpegError;
use super::markers::jpeg_len;

/// A stretch of the stream that is not a complete frame. Its bytes are skipped; the frames
/// before and after it are still returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("MJPEG stream, bytes {offset}..{}: {error}", offset + len)]
pub struct MjpegError {
    /// Offset of the bad stretch in the stream.
    pub offset: usize,
    /// Bytes skipped.
    pub len: usize,
    /// What was wrong: [`JpegError::NoStart`] for bytes between frames, else the frame's fault.
    pub error: JpegError,
}

/// The frames of `data`, in order. Zero and `FF` padding between frames is skipped silently;
/// anything else that is not a complete frame is returned as an [`MjpegError`], after which
/// splitting resumes at the next start-of-image marker.
pub fn split_mjpeg(data: &[u8]) -> MjpegFrames<'_> {
    MjpegFrames { data, pos: 0 }
}

/// Iterator returned by [`split_mjpeg`].
#[derive(Debug, Clone)]
pub struct MjpegFrames<'a> {
    data: &'a [u8],
    pos: usize,
}

/// The next `FF D8 FF` (SOI followed by a marker) at or after `from`, or the end of `data`.
fn next_start(data: &[u8], from: usize) -> usize {
    data.get(from..)
        .and_then(|rest| rest.windows(3).position(|w| w == [0xff, 0xd8, 0xff]))
        .map_or(data.len(), |i| from + i)
}

impl<'a> Iterator for MjpegFrames<'a> {
    type Item = Result<&'a [u8], MjpegError>;

    fn next(&mut self) -> Option<Self::Item> {
        let data = self.data;
        // Padding: zeros, and FF fill bytes that are not the start of an SOI.
        while let Some(&byte) = data.get(self.pos) {
            let soi = byte == 0xff && data.get(self.pos + 1) == Some(&0xd8);
            if soi || (byte != 0 && byte != 0xff) {
                break;
            }
            self.pos += 1;
        }
        let start = self.pos;
        let rest = data.get(start..).filter(|rest| !rest.is_empty())?;
        let result = match jpeg_len(rest) {
            Ok(len) => {
                self.pos = start + len;
                return Some(Ok(&rest[..len]));
            }
            Err(JpegError::NoStart) => JpegError::NoStart,
            Err(error) => error,
        };
        // Resume at the next SOI after this one (or after the garbage).
        self.pos = next_start(data, start + 1);
        Some(Err(MjpegError { offset: start, len: self.pos - start, error: result }))
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use super::*;

    fn frames() -> (Vec<u8>, Vec<u8>) {
        let a = encode_rgb(&synthetic_rgb(64, 48), 64, 48, 75);
        let b = encode_rgb(&synthetic_rgb(48, 64), 48, 64, 60);
        (a, b)
    }

    #[test]
    fn splits_concatenated_frames() {
        let (a, b) = frames();
        let stream = [a.as_slice(), &b, &a].concat();
        let got: Vec<_> = split_mjpeg(&stream).collect();
        assert_eq!(got, [Ok(&a[..]), Ok(&b[..]), Ok(&a[..])]);
        assert_eq!(split_mjpeg(&[]).count(), 0);
        // Padding between and after frames (V4L2 buffers, some files) is skipped silently.
        let padded = [&a[..], &[0, 0, 0xff, 0xff], &b, &[0; 7]].concat();
        let got: Vec<_> = split_mjpeg(&padded).collect();
        assert_eq!(got, [Ok(&a[..]), Ok(&b[..])]);
    }

    #[test]
    fn an_app_segment_holding_ff_d9_does_not_end_the_frame() {
        let (a, _) = frames();
        // An APP1 segment right after SOI whose payload holds FF D9 and FF D8 (like an EXIF
        // thumbnail).
        let mut tricky = vec![0xff, 0xd8, 0xff, 0xe1, 0, 10, b'E', b'x', 0xff, 0xd9, 0xff, 0xd8, 0xff, 0xd9];
        tricky.extend_from_slice(&a[2..]);
        let stream = [&tricky[..], &a].concat();
        let got: Vec<_> = split_mjpeg(&stream).collect();
        assert_eq!(got, [Ok(&tricky[..]), Ok(&a[..])]);
        assert!(super::super::validate(&tricky).is_ok());
    }

    #[test]
    fn bad_stretches_are_reported_and_skipped() {
        let (a, b) = frames();
        let truncated = &b[..b.len() - 20]; // cut in the entropy-coded data
        let stream = [&a[..], b"garbage", &a, truncated, &b, &a[..a.len() - 1]].concat();
        let got: Vec<_> = split_mjpeg(&stream).collect();
        let g = a.len();
        let t = g + 7 + a.len();
        assert_eq!(
            got,
            [
                Ok(&a[..]),
                Err(MjpegError { offset: g, len: 7, error: JpegError::NoStart }),
                Ok(&a[..]),
                Err(MjpegError {
                    offset: t,
                    len: truncated.len(),
                    error: JpegError::BadMarker { offset: truncated.len() + 1, byte: 0xd8 }
                }),
                Ok(&b[..]),
                Err(MjpegError {
                    offset: t + truncated.len() + b.len(),
                    len: a.len() - 1,
                    error: JpegError::Truncated
                }),
            ]
        );
        assert!(got[1].as_ref().unwrap_err().to_string().contains("bytes"));
    }
}

//! What the zlib-based encodings (ZRLE, Zlib) share: one zlib stream per connection that the
//! client's decoder continues across updates, length-prefixed rects written band by band, and
//! Raw as the way out once the stream cannot be trusted.

use flate2::{Compress, Compression, FlushCompress};

use super::{EncodeParams, Encoder, RawEncoder};
use crate::frame::{Frame, Rect};
use crate::messages::server::write_rect_header;

/// Moves `zlib` (already sync-flushed, so nothing is pending) to `wanted`, returning the level it
/// ends up at. zlib-rs refuses changes that switch its compression function once data has gone
/// through the stream (e.g. 6 -> 1); the refusal leaves the stream untouched, so the closest
/// level that is accepted, walking back towards the current one, is used instead.
fn change_level(zlib: &mut Compress, current: u8, wanted: u8) -> u8 {
    let mut level = wanted;
    while level != current {
        if zlib.set_level(Compression::new(u32::from(level))).is_ok() {
            return level;
        }
        level = if level > current { level - 1 } else { level + 1 };
    }
    current
}

/// Feeds `input` to `zlib`, appending what it produces to `out`. With [`FlushCompress::Sync`]
/// returns only once all of it (and everything before it) is in `out`.
pub(super) fn deflate(
    zlib: &mut Compress,
    mut input: &[u8],
    out: &mut Vec<u8>,
    flush: FlushCompress,
) -> Result<(), ()> {
    loop {
        // Room for incompressible input plus zlib's block overhead and earlier buffered data.
        out.reserve(input.len() + input.len() / 16 + 4096);
        let (in_before, out_before) = (zlib.total_in(), out.len());
        zlib.compress_vec(input, out, flush).map_err(|_| ())?;
        let consumed = usize::try_from(zlib.total_in() - in_before).map_err(|_| ())?;
        input = input.get(consumed..).ok_or(())?;
        // Output space left over means zlib had nothing more to write.
        if input.is_empty() && out.len() < out.capacity() {
            return Ok(());
        }
        if consumed == 0 && out.len() == out_before {
            // No progress despite room to write: never spin.
            return Err(());
        }
    }
}

/// zlib level when the client sent no compression level (zlib's own default, as TigerVNC's ZRLE).
const DEFAULT_LEVEL: u8 = 6;

/// One connection's zlib stream for one encoding, never reset: the client's decoder continues it
/// across updates.
pub(super) struct ZlibStream {
    zlib: Option<Compress>,
    /// The level the stream compresses at.
    level: u8,
    /// The level last asked for, so a level the stream cannot switch to is tried only once.
    requested: u8,
    /// Set when zlib reported an error: the stream can no longer be trusted, so every later rect
    /// is sent as Raw (always allowed) instead.
    broken: bool,
}

impl std::fmt::Debug for ZlibStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZlibStream")
            .field("level", &self.level)
            .field("started", &self.zlib.is_some())
            .field("broken", &self.broken)
            .finish()
    }
}

impl ZlibStream {
    pub(super) fn new() -> Self {
        Self { zlib: None, level: DEFAULT_LEVEL, requested: DEFAULT_LEVEL, broken: false }
    }

    /// The stream, created on first use or moved to the client's latest `level`.
    fn at_level(&mut self, level: u8) -> &mut Compress {
        if let Some(zlib) = &mut self.zlib {
            if level != self.requested {
                self.requested = level;
                self.level = change_level(zlib, self.level, level);
            }
        } else {
            (self.level, self.requested) = (level, level);
        }
        self.zlib.get_or_insert_with(|| Compress::new(Compression::new(u32::from(level)), true))
    }

    /// Writes `rect` (clipped to the frame; nothing for an empty one, since some viewers complain
    /// about zero-size rects) as rects of `encoding` in bands of `band_rows(width)` rows. Each is
    /// a header, a U32 length and the zlib payload `fill` puts through the stream (ending it with
    /// a sync flush), at the client's compression level. Once zlib fails the stream may hold data
    /// the client will never see, so it is given up on for good: that band and every later one
    /// go as Raw. Returns the number of rects written.
    #[allow(clippy::too_many_arguments)] // Each is one thing a band needs; a struct would only rename them.
    pub(super) fn write_bands(
        &mut self,
        frame: &Frame,
        rect: &Rect,
        encoding: i32,
        band_rows: impl Fn(u16) -> usize,
        params: &EncodeParams,
        out: &mut Vec<u8>,
        mut fill: impl FnMut(&mut Compress, &Rect, &mut Vec<u8>) -> Result<(), ()>,
    ) -> usize {
        let clipped = rect.intersect(&frame.bounds());
        if clipped.is_empty() {
            return 0;
        }
        let level = params.encodings.compress_level.map_or(DEFAULT_LEVEL, |l| l.min(9));
        let rows = u16::try_from(band_rows(clipped.width)).unwrap_or(u16::MAX).max(1);
        let mut count = 0;
        let mut y = 0;
        while y < clipped.height {
            let band = Rect::new(clipped.x, clipped.y + y, clipped.width, rows.min(clipped.height - y));
            let start = out.len();
            if !self.broken && self.write_band(&band, encoding, level, out, &mut fill).is_ok() {
                count += 1;
            } else {
                self.broken = true;
                out.truncate(start);
                count += RawEncoder.encode(frame, &band, params, out);
            }
            y += band.height;
        }
        count
    }

    fn write_band(
        &mut self,
        band: &Rect,
        encoding: i32,
        level: u8,
        out: &mut Vec<u8>,
        fill: &mut impl FnMut(&mut Compress, &Rect, &mut Vec<u8>) -> Result<(), ()>,
    ) -> Result<(), ()> {
        write_rect_header(out, band, encoding);
        let length_at = out.len();
        out.extend_from_slice(&[0; 4]);
        fill(self.at_level(level), band, out)?;
        let length = u32::try_from(out.len() - length_at - 4).map_err(|_| ())?;
        out[length_at..length_at + 4].copy_from_slice(&length.to_be_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_changes_stay_between_old_and_new() {
        let mut stream = ZlibStream::new();
        stream.at_level(3);
        assert_eq!(stream.level, 3);
        let mut out = Vec::new();
        for wanted in [9, 0, 1, 5, 5, 2, 7] {
            let before = stream.level;
            let zlib = stream.at_level(wanted);
            deflate(zlib, b"some data some data", &mut out, FlushCompress::Sync).unwrap();
            let level = stream.level;
            assert!((before.min(wanted)..=before.max(wanted)).contains(&level), "{before} -> {wanted}: {level}");
        }
    }
}

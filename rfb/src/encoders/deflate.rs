//! What the zlib-based encodings (ZRLE, Zlib) share: one zlib stream per connection that the
//! client's decoder continues across updates, fed band by band, with Raw as the way out once the
//! stream cannot be trusted.

use flate2::{Compress, Compression, FlushCompress};

use super::{EncodeParams, Encoder, RawEncoder};
use crate::frame::{Frame, Rect};

/// Moves `zlib` (already sync-flushed, so nothing is pending) to `wanted`, returning the level it
/// ends up at. zlib-rs refuses changes that switch its compression function once data has gone
/// through the stream (e.g. 6 -> 1); the refusal leaves the stream untouched, so the closest
/// level that is accepted, walking back towards the current one, is used instead.
pub(super) fn change_level(zlib: &mut Compress, current: u8, wanted: u8) -> u8 {
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

/// Writes `rect` (clipped to the frame; nothing for an empty one, since some viewers complain
/// about zero-size rects) as bands of `band_rows` rows, each with `encode_one`. Once a band fails
/// the stream may hold data the client will never see, so `broken` is set for good and that band
/// and every later one go as Raw. Returns the number of rects written.
pub(super) fn in_bands(
    frame: &Frame,
    rect: &Rect,
    band_rows: impl Fn(u16) -> usize,
    broken: &mut bool,
    params: &EncodeParams,
    out: &mut Vec<u8>,
    mut encode_one: impl FnMut(&Rect, &mut Vec<u8>) -> Result<(), ()>,
) -> usize {
    let clipped = rect.intersect(&frame.bounds());
    if clipped.is_empty() {
        return 0;
    }
    let rows = u16::try_from(band_rows(clipped.width)).unwrap_or(u16::MAX).max(1);
    let mut count = 0;
    let mut y = 0;
    while y < clipped.height {
        let band = Rect::new(clipped.x, clipped.y + y, clipped.width, rows.min(clipped.height - y));
        let start = out.len();
        if !*broken && encode_one(&band, out).is_ok() {
            count += 1;
        } else {
            *broken = true;
            out.truncate(start);
            count += RawEncoder.encode(frame, &band, params, out);
        }
        y += band.height;
    }
    count
}

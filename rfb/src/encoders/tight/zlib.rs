//! One of Tight's persistent zlib streams.

use flate2::{Compress, Compression, FlushCompress};

/// A zlib stream that lives as long as the connection, created on first use. Each call's
/// output ends with a sync flush, so the client can decode it without later data.
///
/// Level changes happen only at those flush points, like TigerVNC's `ZlibOutStream` (sync
/// flush, then `deflateParams`). With flate2's zlib-rs backend, `set_level` fails whenever the
/// new level uses another deflate function (zlib-rs: 0 stored, 1 quick, 2 fast, 3-6 medium,
/// 7-9 slow) because it runs zlib's internal `Z_BLOCK` flush without an output buffer. The
/// failed call leaves the stream untouched; the stream is then recreated at the new level and
/// the caller must set this stream's reset bit in the rect's control byte (Tight's own way to
/// restart a stream, honoured by TigerVNC, noVNC and libvncclient).
#[derive(Default)]
pub(super) struct ZlibStream {
    stream: Option<(Compress, u32)>,
}

/// zlib failed; the stream must not be used again.
#[derive(Debug)]
pub(super) struct ZlibError;

impl ZlibStream {
    /// Replaces `output` with `input` compressed at `level` (0..=9) and sync-flushed. Returns
    /// true when the stream was recreated, so the client must reset its inflater first.
    pub(super) fn compress(&mut self, level: u32, input: &[u8], output: &mut Vec<u8>) -> Result<bool, ZlibError> {
        let level = level.min(9);
        let mut recreated = false;
        if let Some((compress, current)) = &mut self.stream
            && *current != level
        {
            if compress.set_level(Compression::new(level)).is_ok() {
                *current = level;
            } else {
                self.stream = None;
                recreated = true;
            }
        }
        let (compress, _) = self.stream.get_or_insert_with(|| (Compress::new(Compression::new(level), true), level));
        output.clear();
        // Enough for stored blocks plus headers, so one call normally finishes.
        output.reserve(input.len() + input.len() / 64 + 64);
        let start = compress.total_in();
        // Each round either consumes input, produces output or grows the buffer; bound the
        // rounds anyway so a misbehaving stream cannot spin.
        for _ in 0..64 {
            let consumed = usize::try_from(compress.total_in() - start).map_err(|_| ZlibError)?;
            let rest = input.get(consumed..).ok_or(ZlibError)?;
            compress.compress_vec(rest, output, FlushCompress::Sync).map_err(|_| ZlibError)?;
            let consumed = usize::try_from(compress.total_in() - start).map_err(|_| ZlibError)?;
            // zlib has finished a flush when it left output space unused.
            if consumed == input.len() && output.len() < output.capacity() {
                return Ok(recreated);
            }
            output.reserve(output.capacity().max(1024));
        }
        Err(ZlibError)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{Decompress, FlushDecompress};

    fn inflate(d: &mut Decompress, data: &[u8], expected: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(expected);
        d.decompress_vec(data, &mut out, FlushDecompress::Sync).unwrap();
        out
    }

    #[test]
    fn level_changes_keep_one_stream_valid() {
        let mut z = ZlibStream::default();
        let mut d = Decompress::new(true);
        let mut out = Vec::new();
        let mut total_in = 0;
        // (level, whether the stream must be recreated): within 3..=6 and 7..=9 set_level works.
        let steps =
            [(3, false), (3, false), (6, false), (4, false), (9, true), (7, false), (0, true), (1, true), (9, true)];
        for (i, (level, recreate)) in steps.into_iter().enumerate() {
            let input: Vec<u8> = (0..5000u32).map(|j| ((j * 7 + i as u32 * 13) % 251) as u8 / 4).collect();
            assert_eq!(z.compress(level, &input, &mut out).unwrap(), recreate, "step {i}");
            if recreate {
                d = Decompress::new(true);
                total_in = 0;
            }
            assert_eq!(&out[out.len() - 4..], [0, 0, 0xff, 0xff], "sync flush marker");
            assert_eq!(inflate(&mut d, &out, input.len()), input);
            total_in += out.len() as u64;
            assert_eq!(d.total_in(), total_in, "the client consumed exactly this rect's data");
        }
    }

    #[test]
    fn output_larger_than_the_first_reservation() {
        // Incompressible input at level 0 exceeds the input size.
        let input: Vec<u8> = (0..300_000u32).map(|i| (i.wrapping_mul(2654435761) >> 24) as u8).collect();
        let mut z = ZlibStream::default();
        let mut out = vec![1, 2, 3];
        z.compress(0, &input, &mut out).unwrap();
        assert!(out.len() > input.len());
        let mut d = Decompress::new(true);
        assert_eq!(inflate(&mut d, &out, input.len()), input);
    }
}

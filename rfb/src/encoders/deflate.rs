//! The zlib stream of the zlib-based encodings (ZRLE, Zlib, and each of Tight's four): one per
//! connection (and stream id) that the client's decoder continues across updates. For ZRLE and
//! Zlib also their length-prefixed rects written band by band, and Raw as the way out once the
//! stream cannot be trusted (Tight writes its own rects and recreates a failed stream instead).
//!
//! A large update's rects are compressed on several workers at once, the way pigz does: the
//! stream is raw deflate behind a zlib header written by hand, every rect's data (a chunk) ends
//! with a sync flush (so the next starts on a byte boundary), and each run of chunks gets a
//! compressor primed with the 32 KiB the client will have inflated just before it. The
//! concatenation is then one valid stream, whatever order the runs were compressed in.

use std::ops::Range;
use std::sync::{Mutex, PoisonError};

use flate2::{Compress, Compression, FlushCompress};

use super::workers::{Workers, row_bands, run_indexed};
use super::{EncodeParams, Encoder, RawEncoder};
use crate::encoding::ClientEncodings;
use crate::frame::{Frame, Rect};
use crate::messages::server::write_rect_header;

/// The zlib stream header (RFC 1950): deflate, 32 KiB window, default level, no dictionary.
const ZLIB_HEADER: [u8; 2] = [0x78, 0x9c];
/// The inflate window: the farthest back a later block may refer.
const WINDOW: usize = 32 * 1024;
/// The least input worth a job on another thread: one parallel job compresses at least this
/// much (unless a stream has less), and Tight hands a stream to another thread only with this
/// much. Each parallel job's compressor is primed with a window (hashing [`WINDOW`] bytes),
/// which small chunks, such as Tight's palette rects of a desktop, would pay many times over,
/// and waking or starting a thread costs tens of microseconds. A Tight full-colour sub-rect
/// (up to 65536 pixels of 3 bytes) ends the job it joins.
pub(super) const MIN_RUN: usize = 128 * 1024;

/// Feeds `input` to `zlib`, appending what it produces to `out`. With [`FlushCompress::Sync`]
/// returns only once all of it (and everything before it) is in `out`.
fn deflate(zlib: &mut Compress, mut input: &[u8], out: &mut Vec<u8>, flush: FlushCompress) -> Result<(), ()> {
    loop {
        out.reserve(deflate_bound(input.len()));
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

/// The zlib level of ZRLE's and Zlib's stream: the client's compression level, if it sent one.
pub(super) fn stream_level(encodings: &ClientEncodings) -> u8 {
    encodings.compress_level.map_or(DEFAULT_LEVEL, |level| level.min(9))
}

/// Room for what a [`deflate`] of `len` bytes appends: incompressible input plus zlib's block
/// overhead and some data buffered from earlier input (`deflate` grows the buffer further if
/// that was not enough).
fn deflate_bound(len: usize) -> usize {
    len + len / 16 + 4096
}

/// One connection's zlib stream for one encoding, never reset: the client's decoder continues it
/// across updates.
pub(super) struct ZlibStream {
    /// Raw deflate (the header goes out by hand); None until first used, and after a parallel
    /// update whose last run failed: it is then made again from `window`. After a parallel
    /// update it is the compressor of the stream's last run, which has seen all of it.
    zlib: Option<Compress>,
    /// The header is out.
    started: bool,
    /// What the stream compressed last, at least [`WINDOW`] bytes of it ([`remember`]); its
    /// [`tail`] is what the client's inflater holds.
    window: Vec<u8>,
    /// The level the stream compresses at.
    level: u8,
    /// Set when zlib reported an error: the stream can no longer be trusted, so every later rect
    /// is sent as Raw (always allowed) instead.
    broken: bool,
}

impl std::fmt::Debug for ZlibStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZlibStream")
            .field("level", &self.level)
            .field("started", &self.started)
            .field("compressor", &self.zlib.is_some())
            .field("broken", &self.broken)
            .finish()
    }
}

impl Default for ZlibStream {
    fn default() -> Self {
        Self::new()
    }
}

impl ZlibStream {
    pub(super) fn new() -> Self {
        Self { zlib: None, started: false, window: Vec::new(), level: DEFAULT_LEVEL, broken: false }
    }

    /// Makes the stream's compressor at `level` ahead of its first rect, as TigerVNC does when
    /// a viewer connects: zlib-rs zeroes 256 KiB of fresh memory for each compressor it makes,
    /// which would otherwise delay the viewer's first picture (Tight's three streams: a 720p
    /// desktop's first update took 450 page faults on one worker, now 290, and a tenth less
    /// CPU). Only a stream that never had one: a client that keeps changing its level cannot
    /// make it happen again.
    pub(super) fn prepare(&mut self, level: u8) {
        if self.zlib.is_none() && !self.started && !self.broken {
            let level = level.min(9);
            self.zlib = primed(level, &[]).ok();
            self.level = level;
        }
    }

    /// The stream at the client's latest `level`: made (and primed with the window) when there
    /// is none or the level changed.
    fn at_level(&mut self, level: u8) -> Result<Deflater<'_>, ()> {
        if self.zlib.is_none() || level != self.level {
            // zlib-rs cannot switch between its compression functions in place (e.g. 6 -> 1), but
            // a new compressor primed with the window continues the stream at any level.
            self.zlib = Some(primed(level, tail(&self.window))?);
            self.level = level;
        }
        let zlib = self.zlib.as_mut().ok_or(())?;
        Ok(Deflater { zlib, window: &mut self.window, started: &mut self.started })
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
        mut fill: impl FnMut(&mut Deflater, &Rect, &mut Vec<u8>) -> Result<(), ()>,
    ) -> usize {
        let clipped = rect.intersect(&frame.bounds());
        if clipped.is_empty() {
            return 0;
        }
        let level = stream_level(params.encodings);
        let mut count = 0;
        for band in row_bands(&clipped, band_rows(clipped.width)) {
            let start = out.len();
            if !self.broken && self.write_band(&band, encoding, level, out, &mut fill).is_ok() {
                count += 1;
            } else {
                self.broken = true;
                out.truncate(start);
                count += RawEncoder.encode(frame, &band, params, out);
            }
        }
        count
    }

    fn write_band(
        &mut self,
        band: &Rect,
        encoding: i32,
        level: u8,
        out: &mut Vec<u8>,
        fill: &mut impl FnMut(&mut Deflater, &Rect, &mut Vec<u8>) -> Result<(), ()>,
    ) -> Result<(), ()> {
        write_rect_header(out, band, encoding);
        let length_at = out.len();
        out.extend_from_slice(&[0; 4]);
        fill(&mut self.at_level(level)?, band, out)?;
        let length = u32::try_from(out.len() - length_at - 4).map_err(|_| ())?;
        out[length_at..length_at + 4].copy_from_slice(&length.to_be_bytes());
        Ok(())
    }
}

impl ZlibStream {
    /// Like [`Self::write_bands`] for `bands` (each inside `frame`), spread over `workers`: each
    /// band's payload is made by `payload` (with one of `lanes` as its scratch space), then all
    /// are compressed as the stream's next chunks by [`compress_chunks_parallel`], both steps in
    /// parallel; the rects are then written in order. Returns the number of rects.
    #[allow(clippy::too_many_arguments)] // As `write_bands`, plus the lanes.
    pub(super) fn write_bands_parallel<L: Send>(
        &mut self,
        frame: &Frame,
        bands: &[Rect],
        encoding: i32,
        params: &EncodeParams,
        out: &mut Vec<u8>,
        lanes: &mut [L],
        payload: impl Fn(&mut L, &Rect, &mut Vec<u8>) + Sync,
    ) -> usize {
        let level = stream_level(params.encodings);
        let payloads = run_indexed(params.workers, lanes, bands.len(), |lane, i| {
            let mut data = Vec::new();
            payload(lane, &bands[i], &mut data);
            data
        });
        let Some(payloads) = payloads else {
            // No lane to run on: nothing went through the stream.
            self.broken = true;
            return bands.iter().map(|band| RawEncoder.encode(frame, band, params, out)).sum();
        };
        let inputs: Vec<&[u8]> = payloads.iter().map(Vec::as_slice).collect();
        let [compressed] = compress_chunks_parallel(params.workers, [(&mut *self, level, inputs.as_slice())]);
        let mut count = 0;
        for (band, compressed) in bands.iter().zip(compressed) {
            let length = compressed.and_then(|data| Ok((u32::try_from(data.len()).map_err(|_| ())?, data)));
            match length {
                Ok((length, data)) if !self.broken => {
                    write_rect_header(out, band, encoding);
                    out.extend_from_slice(&length.to_be_bytes());
                    out.extend_from_slice(&data);
                    count += 1;
                }
                _ => {
                    // The client will not see this chunk, so the ones after it cannot be
                    // inflated either.
                    self.broken = true;
                    count += RawEncoder.encode(frame, band, params, out);
                }
            }
        }
        count
    }

    /// Compresses `inputs` as the stream's next chunks, in order, on the stream's own
    /// compressor at `level` (0..=9): each chunk's data (after the zlib header, for the first
    /// chunk the stream sends) ends with a sync flush, so the client inflates it without later
    /// data. Once zlib fails the stream is broken: that chunk and every later one are `Err`.
    pub(super) fn compress_chunks(&mut self, level: u8, inputs: &[&[u8]]) -> Vec<Result<Vec<u8>, ()>> {
        let level = level.min(9);
        let mut chunks = Vec::with_capacity(inputs.len());
        for input in inputs {
            let mut data = Vec::new();
            let result = if self.broken {
                Err(())
            } else {
                self.at_level(level).and_then(|mut zlib| zlib.write(input, &mut data, FlushCompress::Sync))
            };
            self.broken |= result.is_err();
            chunks.push(result.map(|()| data));
        }
        chunks
    }
}

/// [`ZlibStream::compress_chunks`] for `N` streams at once (each with its level and inputs),
/// the chunks of every stream on `workers` in parallel: each run of chunks ([`runs`]) is one
/// job. A stream's first run continues on the stream's own compressor; every later run gets a
/// compressor primed with the 32 KiB the client will have inflated from that stream just before
/// it (known up front, since the inputs are), so each stream's chunks, sent in order, are one
/// valid stream continuing the stream's earlier data. The compressor that did a stream's last
/// run holds its history and becomes the stream's own. Priming costs a dictionary's hashing per
/// later run, so callers use this for large updates only. Returns each stream's chunks in order.
pub(super) fn compress_chunks_parallel<const N: usize>(
    workers: &dyn Workers,
    mut streams: [(&mut ZlibStream, u8, &[&[u8]]); N],
) -> [Vec<Result<Vec<u8>, ()>>; N] {
    /// One run of one stream's chunks.
    struct Job {
        stream: usize,
        chunks: Range<usize>,
        level: u8,
        /// The stream's own compressor, for its first run when it has one at `level`.
        own: Mutex<Option<Compress>>,
        /// The stream's last run: its compressor is kept as the stream's.
        last: bool,
    }
    let mut jobs: Vec<Job> = Vec::new();
    for (s, (stream, level, inputs)) in streams.iter_mut().enumerate() {
        if stream.broken || inputs.is_empty() {
            continue;
        }
        let level = (*level).min(9);
        // A compressor keeps the level it was made at (zlib-rs): another level primes anew.
        let mut own = stream.zlib.take().filter(|_| stream.level == level);
        let total: usize = inputs.iter().map(|input| input.len()).sum();
        let runs: Vec<Range<usize>> = runs(inputs, run_size(total, workers.count())).collect();
        let count = runs.len();
        for (i, chunks) in runs.into_iter().enumerate() {
            let own = Mutex::new(own.take());
            jobs.push(Job { stream: s, chunks, level, own, last: i + 1 == count });
        }
    }
    // Each lane keeps the compressor of its last job that was not a stream's last, for reuse.
    let mut lanes: Vec<Option<(Compress, u8)>> = (0..workers.count().min(jobs.len())).map(|_| None).collect();
    let compressed = {
        let streams = &streams;
        let jobs = &jobs;
        run_indexed(workers, &mut lanes, jobs.len(), |spare, j| {
            let job = &jobs[j];
            let (stream, _, inputs) = &streams[job.stream];
            let header = job.chunks.start == 0 && !stream.started;
            let own = job.own.lock().unwrap_or_else(PoisonError::into_inner).take();
            let zlib = match own {
                Some(zlib) => Ok(zlib),
                None => reprimed(spare.take(), job.level, &window_before(&stream.window, inputs, job.chunks.start)),
            };
            let run =
                zlib.and_then(|mut zlib| Ok((compress_run(&mut zlib, header, &inputs[job.chunks.clone()])?, zlib)));
            match run {
                Ok((chunks, zlib)) => {
                    let chunks = chunks.into_iter().map(Ok).collect();
                    if job.last {
                        return (chunks, Some(zlib));
                    }
                    *spare = Some((zlib, job.level));
                    (chunks, None)
                }
                // A failed run sends none of its chunks.
                Err(()) => (vec![Err(()); job.chunks.len()], None),
            }
        })
        .unwrap_or_default()
    };
    let mut compressed = compressed.into_iter().zip(&jobs).peekable();
    let mut s = 0;
    streams.map(|(stream, level, inputs)| {
        let mut produced = Vec::with_capacity(inputs.len());
        let mut last_compressor = None;
        while let Some(((run, zlib), _)) = compressed.next_if(|(_, job)| job.stream == s) {
            produced.extend(run);
            last_compressor = zlib;
        }
        s += 1;
        let mut produced = produced.into_iter();
        let chunks: Vec<_> = (0..inputs.len())
            .map(|_| {
                let chunk = produced.next().unwrap_or(Err(()));
                // A chunk after one the client will not get cannot be inflated.
                let chunk = if stream.broken { Err(()) } else { chunk };
                stream.broken |= chunk.is_err();
                chunk
            })
            .collect();
        // A stream with nothing in this update keeps its own compressor.
        if !stream.broken && !inputs.is_empty() {
            stream.started = true;
            stream.window = window_before(&stream.window, inputs, inputs.len());
            // The last run's compressor has seen what the client inflated last; without it
            // (a failed run), the next use makes one primed with the window.
            stream.zlib = last_compressor;
            stream.level = level.min(9);
        }
        chunks
    })
}

/// The stream as one rect's payload is written: compresses what it is given and keeps the
/// window up to date.
pub(super) struct Deflater<'a> {
    zlib: &'a mut Compress,
    window: &'a mut Vec<u8>,
    started: &'a mut bool,
}

impl Deflater<'_> {
    /// Feeds `input` to the stream, appending what it produces (after the zlib header, the
    /// first time) to `out`; see [`deflate`].
    pub(super) fn write(&mut self, input: &[u8], out: &mut Vec<u8>, flush: FlushCompress) -> Result<(), ()> {
        if !*self.started {
            out.extend_from_slice(&ZLIB_HEADER);
            *self.started = true;
        }
        remember(self.window, input);
        deflate(self.zlib, input, out, flush)
    }
}

/// A raw deflate compressor at `level`, primed with `window` (the client's inflate window).
fn primed(level: u8, window: &[u8]) -> Result<Compress, ()> {
    let mut zlib = Compress::new(Compression::new(u32::from(level)), false);
    if !window.is_empty() {
        zlib.set_dictionary(window).map_err(|_| ())?;
    }
    Ok(zlib)
}

/// How much of a stream's `total` input one parallel job takes: an equal share per worker, so
/// a large stream makes at most one run per worker and no more runs are primed than that (a
/// primed run costs a new compressor, 256 KiB of fresh memory zeroed, and the hashing of its
/// window: a 720p desktop's 700 KB of Tight palette indices made six runs of 128 KiB, and
/// makes two on two workers), but at least [`MIN_RUN`].
fn run_size(total: usize, workers: usize) -> usize {
    total.div_ceil(workers.max(1)).max(MIN_RUN)
}

/// Consecutive chunks of at least `size` bytes of input together (the last run may be
/// smaller), as ranges of `inputs`: what one parallel job compresses. Ending a run at the
/// boundary nearest to `size` would even the runs out, but could leave a small last run that
/// pays a primed compressor of its own.
fn runs<'a>(inputs: &'a [&[u8]], size: usize) -> impl Iterator<Item = Range<usize>> + 'a {
    let mut start = 0;
    std::iter::from_fn(move || {
        let first = start;
        let mut bytes = 0;
        while start < inputs.len() && (start == first || bytes < size) {
            bytes += inputs[start].len();
            start += 1;
        }
        (start > first).then_some(first..start)
    })
}

/// A compressor at `level` primed with `window`: `spare` reset when it was made at that level,
/// else a new one.
fn reprimed(spare: Option<(Compress, u8)>, level: u8, window: &[u8]) -> Result<Compress, ()> {
    match spare {
        Some((mut zlib, made_at)) if made_at == level => {
            zlib.reset();
            if !window.is_empty() {
                zlib.set_dictionary(window).map_err(|_| ())?;
            }
            Ok(zlib)
        }
        _ => primed(level, window),
    }
}

/// `inputs` compressed by `zlib`, each chunk sync-flushed on its own, the first after the zlib
/// header when `header`.
fn compress_run(zlib: &mut Compress, header: bool, inputs: &[&[u8]]) -> Result<Vec<Vec<u8>>, ()> {
    let mut chunks = Vec::with_capacity(inputs.len());
    for (i, input) in inputs.iter().enumerate() {
        let mut out = Vec::with_capacity(deflate_bound(input.len()) + ZLIB_HEADER.len());
        if header && i == 0 {
            out.extend_from_slice(&ZLIB_HEADER);
        }
        deflate(zlib, input, &mut out, FlushCompress::Sync)?;
        chunks.push(out);
    }
    Ok(chunks)
}

/// Keeps at least the last [`WINDOW`] bytes of what went through the stream ([`tail`] is
/// the window). Up to twice that is kept, so a run of small chunks (Tight's palette rects)
/// costs their own copy each, not a window's: the front is dropped only once in a while.
fn remember(window: &mut Vec<u8>, input: &[u8]) {
    if input.len() >= WINDOW {
        window.clear();
        window.extend_from_slice(&input[input.len() - WINDOW..]);
        return;
    }
    if window.len() + input.len() > 2 * WINDOW {
        window.drain(..window.len() + input.len() - WINDOW);
    }
    window.extend_from_slice(input);
}

/// The last [`WINDOW`] bytes of what [`remember`] kept: what the client's inflater holds.
fn tail(window: &[u8]) -> &[u8] {
    &window[window.len().saturating_sub(WINDOW)..]
}

/// The last [`WINDOW`] bytes of `window` followed by `inputs[..i]`: what the client has
/// inflated just before input `i`.
fn window_before(window: &[u8], inputs: &[&[u8]], i: usize) -> Vec<u8> {
    let mut pieces: Vec<&[u8]> = Vec::new();
    let mut len = 0;
    for &piece in inputs[..i].iter().rev().chain([&window]) {
        let take = piece.len().min(WINDOW - len);
        pieces.push(&piece[piece.len() - take..]);
        len += take;
        if len == WINDOW {
            break;
        }
    }
    let mut bytes = Vec::with_capacity(len);
    for piece in pieces.iter().rev() {
        bytes.extend_from_slice(piece);
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prepared_stream_sends_what_a_lazy_one_sends_and_is_prepared_once() {
        let input = b"the first update: some data some data some data".repeat(50);
        let first = |stream: &mut ZlibStream| {
            let mut out = Vec::new();
            stream.at_level(3).unwrap().write(&input, &mut out, FlushCompress::Sync).unwrap();
            out
        };
        let (mut prepared, mut lazy) = (ZlibStream::new(), ZlibStream::new());
        prepared.prepare(3);
        assert!(prepared.zlib.is_some() && prepared.level == 3 && !prepared.started);
        assert_eq!(first(&mut prepared), first(&mut lazy));
        // A later SetEncodings (another level) leaves the running stream's compressor alone:
        // only the next rect's level change makes one, primed with the window.
        prepared.prepare(9);
        assert_eq!(prepared.level, 3);
        let mut broken = ZlibStream::new();
        broken.broken = true;
        broken.prepare(3);
        assert!(broken.zlib.is_none());
    }

    #[test]
    fn level_changes_keep_one_stream_at_the_level_asked_for() {
        let mut stream = ZlibStream::new();
        let mut out = Vec::new();
        let mut sent = Vec::new();
        for (i, wanted) in [3, 9, 0, 1, 5, 5, 2, 7].into_iter().enumerate() {
            let input = format!("update {i}: some data some data some data");
            stream.at_level(wanted).unwrap().write(input.as_bytes(), &mut out, FlushCompress::Sync).unwrap();
            assert_eq!(stream.level, wanted);
            sent.extend_from_slice(input.as_bytes());
        }
        let mut inflater = flate2::Decompress::new(true);
        let mut inflated = Vec::with_capacity(sent.len() + 64);
        inflater.decompress_vec(&out, &mut inflated, flate2::FlushDecompress::Sync).unwrap();
        assert_eq!(inflated, sent, "one zlib stream across every level");
    }

    use super::super::workers::{ScopedThreads, Serial};
    use flate2::{Decompress, FlushDecompress};

    /// Inflates one chunk with the client's one inflater and checks that it ends with a sync
    /// flush and that the inflater consumed exactly it.
    fn inflate_chunk(inflater: &mut Decompress, chunk: &[u8], expected: &[u8]) {
        assert_eq!(&chunk[chunk.len() - 4..], [0, 0, 0xff, 0xff], "sync flush marker");
        let before = inflater.total_in();
        let mut out = Vec::with_capacity(expected.len() + 64);
        inflater.decompress_vec(chunk, &mut out, FlushDecompress::Sync).unwrap();
        assert_eq!(inflater.total_in() - before, chunk.len() as u64, "the client consumed exactly the chunk");
        assert!(out == expected, "the chunk inflates to its input");
    }

    /// Chunks compressed on the stream's own compressor and in parallel (two streams at once,
    /// on more workers than chunks and fewer), at levels zlib-rs cannot switch between in place:
    /// each stream's chunks are one zlib stream, inflated by one inflater per stream, never reset.
    #[test]
    fn chunks_serial_and_parallel_continue_each_stream_across_levels() {
        let (mut first, mut second) = (ZlibStream::new(), ZlibStream::new());
        let (mut inflate_first, mut inflate_second) = (Decompress::new(true), Decompress::new(true));
        // (level, parallel on this many workers), as Tight's full-colour stream might see them.
        let steps = [(3, 0), (3, 2), (6, 3), (4, 0), (9, 2), (7, 5), (0, 0), (1, 2), (9, 0), (2, 1), (2, 2), (2, 3)];
        for (step, (level, workers)) in steps.into_iter().enumerate() {
            // Repeats within and across chunks, so primed chunks refer back into earlier ones; in
            // parallel the sizes make three runs: [0], [1, 2], [3].
            let inputs: Vec<Vec<u8>> = (0..4u32)
                .zip([150_000, 20_000, 120_000, 20_000])
                .map(|(chunk, len)| {
                    (0..len).map(|j| ((j * 7 + chunk * 3 + step as u32 * 13) % 251) as u8 / 4).collect()
                })
                .collect();
            let inputs: Vec<&[u8]> = inputs.iter().map(Vec::as_slice).collect();
            let (chunks_first, chunks_second) = if workers == 0 {
                (first.compress_chunks(level, &inputs), second.compress_chunks(9 - level, &inputs[..1]))
            } else {
                let batches = [(&mut first, level, inputs.as_slice()), (&mut second, 9 - level, &inputs[..1])];
                let [a, b] = compress_chunks_parallel(&ScopedThreads(workers), batches);
                (a, b)
            };
            assert_eq!((chunks_first.len(), chunks_second.len()), (4, 1));
            for (chunk, input) in chunks_first.iter().zip(&inputs) {
                inflate_chunk(&mut inflate_first, chunk.as_ref().unwrap(), input);
            }
            inflate_chunk(&mut inflate_second, chunks_second[0].as_ref().unwrap(), inputs[0]);
        }
    }

    #[test]
    fn a_parallel_update_continues_on_the_streams_own_compressor_and_keeps_its_last() {
        // Two streams fed alike, one in parallel: a run that needs no priming (a stream's first)
        // is compressed by the stream's own compressor, and the compressor of its last run is
        // the one the next update continues on, so the bytes equal the serial stream's.
        let (mut parallel, mut serial) = (ZlibStream::new(), ZlibStream::new());
        let input = |seed: u32| -> Vec<u8> { (0..30_000u32).map(|j| ((j * 7 + seed) % 251) as u8 / 4).collect() };
        for seed in 0..4 {
            let (a, b) = (input(seed), input(seed + 100));
            let inputs: Vec<&[u8]> = vec![&a, &b];
            let expected = serial.compress_chunks(6, &inputs);
            let got = if seed == 0 {
                parallel.compress_chunks(6, &inputs)
            } else {
                let [got] = compress_chunks_parallel(&ScopedThreads(2), [(&mut parallel, 6, inputs.as_slice())]);
                got
            };
            assert_eq!(got, expected, "update {seed}");
        }
    }

    #[test]
    fn the_window_is_the_last_32_kib_whatever_the_chunk_sizes() {
        let mut window = Vec::new();
        let mut all = Vec::new();
        for (i, len) in
            [10, 20_000, 300, 16_000, 1, 40_000, 5, 32_767, 2, 60_000].into_iter().cycle().take(60).enumerate()
        {
            let chunk: Vec<u8> = (0..len).map(|j| (i * 31 + j * 7) as u8).collect();
            remember(&mut window, &chunk);
            all.extend_from_slice(&chunk);
            assert_eq!(tail(&window), &all[all.len().saturating_sub(WINDOW)..], "after chunk {i}");
            assert!(window.len() <= 2 * WINDOW);
        }
    }

    #[test]
    fn runs_gather_small_chunks() {
        // The runs of chunks of these sizes, as (first, end).
        let runs_of = |sizes: &[usize]| {
            let inputs: Vec<Vec<u8>> = sizes.iter().map(|&len| vec![0; len]).collect();
            let inputs: Vec<&[u8]> = inputs.iter().map(Vec::as_slice).collect();
            runs(&inputs, MIN_RUN).map(|run| (run.start, run.end)).collect::<Vec<_>>()
        };
        assert_eq!(runs_of(&[]), []);
        assert_eq!(runs_of(&[10]), [(0, 1)]);
        assert_eq!(runs_of(&[MIN_RUN, 1, MIN_RUN - 1, 5, 7]), [(0, 1), (1, 3), (3, 5)]);
        assert_eq!(runs_of(&[MIN_RUN * 2, MIN_RUN * 2]), [(0, 1), (1, 2)]);
        // A stream's input is shared out evenly, a run per worker, but never below MIN_RUN.
        assert_eq!(run_size(8 * MIN_RUN, 2), 4 * MIN_RUN);
        assert_eq!(run_size(8 * MIN_RUN + 1, 4), 2 * MIN_RUN + 1);
        assert_eq!(run_size(MIN_RUN, 4), MIN_RUN);
        assert_eq!(run_size(10, 0), MIN_RUN);
    }

    #[test]
    fn output_larger_than_the_first_reservation() {
        // Incompressible input at level 0 exceeds the input size.
        let input: Vec<u8> = (0..300_000u32).map(|i| (i.wrapping_mul(2654435761) >> 24) as u8).collect();
        let mut stream = ZlibStream::new();
        let mut inflater = Decompress::new(true);
        let serial = stream.compress_chunks(0, &[&input]).pop().unwrap().unwrap();
        assert!(serial.len() > input.len());
        inflate_chunk(&mut inflater, &serial, &input);
        let [parallel] = compress_chunks_parallel(&ScopedThreads(2), [(&mut stream, 0, &[&input[..], &input[..]][..])]);
        for chunk in parallel {
            inflate_chunk(&mut inflater, &chunk.unwrap(), &input);
        }
    }

    #[test]
    fn a_broken_stream_compresses_nothing_more() {
        let mut stream = ZlibStream::new();
        stream.broken = true;
        assert_eq!(stream.compress_chunks(6, &[b"abc"]), [Err(())]);
        let [chunks] = compress_chunks_parallel(&Serial, [(&mut stream, 6, &[&b"abc"[..], b"def"][..])]);
        assert_eq!(chunks, [Err(()), Err(())]);
        assert!(!stream.started, "no header went out");
    }
}

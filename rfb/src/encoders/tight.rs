//! Tight (7), encoded the way TigerVNC's server does it (reference §B3, §B4, §C3).
//!
//! Every rect is cut into sub-rects at most 2048 wide and 65536 pixels in area. When the client
//! listed LastRect, large single-colour areas are first found and sent as fill rects
//! (`tight/solid.rs`). Each sub-rect is then analysed (`tight/palette.rs`) and sent as
//!
//! * a fill (1 colour): control byte `0x80` + one TPIXEL;
//! * a mono bitmap (2 colours): basic compression on zlib stream 1, palette filter, 1 bit per
//!   pixel, background (the more frequent colour) = index 0;
//! * an indexed rect (3..=max colours): stream 2, palette filter, 1 byte per pixel; 8 bpp
//!   clients get a full-colour rect instead, as TigerVNC does;
//! * full colour: JPEG (`0x90`) when the client sent a quality level and takes at least 16 bpp,
//!   else basic compression with the copy filter on stream 0.
//!
//! Never emitted: basic compression without zlib (`0xA`/`0xE`, needs -317), the gradient filter
//! and TightPNG. Every rect's zlib data ends with a sync flush, so the client decodes it without
//! waiting for later data; data shorter than 12 bytes is sent uncompressed.
//!
//! The four zlib streams are `deflate.rs`'s, as ZRLE's and Zlib's: a level change continues the
//! stream (a new compressor primed with its window), and a large rect's sub-rects are
//! compressed in parallel, each run of them primed with what the client inflated just before
//! it. Stream reset bits (control byte bits 0-3) are set only after a zlib failure, unlike
//! TigerVNC, which never sets them: the stream is then recreated, and the next Tight rect tells
//! the client to reset its inflater too.

pub(super) mod palette;
pub mod passthrough;
mod pixels;
mod solid;

use super::classify;
use super::deflate::{self, ZlibStream};
use super::jpeg_codec::{self as jpeg, quality_for_level};
use super::shared::{JpegKey, SharedEncodings};
use super::workers::{self, Workers};
use super::{EncodeParams, Encoder};
use crate::encoding::{ClientEncodings, RAW, TIGHT};
use crate::frame::{Frame, Rect};
use crate::messages::server::write_rect_header;
use crate::pixel_format::PixelConverter;

pub use super::jpeg_codec::Subsampling;

use palette::{Analysis, Palette};
use pixels::TPixel;
use solid::Part;

/// Widest rect sent; the spec's limit and TigerVNC's `SubRectMaxWidth`.
pub const MAX_RECT_WIDTH: u16 = 2048;
/// Largest rect area sent (TigerVNC `SubRectMaxArea`, libvncserver `TIGHT_MAX_RECT_SIZE`).
pub const MAX_RECT_AREA: usize = 65536;

/// Data shorter than this is sent as is, without a length or zlib (the spec's rule; TigerVNC:
/// "This value should not be changed, doing so will break compatibility").
const MIN_TO_COMPRESS: usize = 12;
/// The largest value a compact length can carry (22 bits).
const MAX_COMPACT_LEN: usize = (1 << 22) - 1;

const CTL_FILL: u8 = 0x80;
const CTL_JPEG: u8 = 0x90;
/// Basic compression: a filter-id byte follows the control byte.
const CTL_EXPLICIT_FILTER: u8 = 0x40;
const FILTER_PALETTE: u8 = 1;

/// zlib stream ids (TigerVNC's and libvncserver's assignment; stream 3 stays unused).
const STREAM_FULL_COLOUR: usize = 0;
const STREAM_MONO: usize = 1;
const STREAM_INDEXED: usize = 2;

/// The largest palette Tight can carry.
const MAX_PALETTE: usize = 256;

/// zlib levels per compression level, as {indexed, mono, full colour} (TigerVNC `conf[]`).
const ZLIB_LEVELS: [[u8; 3]; 10] =
    [[0, 0, 0], [1, 1, 1], [3, 3, 2], [5, 5, 2], [6, 7, 3], [7, 8, 4], [7, 8, 5], [8, 9, 6], [9, 9, 7], [9, 9, 9]];
/// What a client that sent no compression level gets.
const DEFAULT_COMPRESS_LEVEL: u8 = 2;

/// The zlib level of each stream (by id) at the client's compression level.
fn stream_levels(compress_level: Option<u8>) -> [u8; 4] {
    let level = compress_level.unwrap_or(DEFAULT_COMPRESS_LEVEL).min(9);
    let [indexed, mono, full_colour] = ZLIB_LEVELS[usize::from(level)];
    let mut levels = [full_colour; 4];
    levels[STREAM_MONO] = mono;
    levels[STREAM_INDEXED] = indexed;
    levels
}

/// A connection's Tight encoder: four zlib streams (stream 3 unused) and one [`Lane`] per
/// worker.
///
/// An update is encoded in three steps, so that the costly part runs on every core while each
/// zlib stream still sees its data in the order the client decodes it:
/// 1. each lane analyses its band of the rect (solid areas, palettes, JPEG, filtered pixel data)
///    into [`Piece`]s, the bands in parallel;
/// 2. the pieces' data is compressed: for a rect large enough to be cut into bands, runs of
///    pieces on all workers, each run primed with what the client inflated from its stream
///    before it ([`deflate::compress_chunks_parallel`]); else each stream compresses its pieces
///    in order on its own compressor, the streams side by side;
/// 3. the pieces are written in band order.
///
/// With one worker there is one band, and the output is what a serial encoder writes.
pub struct TightEncoder {
    streams: [ZlibStream; 4],
    /// Streams recreated after a zlib failure: the next Tight rect tells the client to reset
    /// them (control byte bits 0-3).
    pending_reset: u8,
    lanes: Vec<Lane>,
    /// Rects written as JPEG since the last [`Self::take_lossy`].
    lossy: Vec<Rect>,
}

/// What one worker needs to analyse a band: its own palette, JPEG compressor and scratch space.
struct Lane {
    palette: Palette,
    /// Created on the first JPEG rect; `Err` once creating it failed (then zlib is used).
    jpeg: Option<Result<jpeg::JpegCompressor, ()>>,
    parts: Vec<Part>,
    search: Vec<Rect>,
    /// The band's pieces, in order.
    pieces: Vec<Piece>,
}

/// One Tight rect of an update, between analysis and writing.
struct Piece {
    rect: Rect,
    body: Body,
}

enum Body {
    /// Written as it is after the control byte (`ctl`, to which reset bits are added): a fill
    /// colour, a JPEG with its length, or basic data too short to compress.
    Ready { ctl: u8, rest: Vec<u8> },
    /// Basic compression: `prefix` (control byte, filter, palette), then `data` compressed on
    /// `stream`; step 2 replaces `data` with the compressed bytes.
    Basic { stream: usize, prefix: Vec<u8>, data: Vec<u8>, outcome: Outcome },
}

/// What compressing a [`Body::Basic`] piece did.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Pending,
    Compressed,
    /// zlib failed or the data outgrew a compact length: the rect goes as Raw.
    Failed,
}

impl std::fmt::Debug for TightEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TightEncoder").field("pending_reset", &self.pending_reset).finish_non_exhaustive()
    }
}

impl Default for TightEncoder {
    fn default() -> Self {
        Self::new()
    }
}

/// What the client's SetEncodings and pixel format mean for one `encode` call.
struct Settings<'a> {
    converter: &'a PixelConverter,
    tpixel: TPixel,
    /// zlib level of each stream.
    levels: [u8; 4],
    /// Palette limit = area / divisor, unless JPEG sets a fixed limit.
    divisor: usize,
    /// JPEG quality and subsampling when full-colour rects go as JPEG.
    jpeg: Option<(u8, Subsampling)>,
    /// The fixed palette limit that applies while JPEG is active.
    jpeg_max_colours: usize,
    /// 8 bpp clients get full colour instead of indexed rects (TigerVNC).
    indexed: bool,
    shared: Option<(u64, &'a dyn SharedEncodings)>,
}

impl<'a> Settings<'a> {
    fn new(params: &EncodeParams<'a>) -> Settings<'a> {
        let format = params.converter.client_format();
        let compress_level = params.encodings.compress_level.map(|l| l.min(9));
        let level = compress_level.unwrap_or(DEFAULT_COMPRESS_LEVEL);
        let jpeg = match params.encodings.quality_level {
            Some(q) if format.bits_per_pixel >= 16 => Some(quality_for_level(q)),
            _ => None,
        };
        Settings {
            converter: params.converter,
            tpixel: TPixel::for_converter(params.converter),
            levels: stream_levels(compress_level),
            // TigerVNC `EncodeManager::writeSubRect`.
            divisor: (usize::from(level) * 8).max(4),
            jpeg,
            jpeg_max_colours: classify::colour_limit(compress_level),
            indexed: format.bits_per_pixel > 8,
            shared: params.shared,
        }
    }

    /// The zlib level of `stream`.
    fn zlib_level(&self, stream: usize) -> u8 {
        self.levels.get(stream).copied().unwrap_or(self.levels[STREAM_FULL_COLOUR])
    }

    /// The most colours a sub-rect of `area` pixels may have to be sent with a palette.
    fn max_colours(&self, area: usize) -> usize {
        if !self.indexed {
            // Only a fill or a mono bitmap can come of a palette, so the analysis stops at the
            // third colour instead of counting colours it would throw away (a 720p desktop for
            // a bgr233 viewer: 16% fewer instructions, the same bytes).
            return 2;
        }
        let limit = if self.jpeg.is_some() { self.jpeg_max_colours } else { area / self.divisor };
        limit.clamp(2, MAX_PALETTE)
    }
}

impl TightEncoder {
    pub fn new() -> TightEncoder {
        TightEncoder { streams: Default::default(), pending_reset: 0, lanes: Vec::new(), lossy: Vec::new() }
    }

    /// Makes the streams' compressors at the client's levels ahead of the first update
    /// ([`ZlibStream::prepare`]).
    pub fn prepare(&mut self, encodings: &ClientEncodings) {
        let levels = stream_levels(encodings.compress_level);
        for (stream, level) in self.streams.iter_mut().zip(levels).take(STREAM_INDEXED + 1) {
            stream.prepare(level);
        }
    }

    /// The rects written as JPEG since the last call.
    pub fn take_lossy(&mut self) -> Vec<Rect> {
        std::mem::take(&mut self.lossy)
    }

    /// Step 1: analyses `rect` into pieces, in bands spread over `workers` when it is large.
    /// Returns whether the rect was cut into bands.
    fn analyse(&mut self, frame: &Frame, rect: &Rect, solid_search: bool, s: &Settings, workers: &dyn Workers) -> bool {
        let bands = workers::bands(rect, workers);
        while self.lanes.len() < bands.len() {
            self.lanes.push(Lane::new());
        }
        let lanes = &mut self.lanes[..bands.len()];
        if let [lane] = lanes {
            lane.analyse(frame, rect, solid_search, s);
            return false;
        }
        let tasks = lanes
            .iter_mut()
            .zip(bands)
            .map(|(lane, band)| -> Box<dyn FnOnce() + Send + '_> {
                Box::new(move || lane.analyse(frame, &band, solid_search, s))
            })
            .collect();
        workers.run_all(tasks);
        true
    }

    /// Step 2: compresses the basic pieces' data, runs of pieces on all workers when `parallel`
    /// (a large update: the priming pays off), else each stream's pieces in order on its own
    /// compressor, the streams side by side when two or more are large.
    fn compress(&mut self, s: &Settings, workers: &dyn Workers, parallel: bool) {
        let mut by_stream: [Vec<&mut Body>; 4] = Default::default();
        for piece in self.lanes.iter_mut().flat_map(|lane| lane.pieces.iter_mut()) {
            if let Body::Basic { stream, .. } = &piece.body {
                by_stream[*stream].push(&mut piece.body);
            }
        }
        if parallel {
            let inputs = by_stream.each_ref().map(|bodies| bodies.iter().map(|body| body.data()).collect::<Vec<_>>());
            let mut stream = 0;
            let batches = self.streams.each_mut().map(|zlib| {
                stream += 1;
                (zlib, s.zlib_level(stream - 1), inputs[stream - 1].as_slice())
            });
            let chunks = deflate::compress_chunks_parallel(workers, batches);
            for (bodies, chunks) in by_stream.into_iter().zip(chunks) {
                settle(bodies, chunks);
            }
            return;
        }
        // Streams go side by side only when at least two have enough input to pay for a hand-over
        // to another thread: a moved window's few palette and full-colour rects cost more to
        // hand over than to compress (vs_tigervnc steady Tight: 2.2 -> 1.6 ms of CPU per update).
        let worth_a_thread = by_stream
            .iter()
            .filter(|bodies| bodies.iter().map(|body| body.data().len()).sum::<usize>() >= deflate::MIN_RUN)
            .count();
        let mut tasks: Vec<Box<dyn FnOnce() + Send + '_>> = Vec::new();
        for (stream, (zlib, bodies)) in self.streams.iter_mut().zip(by_stream).enumerate() {
            if !bodies.is_empty() {
                let level = s.zlib_level(stream);
                tasks.push(Box::new(move || {
                    let inputs: Vec<&[u8]> = bodies.iter().map(|body| body.data()).collect();
                    let chunks = zlib.compress_chunks(level, &inputs);
                    settle(bodies, chunks);
                }));
            }
        }
        if worth_a_thread < 2 {
            tasks.into_iter().for_each(|task| task());
        } else {
            workers.run_all(tasks);
        }
    }

    /// Step 3: writes the pieces in order and returns how many rects that made.
    fn write(&mut self, frame: &Frame, s: &Settings, out: &mut Vec<u8>) -> usize {
        let mut count = 0;
        for lane in &mut self.lanes {
            for piece in lane.pieces.drain(..) {
                count += 1;
                let rect = &piece.rect;
                match piece.body {
                    Body::Ready { ctl, rest } => {
                        if ctl == CTL_JPEG {
                            self.lossy.push(*rect);
                        }
                        write_rect_header(out, rect, TIGHT);
                        out.push(ctl | std::mem::take(&mut self.pending_reset));
                        out.extend_from_slice(&rest);
                    }
                    Body::Basic { stream, outcome: Outcome::Failed, .. } => {
                        // Recreated for the next rect that uses it (which starts with a new zlib
                        // header), and the next Tight rect tells the client to reset its inflater.
                        self.streams[stream] = ZlibStream::new();
                        self.pending_reset |= 1 << stream;
                        write_rect_header(out, rect, RAW);
                        s.converter.convert_rect(frame, rect, out);
                    }
                    Body::Basic { prefix, data, .. } => {
                        write_rect_header(out, rect, TIGHT);
                        let reset = std::mem::take(&mut self.pending_reset);
                        if let Some((ctl, filter)) = prefix.split_first() {
                            out.push(ctl | reset);
                            out.extend_from_slice(filter);
                        }
                        write_compact_len(out, data.len());
                        out.extend_from_slice(&data);
                    }
                }
            }
        }
        count
    }
}

/// Puts each of one stream's compressed `chunks` in its body, in order. From the first chunk that
/// failed or outgrew a compact length on, the stream's rects go as Raw (the stream is recreated
/// as they are written): the client never sees that chunk, so cannot inflate those after it.
fn settle(bodies: Vec<&mut Body>, chunks: Vec<Result<Vec<u8>, ()>>) {
    let mut failed = false;
    let chunks = chunks.into_iter().chain(std::iter::repeat_with(|| Err(())));
    for (body, chunk) in bodies.into_iter().zip(chunks) {
        let Body::Basic { data, outcome, .. } = body else { continue };
        *outcome = match chunk {
            Ok(compressed) if !failed && compressed.len() <= MAX_COMPACT_LEN => {
                *data = compressed;
                Outcome::Compressed
            }
            _ => {
                failed = true;
                Outcome::Failed
            }
        };
    }
}

impl Body {
    /// The data basic compression compresses (nothing for a ready body).
    fn data(&self) -> &[u8] {
        match self {
            Body::Basic { data, .. } => data,
            Body::Ready { .. } => &[],
        }
    }
}

impl Lane {
    fn new() -> Lane {
        Lane { palette: Palette::new(), jpeg: None, parts: Vec::new(), search: Vec::new(), pieces: Vec::new() }
    }

    /// Analyses `rect` into `self.pieces`: solid areas first when `solid_search`, the rest split
    /// into sub-rects.
    fn analyse(&mut self, frame: &Frame, rect: &Rect, solid_search: bool, s: &Settings) {
        if !solid_search {
            for sub in sub_rects(rect) {
                self.sub_rect(frame, &sub, s);
            }
            return;
        }
        let mut parts = std::mem::take(&mut self.parts);
        parts.clear();
        solid::find_solid_areas(frame, rect, &mut self.search, &mut parts);
        for part in &parts {
            match *part {
                Part::Solid(area, colour) => self.push_fill(area, colour, s),
                Part::Rest(area) => {
                    for sub in sub_rects(&area) {
                        self.sub_rect(frame, &sub, s);
                    }
                }
            }
        }
        self.parts = parts;
    }

    /// One sub-rect (width <= 2048, area <= 65536, inside `frame`).
    fn sub_rect(&mut self, frame: &Frame, rect: &Rect, s: &Settings) {
        match self.palette.analyse(frame, rect, s.max_colours(rect.area())) {
            Analysis::Solid(colour) => self.push_fill(*rect, colour, s),
            Analysis::Mono => self.push_palette(frame, rect, s),
            Analysis::Indexed if s.indexed => self.push_palette(frame, rect, s),
            Analysis::Indexed | Analysis::FullColour => {
                if let Some((quality, subsampling)) = s.jpeg
                    && let Some(jpeg) = self.jpeg(frame, rect, quality, subsampling, s)
                {
                    self.pieces.push(Piece { rect: *rect, body: Body::Ready { ctl: CTL_JPEG, rest: jpeg } });
                    return;
                }
                let mut data = Vec::new();
                s.tpixel.write_rect(s.converter, frame, rect, &mut data);
                self.push_basic(rect, STREAM_FULL_COLOUR, vec![(STREAM_FULL_COLOUR as u8) << 4], data);
            }
        }
    }

    fn push_fill(&mut self, rect: Rect, colour: u32, s: &Settings) {
        let mut rest = Vec::with_capacity(4);
        s.tpixel.write(s.converter, colour, &mut rest);
        self.pieces.push(Piece { rect, body: Body::Ready { ctl: CTL_FILL, rest } });
    }

    /// Palette filter with the colours of the last analysis: 2 colours as a mono bitmap on
    /// stream 1, more as 1 byte per pixel on stream 2.
    fn push_palette(&mut self, frame: &Frame, rect: &Rect, s: &Settings) {
        let colours = self.palette.colours();
        let mono = colours.len() == 2;
        let stream = if mono { STREAM_MONO } else { STREAM_INDEXED };
        // The palette holds 2..=256 colours, so `len - 1` fits in a byte.
        let last_index = colours.len().saturating_sub(1).min(MAX_PALETTE - 1) as u8;
        let mut prefix = vec![CTL_EXPLICIT_FILTER | (stream as u8) << 4, FILTER_PALETTE, last_index];
        for &colour in colours {
            s.tpixel.write(s.converter, colour, &mut prefix);
        }
        let mut data = Vec::new();
        if mono {
            self.palette.write_mono_bitmap(frame, rect, &mut data);
        } else {
            self.palette.write_indices(rect, &mut data);
        }
        self.push_basic(rect, stream, prefix, data);
    }

    /// Basic compression, or the data as it is when shorter than zlib is worth.
    fn push_basic(&mut self, rect: &Rect, stream: usize, prefix: Vec<u8>, data: Vec<u8>) {
        let body = match prefix.split_first() {
            Some((&ctl, filter)) if data.len() < MIN_TO_COMPRESS => {
                let mut rest = filter.to_vec();
                rest.extend_from_slice(&data);
                Body::Ready { ctl, rest }
            }
            _ => Body::Basic { stream, prefix, data, outcome: Outcome::Pending },
        };
        self.pieces.push(Piece { rect: *rect, body });
    }

    /// The rect as a JPEG with its compact length, or None when the codec is unavailable or
    /// fails. With a shared cache, a rect another viewer already compressed is copied, not
    /// compressed again.
    fn jpeg(
        &mut self,
        frame: &Frame,
        rect: &Rect,
        quality: u8,
        subsampling: Subsampling,
        s: &Settings,
    ) -> Option<Vec<u8>> {
        let compressor = self.jpeg.get_or_insert_with(|| jpeg::JpegCompressor::new().ok_or(()));
        let Ok(compressor) = compressor else { return None };
        let mut rest = Vec::new();
        let shared_jpeg;
        let jpeg: &[u8] = match s.shared {
            Some((generation, cache)) => {
                let key = JpegKey { frame: generation, rect: *rect, quality, subsampling };
                let mut compress = || compressor.compress(frame, rect, quality, subsampling).map(<[u8]>::to_vec);
                shared_jpeg = cache.jpeg(key, &mut compress)?;
                &shared_jpeg
            }
            None => compressor.compress(frame, rect, quality, subsampling)?,
        };
        if jpeg.len() > MAX_COMPACT_LEN {
            return None;
        }
        write_compact_len(&mut rest, jpeg.len());
        rest.extend_from_slice(jpeg);
        Some(rest)
    }
}

impl Encoder for TightEncoder {
    fn encode(&mut self, frame: &Frame, rect: &Rect, params: &EncodeParams, out: &mut Vec<u8>) -> usize {
        let rect = rect.intersect(&frame.bounds());
        if rect.is_empty() {
            return 0;
        }
        let s = Settings::new(params);
        // Solid areas are searched for only with LastRect, as TigerVNC does: without it the
        // count must be the plain split's.
        let large = self.analyse(frame, &rect, params.encodings.last_rect, &s, params.workers);
        self.compress(&s, params.workers, large);
        self.write(frame, &s, out)
    }
}

/// Writes Tight fill rects covering `rect` in `rgb` (`0x00RRGGBB`) and returns how many: one,
/// unless `rect` is wider than 2048 or larger than 65536 pixels. For clients that prefer
/// another encoding but listed Tight (TigerVNC sends solid areas as Tight fills to them).
pub fn write_fill_rect(rect: &Rect, rgb: u32, converter: &PixelConverter, out: &mut Vec<u8>) -> usize {
    let tpixel = TPixel::for_converter(converter);
    let mut count = 0;
    for sub in sub_rects(rect) {
        write_rect_header(out, &sub, TIGHT);
        out.push(CTL_FILL);
        tpixel.write(converter, rgb & 0x00ff_ffff, out);
        count += 1;
    }
    count
}

/// Splits `rect` like TigerVNC's `EncodeManager::writeRects`: tiles `min(w, 2048)` wide and
/// `65536 / width` high, row by row. Yields nothing for an empty rect; a rect reaching past
/// coordinate 65535 (where no frame has pixels) is cut there.
pub fn sub_rects(rect: &Rect) -> impl Iterator<Item = Rect> + use<> {
    let rect = Rect::new(rect.x, rect.y, rect.width.min(u16::MAX - rect.x), rect.height.min(u16::MAX - rect.y));
    let tile_w = rect.width.min(MAX_RECT_WIDTH);
    // tile_w >= 1 whenever there is anything to yield; 65536 / 1 does not fit in u16.
    let tile_h = u16::try_from(MAX_RECT_AREA / usize::from(tile_w.max(1))).unwrap_or(u16::MAX);
    let (right, bottom) = (u32::from(rect.x) + u32::from(rect.width), u32::from(rect.y) + u32::from(rect.height));
    let rows = if rect.is_empty() { 0 } else { rect.height.div_ceil(tile_h) };
    (0..rows).flat_map(move |row| {
        let y = u32::from(rect.y) + u32::from(row) * u32::from(tile_h);
        let h = (bottom - y).min(u32::from(tile_h));
        (0..rect.width.div_ceil(tile_w.max(1))).map(move |col| {
            let x = u32::from(rect.x) + u32::from(col) * u32::from(tile_w);
            let w = (right - x).min(u32::from(tile_w));
            // All values lie inside `rect`, whose right and bottom edges are at most 65535.
            Rect::new(x as u16, y as u16, w as u16, h as u16)
        })
    })
}

/// Appends a Tight compact length (1-3 bytes: 7, 7 and 8 bits, low group first); `len` must
/// be at most 2^22 - 1 (larger values are truncated to 22 bits).
pub fn write_compact_len(out: &mut Vec<u8>, len: usize) {
    let len = len & MAX_COMPACT_LEN;
    if len < 0x80 {
        out.push(len as u8);
    } else if len < 0x4000 {
        out.extend_from_slice(&[(len as u8 & 0x7f) | 0x80, (len >> 7) as u8]);
    } else {
        out.extend_from_slice(&[(len as u8 & 0x7f) | 0x80, ((len >> 7) as u8 & 0x7f) | 0x80, (len >> 14) as u8]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoding::ClientEncodings;
    use crate::pixel_format::PixelFormat;

    #[test]
    fn compact_lengths() {
        let enc = |len| {
            let mut out = Vec::new();
            write_compact_len(&mut out, len);
            out
        };
        assert_eq!(enc(0), [0]);
        assert_eq!(enc(127), [0x7f]);
        assert_eq!(enc(128), [0x80, 0x01]);
        assert_eq!(enc(10000), [0x90, 0x4e]);
        assert_eq!(enc(16383), [0xff, 0x7f]);
        assert_eq!(enc(16384), [0x80, 0x80, 0x01]);
        assert_eq!(enc(MAX_COMPACT_LEN), [0xff, 0xff, 0xff]);
    }

    #[test]
    fn split_like_tigervnc() {
        let all = |r: Rect| sub_rects(&r).collect::<Vec<_>>();
        assert_eq!(all(Rect::new(5, 6, 100, 100)), [Rect::new(5, 6, 100, 100)]);
        assert!(all(Rect::new(5, 6, 0, 100)).is_empty());
        assert!(all(Rect::new(5, 6, 100, 0)).is_empty());
        let tiles = all(Rect::new(10, 20, 2500, 40));
        assert_eq!(
            tiles,
            [
                Rect::new(10, 20, 2048, 32),
                Rect::new(2058, 20, 452, 32),
                Rect::new(10, 52, 2048, 8),
                Rect::new(2058, 52, 452, 8)
            ]
        );
        let tiles = all(Rect::new(0, 0, 300, 300));
        assert_eq!(tiles, [Rect::new(0, 0, 300, 218), Rect::new(0, 218, 300, 82)]);
        // 1 px wide: 65536 rows per tile would overflow u16; the rect is shorter anyway.
        assert_eq!(all(Rect::new(0, 0, 1, 65535)), [Rect::new(0, 0, 1, 65535)]);
        assert!(all(Rect::new(65535, 65535, 1, 1)).is_empty());
        assert_eq!(all(Rect::new(65000, 7, 2000, 1)), [Rect::new(65000, 7, 535, 1)]);
        let big = all(Rect::new(0, 0, 65535, 65535));
        assert_eq!(big.iter().map(Rect::area).sum::<usize>(), 65535 * 65535);
        assert!(big.iter().all(|r| r.width <= MAX_RECT_WIDTH && r.area() <= MAX_RECT_AREA));
    }

    #[test]
    fn settings_follow_tigervnc() {
        // (zlib levels by stream id, palette divisor, JPEG, max colours for 256 px, for 10 px,
        // for 64k px)
        let settings = |format: PixelFormat, list: Vec<i32>| {
            let converter = PixelConverter::new(format);
            let encodings = ClientEncodings::from_list(list);
            let s = Settings::new(&EncodeParams {
                converter: &converter,
                encodings: &encodings,
                shared: None,
                workers: &crate::encoders::workers::Serial,
            });
            (
                [0, 1, 2, 3].map(|stream| s.zlib_level(stream)),
                s.divisor,
                s.jpeg,
                [256, 10, 65536].map(|area| s.max_colours(area)),
                s.indexed,
            )
        };
        let native = PixelFormat::NATIVE;
        assert_eq!(settings(native, vec![TIGHT]), ([2, 3, 3, 2], 16, None, [16, 2, 256], true));
        assert_eq!(settings(native, vec![TIGHT, -256]), ([0, 0, 0, 0], 4, None, [64, 2, 256], true));
        assert_eq!(settings(native, vec![TIGHT, -247]), ([9, 9, 9, 9], 72, None, [3, 2, 256], true));
        let jpeg = settings(native, vec![TIGHT, -32 + 8, -256 + 1]);
        assert_eq!(jpeg, ([1, 1, 1, 1], 8, Some((92, Subsampling::S444)), [24, 24, 24], true));
        let jpeg = settings(native, vec![TIGHT, -32]);
        assert_eq!(jpeg, ([2, 3, 3, 2], 16, Some((15, Subsampling::S420)), [96, 96, 96], true));
        // 8 bpp: no JPEG, no indexed rects, so palettes of at most two colours.
        let low = settings(PixelFormat::BGR233, vec![TIGHT, -23]);
        assert_eq!((low.2, low.3, low.4), (None, [2, 2, 2], false));
    }

    #[test]
    fn fill_rect_helper_splits_wide_rects() {
        let converter = PixelConverter::new(PixelFormat::NATIVE);
        let mut out = Vec::new();
        assert_eq!(write_fill_rect(&Rect::new(0, 0, 4, 4), 0xff12_3456, &converter, &mut out), 1);
        assert_eq!(out, [0, 0, 0, 0, 0, 4, 0, 4, 0, 0, 0, 7, 0x80, 0x12, 0x34, 0x56]);
        out.clear();
        assert_eq!(write_fill_rect(&Rect::new(0, 0, 3000, 10), 0, &converter, &mut out), 2);
        assert_eq!(write_fill_rect(&Rect::new(0, 0, 0, 10), 0, &converter, &mut Vec::new()), 0);
    }

    #[test]
    fn pending_resets_go_on_the_next_rect() {
        let mut enc = TightEncoder::new();
        enc.pending_reset = 0b0101;
        let converter = PixelConverter::new(PixelFormat::NATIVE);
        let encodings = ClientEncodings::from_list(vec![TIGHT]);
        let params = EncodeParams {
            converter: &converter,
            encodings: &encodings,
            shared: None,
            workers: &crate::encoders::workers::Serial,
        };
        let frame = Frame::new(1, 1);
        let mut out = Vec::new();
        enc.encode(&frame, &frame.bounds(), &params, &mut out);
        enc.encode(&frame, &frame.bounds(), &params, &mut out);
        assert_eq!((out[12], out[28]), (0x85, 0x80));
    }
}

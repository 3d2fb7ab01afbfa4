//! An independent Tight (7) decoder for tests, written from the RFB protocol description
//! rather than from the encoder: four persistent zlib streams, the reset bits, fill, JPEG,
//! basic compression with the copy and palette filters (mono bitmaps and 1 byte indices),
//! compact lengths and the "under 12 bytes goes uncompressed" rule. Malformed input is an
//! error, never a panic, and never silently accepted: compressed data must inflate to exactly
//! the expected size and be consumed completely.
//!
//! [`TightDecoder::decode_rects`] also walks a sequence of rect headers (Tight and Raw, ending
//! at the data's end or a LastRect pseudo-rect), as the body of a FramebufferUpdate.

use std::io::Cursor;

use flate2::{Decompress, FlushDecompress, Status};
use rfb::PixelFormat;

pub const TIGHT: i32 = 7;
pub const RAW: i32 = 0;
pub const LAST_RECT: i32 = -224;

#[derive(Debug)]
#[allow(dead_code, reason = "the variants' fields are only read through Debug, in failure messages")]
pub enum TightError {
    Truncated {
        needed: usize,
        available: usize,
    },
    /// Compression types the spec leaves unused, or 0xA/0xE (only with -317, never listed here).
    UnexpectedCompression(u8),
    UnknownFilter(u8),
    /// The gradient filter: legal Tight, but this encoder must never send it.
    GradientFilter,
    PaletteIndex {
        index: u8,
        colours: usize,
    },
    Inflate(String),
    /// zlib data did not inflate to exactly the expected size, or was not fully consumed.
    InflatedSize {
        stream: usize,
        expected: usize,
        produced: usize,
        unconsumed: usize,
    },
    Jpeg(String),
    JpegSize {
        expected: (u16, u16),
        actual: (usize, usize),
    },
    UnsupportedEncoding(i32),
    BadRect {
        x: u16,
        y: u16,
        width: u16,
        height: u16,
    },
}

/// How one Tight rect was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Fill,
    Jpeg,
    /// Basic compression with the copy filter (explicit or implied).
    Copy {
        stream: usize,
    },
    /// Basic compression with the palette filter.
    Palette {
        stream: usize,
        colours: usize,
    },
}

/// Decoded pixels, row-major.
#[derive(Debug, Clone, PartialEq)]
pub enum Pixels {
    /// Client pixel values (lossless paths and Raw).
    Client(Vec<u32>),
    /// RGB from a JPEG.
    Rgb(Vec<[u8; 3]>),
}

#[derive(Debug, Clone)]
pub struct DecodedRect {
    pub x: u16,
    pub y: u16,
    pub width: u16,
    pub height: u16,
    pub encoding: i32,
    /// Tight only: the control byte and what it meant.
    pub control: Option<u8>,
    pub method: Option<Method>,
    /// Whether the payload was zlib-compressed (false for fills, JPEG, short data, Raw).
    pub compressed: bool,
    pub pixels: Pixels,
}

/// Reads bytes from the front of a slice, reporting truncation as an error.
struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], TightError> {
        let available = self.data.len() - self.pos;
        if n > available {
            return Err(TightError::Truncated { needed: n, available });
        }
        let bytes = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(bytes)
    }

    fn u8(&mut self) -> Result<u8, TightError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, TightError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn i32(&mut self) -> Result<i32, TightError> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// 1-3 bytes: 7 bits, 7 bits, 8 bits, low first; bit 7 of the first two = more follows.
    fn compact_len(&mut self) -> Result<usize, TightError> {
        let b0 = self.u8()?;
        let mut len = usize::from(b0 & 0x7f);
        if b0 & 0x80 != 0 {
            let b1 = self.u8()?;
            len |= usize::from(b1 & 0x7f) << 7;
            if b1 & 0x80 != 0 {
                len |= usize::from(self.u8()?) << 14;
            }
        }
        Ok(len)
    }
}

pub struct TightDecoder {
    format: PixelFormat,
    streams: [Option<Decompress>; 4],
    /// Compressed bytes fed to each stream since it was (re)started.
    pub stream_input: [u64; 4],
    /// How often each stream was reset by a control byte.
    pub resets: [usize; 4],
}

impl TightDecoder {
    pub fn new(format: PixelFormat) -> TightDecoder {
        TightDecoder { format, streams: Default::default(), stream_input: [0; 4], resets: [0; 4] }
    }

    /// Bytes of a TPIXEL: 3 for true-colour 32 bpp depth 24 with 8-bit channels on byte
    /// boundaries, else the PIXEL size.
    pub fn tpixel_len(&self) -> usize {
        let f = &self.format;
        let byte_channel = |max: u16, shift: u8| max == 255 && shift.is_multiple_of(8);
        if f.true_colour
            && f.bits_per_pixel == 32
            && f.depth == 24
            && byte_channel(f.red_max, f.red_shift)
            && byte_channel(f.green_max, f.green_shift)
            && byte_channel(f.blue_max, f.blue_shift)
        {
            3
        } else {
            usize::from(f.bits_per_pixel / 8)
        }
    }

    /// A PIXEL in the client's byte order.
    fn pixel_value(&self, bytes: &[u8]) -> u32 {
        let mut v = 0u32;
        if self.format.big_endian {
            for &b in bytes {
                v = v << 8 | u32::from(b);
            }
        } else {
            for &b in bytes.iter().rev() {
                v = v << 8 | u32::from(b);
            }
        }
        v
    }

    /// A TPIXEL as a client pixel value.
    fn tpixel_value(&self, bytes: &[u8]) -> u32 {
        if bytes.len() == 3 && self.tpixel_len() == 3 {
            let f = &self.format;
            u32::from(bytes[0]) << f.red_shift
                | u32::from(bytes[1]) << f.green_shift
                | u32::from(bytes[2]) << f.blue_shift
        } else {
            self.pixel_value(bytes)
        }
    }

    /// Parses rect headers and payloads until `data` ends or a LastRect pseudo-rect.
    pub fn decode_rects(&mut self, data: &[u8]) -> Result<Vec<DecodedRect>, TightError> {
        let mut r = Reader { data, pos: 0 };
        let mut rects = Vec::new();
        while r.pos < data.len() {
            let (x, y, width, height) = (r.u16()?, r.u16()?, r.u16()?, r.u16()?);
            let encoding = r.i32()?;
            if encoding == LAST_RECT {
                break;
            }
            if width == 0 || height == 0 {
                return Err(TightError::BadRect { x, y, width, height });
            }
            let rect = match encoding {
                TIGHT => {
                    let (control, method, compressed, pixels) = self.decode_payload(&mut r, width, height)?;
                    DecodedRect {
                        x,
                        y,
                        width,
                        height,
                        encoding,
                        control: Some(control),
                        method: Some(method),
                        compressed,
                        pixels,
                    }
                }
                RAW => {
                    let bpp = usize::from(self.format.bits_per_pixel / 8);
                    let bytes = r.take(usize::from(width) * usize::from(height) * bpp)?;
                    let values = bytes.chunks_exact(bpp).map(|p| self.pixel_value(p)).collect();
                    DecodedRect {
                        x,
                        y,
                        width,
                        height,
                        encoding,
                        control: None,
                        method: None,
                        compressed: false,
                        pixels: Pixels::Client(values),
                    }
                }
                other => return Err(TightError::UnsupportedEncoding(other)),
            };
            rects.push(rect);
        }
        Ok(rects)
    }

    /// Decodes one Tight payload (after the rect header) from the front of `data`; returns
    /// the rect's pixels and the bytes consumed.
    #[allow(dead_code, reason = "for the vs_tigervnc bench's client, which includes this file by path")]
    pub fn decode(&mut self, data: &[u8], width: u16, height: u16) -> Result<(Pixels, usize), TightError> {
        let mut r = Reader { data, pos: 0 };
        let (_, _, _, pixels) = self.decode_payload(&mut r, width, height)?;
        Ok((pixels, r.pos))
    }

    fn decode_payload(
        &mut self,
        r: &mut Reader,
        width: u16,
        height: u16,
    ) -> Result<(u8, Method, bool, Pixels), TightError> {
        let (w, h) = (usize::from(width), usize::from(height));
        let control = r.u8()?;
        for stream in 0..4 {
            if control >> stream & 1 != 0 {
                self.streams[stream] = None;
                self.stream_input[stream] = 0;
                self.resets[stream] += 1;
            }
        }
        let compression = control >> 4;
        let tpixel = self.tpixel_len();
        match compression {
            0x8 => {
                let value = self.tpixel_value(r.take(tpixel)?);
                Ok((control, Method::Fill, false, Pixels::Client(vec![value; w * h])))
            }
            0x9 => {
                let len = r.compact_len()?;
                let jpeg = r.take(len)?;
                let rgb = decode_jpeg(jpeg, width, height)?;
                Ok((control, Method::Jpeg, false, Pixels::Rgb(rgb)))
            }
            c if c & 0x8 == 0 => {
                let stream = usize::from(c & 0x3);
                let filter = if c & 0x4 != 0 { r.u8()? } else { 0 };
                match filter {
                    0 => {
                        let (raw, compressed) = self.read_data(r, stream, w * h * tpixel)?;
                        let values = raw.chunks_exact(tpixel).map(|p| self.tpixel_value(p)).collect();
                        Ok((control, Method::Copy { stream }, compressed, Pixels::Client(values)))
                    }
                    1 => {
                        let colours = usize::from(r.u8()?) + 1;
                        let palette: Vec<u32> =
                            r.take(colours * tpixel)?.chunks_exact(tpixel).map(|p| self.tpixel_value(p)).collect();
                        let row_bytes = if colours == 2 { w.div_ceil(8) } else { w };
                        let (raw, compressed) = self.read_data(r, stream, row_bytes * h)?;
                        let mut values = Vec::with_capacity(w * h);
                        for row in raw.chunks_exact(row_bytes) {
                            for x in 0..w {
                                let index = if colours == 2 { row[x / 8] >> (7 - x % 8) & 1 } else { row[x] };
                                let value = palette
                                    .get(usize::from(index))
                                    .ok_or(TightError::PaletteIndex { index, colours })?;
                                values.push(*value);
                            }
                        }
                        Ok((control, Method::Palette { stream, colours }, compressed, Pixels::Client(values)))
                    }
                    2 => Err(TightError::GradientFilter),
                    other => Err(TightError::UnknownFilter(other)),
                }
            }
            other => Err(TightError::UnexpectedCompression(other)),
        }
    }

    /// `expected` bytes of filtered data: as is when under 12 bytes, else compact length +
    /// zlib data on `stream`, which must inflate to exactly `expected` bytes and be used up.
    fn read_data(&mut self, r: &mut Reader, stream: usize, expected: usize) -> Result<(Vec<u8>, bool), TightError> {
        if expected < 12 {
            return Ok((r.take(expected)?.to_vec(), false));
        }
        let len = r.compact_len()?;
        let input = r.take(len)?;
        let inflater = self.streams[stream].get_or_insert_with(|| Decompress::new(true));
        // Room for more than expected, so surplus data shows up instead of being left behind.
        let mut out = Vec::with_capacity(expected + 64);
        let (in_start, out_start) = (inflater.total_in(), inflater.total_out());
        for _ in 0..4 {
            let consumed = (inflater.total_in() - in_start) as usize;
            let status = inflater
                .decompress_vec(&input[consumed..], &mut out, FlushDecompress::Sync)
                .map_err(|e| TightError::Inflate(e.to_string()))?;
            if status == Status::StreamEnd {
                return Err(TightError::Inflate("zlib stream ended (Z_FINISH) inside a Tight stream".into()));
            }
            let consumed = (inflater.total_in() - in_start) as usize;
            if consumed == input.len() || status == Status::BufError || out.len() == out.capacity() {
                break;
            }
        }
        let consumed = (inflater.total_in() - in_start) as usize;
        let produced = (inflater.total_out() - out_start) as usize;
        self.stream_input[stream] += consumed as u64;
        if produced != expected || consumed != input.len() {
            return Err(TightError::InflatedSize { stream, expected, produced, unconsumed: input.len() - consumed });
        }
        Ok((out, true))
    }
}

fn decode_jpeg(jpeg: &[u8], width: u16, height: u16) -> Result<Vec<[u8; 3]>, TightError> {
    let mut decoder = zune_jpeg::JpegDecoder::new(Cursor::new(jpeg));
    let bytes = decoder.decode().map_err(|e| TightError::Jpeg(format!("{e:?}")))?;
    let info = decoder.info().ok_or_else(|| TightError::Jpeg("no image info".into()))?;
    let actual = (usize::from(info.width), usize::from(info.height));
    if actual != (usize::from(width), usize::from(height)) {
        return Err(TightError::JpegSize { expected: (width, height), actual });
    }
    if bytes.len() != actual.0 * actual.1 * 3 {
        return Err(TightError::Jpeg(format!("{} bytes of RGB for {actual:?}", bytes.len())));
    }
    Ok(bytes.chunks_exact(3).map(|p| [p[0], p[1], p[2]]).collect())
}

/// Checks the SOI/SOF0 markers: a baseline JFIF as Tight's JPEG subencoding requires.
pub fn is_baseline_jpeg(jpeg: &[u8]) -> bool {
    jpeg.starts_with(&[0xff, 0xd8]) && jpeg.windows(2).any(|m| m == [0xff, 0xc0]) && jpeg.ends_with(&[0xff, 0xd9])
}

//! A measuring RFB client for the side-by-side bench: connects to any RFB 3.8 server with
//! security None, sets the pixel format and encodings, requests full and incremental updates,
//! and records per update the bytes received, the wall time and the server's CPU time (all of
//! its threads, from /proc). What it receives is decoded with the rfb test decoders into an
//! RGB framebuffer, so a malformed update is an error rather than a fast result, and
//! [`Client::check`] compares that framebuffer with the picture the server should show.

// rfb's own test decoders (rfb/tests/support/), which its round-trip tests use in full.
#[path = "../../../rfb/tests/support/hextile_decoder.rs"]
pub mod hextile_decoder;
#[path = "../../../rfb/tests/support/tight_decoder.rs"]
pub mod tight_decoder;
#[path = "../../../rfb/tests/support/zlib_decoder.rs"]
pub mod zlib_decoder;
#[path = "../../../rfb/tests/support/zrle_decoder.rs"]
pub mod zrle_decoder;
// The Hextile and Zlib decoders find the shared wire helpers as `super::wire`: zrle_decoder's
// copy, so that all three decode into the same `ClientFramebuffer`.
use zrle_decoder::wire;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::cpu::cpu_time;
use flate2::Decompress;
use image::RgbImage;
use rfb::{PixelFormat, Rect};
use tight_decoder::{Pixels, TightDecoder, TightError};
use zrle_decoder::{ClientFramebuffer, DecodeError, Stats, client_pixel_to_rgb};

use rfb::encoding::DESKTOP_SIZE;
pub use rfb::encoding::{COPY_RECT, HEXTILE, LAST_RECT, RAW, TIGHT, ZLIB, ZRLE};
/// The cursor pseudo-encoding viewers list (Xvnc sends its cursor with it; kvnc has none, so
/// rfb does not name it).
pub const RICH_CURSOR: i32 = -239;

/// TigerVNC's native 32-bit format.
pub const RGB888: PixelFormat = PixelFormat::true_colour(32, 24, false, [255, 255, 255], [16, 8, 0]);

/// One FramebufferUpdate as measured.
#[derive(Debug, Clone, Copy, Default)]
pub struct Update {
    pub bytes: usize,
    /// Request sent → last byte of the update received, minus the client's decoding time.
    pub wall: Duration,
    /// The server's CPU time over the same interval.
    pub server_cpu: Duration,
}

pub struct Client {
    stream: TcpStream,
    width: u16,
    height: u16,
    format: PixelFormat,
    server_pid: u32,
    /// What the client shows.
    rgb: Vec<[u8; 3]>,
    /// Whether any rect so far was JPEG (the comparison is then approximate).
    lossy: bool,
    tight: TightDecoder,
    zrle: Decompress,
    /// The Zlib encoding's stream, which lasts the whole connection like ZRLE's.
    zlib: Decompress,
    scratch: ClientFramebuffer,
    buf: Vec<u8>,
    pos: usize,
    received: usize,
    decoding: Duration,
}

#[derive(Debug)]
pub enum ClientError {
    Io(std::io::Error),
    Protocol(String),
    Tight(TightError),
    Zrle(DecodeError),
    Zlib(zlib_decoder::DecodeError),
    Hextile(hextile_decoder::DecodeError),
}

impl From<std::io::Error> for ClientError {
    fn from(e: std::io::Error) -> Self {
        ClientError::Io(e)
    }
}

type Result<T> = std::result::Result<T, ClientError>;

fn set_pixel_format_message(f: &PixelFormat) -> Vec<u8> {
    let mut m = vec![0, 0, 0, 0, f.bits_per_pixel, f.depth, u8::from(f.big_endian), u8::from(f.true_colour)];
    m.extend(f.red_max.to_be_bytes());
    m.extend(f.green_max.to_be_bytes());
    m.extend(f.blue_max.to_be_bytes());
    m.extend([f.red_shift, f.green_shift, f.blue_shift, 0, 0, 0]);
    m
}

impl Client {
    /// Connects to `addr`, performs the RFB 3.8 handshake with security None (shared), and
    /// sends SetPixelFormat `format` and SetEncodings `encodings`.
    pub fn connect(addr: &str, server_pid: u32, format: PixelFormat, encodings: &[i32]) -> Result<Client> {
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(20)))?;
        let mut client = Client {
            stream,
            width: 0,
            height: 0,
            format,
            server_pid,
            rgb: Vec::new(),
            lossy: false,
            tight: TightDecoder::new(format),
            zrle: Decompress::new(true),
            zlib: Decompress::new(true),
            scratch: ClientFramebuffer::new(0, 0, 0),
            buf: Vec::new(),
            pos: 0,
            received: 0,
            decoding: Duration::ZERO,
        };
        let version = client.take(12)?.to_vec();
        if !version.starts_with(b"RFB 003.") {
            return Err(ClientError::Protocol(format!("not RFB: {version:?}")));
        }
        client.stream.write_all(b"RFB 003.008\n")?;
        let n = usize::from(client.take(1)?[0]);
        let types = client.take(n)?.to_vec();
        if !types.contains(&1) {
            return Err(ClientError::Protocol(format!("no security None among {types:?}")));
        }
        client.stream.write_all(&[1])?;
        let result = client.take(4)?;
        if result != [0, 0, 0, 0] {
            return Err(ClientError::Protocol("security None refused".into()));
        }
        client.stream.write_all(&[1])?; // ClientInit: shared
        let init = client.take(24)?.to_vec();
        client.width = u16::from_be_bytes([init[0], init[1]]);
        client.height = u16::from_be_bytes([init[2], init[3]]);
        let name_len = u32::from_be_bytes([init[20], init[21], init[22], init[23]]) as usize;
        client.take(name_len)?;
        let pixels = usize::from(client.width) * usize::from(client.height);
        client.rgb = vec![[0; 3]; pixels];
        client.scratch = ClientFramebuffer::new(client.width, client.height, 0);
        let mut setup = set_pixel_format_message(&format);
        setup.extend([2, 0]);
        setup.extend((encodings.len() as u16).to_be_bytes());
        setup.extend(encodings.iter().flat_map(|e| e.to_be_bytes()));
        client.stream.write_all(&setup)?;
        Ok(client)
    }

    /// Reads until `n` bytes past the read position are buffered.
    fn fill(&mut self, n: usize) -> Result<()> {
        while self.buf.len() - self.pos < n {
            if self.pos > 0 && (self.pos == self.buf.len() || self.pos > 1 << 20) {
                self.buf.drain(..self.pos);
                self.pos = 0;
            }
            let len = self.buf.len();
            let missing = n - (len - self.pos);
            self.buf.resize(len + missing.max(1 << 16), 0);
            let got = self.stream.read(&mut self.buf[len..]);
            let got = match got {
                Ok(got) => got,
                Err(e) => {
                    self.buf.truncate(len);
                    return Err(e.into());
                }
            };
            self.buf.truncate(len + got);
            if got == 0 {
                return Err(ClientError::Protocol("server closed the connection".into()));
            }
            self.received += got;
        }
        Ok(())
    }

    fn take(&mut self, n: usize) -> Result<&[u8]> {
        self.fill(n)?;
        let start = self.pos;
        self.pos += n;
        Ok(&self.buf[start..start + n])
    }

    /// Reads more data after a decoder found the buffered bytes too short.
    fn more(&mut self) -> Result<()> {
        let have = self.buf.len() - self.pos;
        self.fill(have + 1)
    }

    /// Sends FramebufferUpdateRequest for the whole screen and measures the update that answers
    /// it. `None` if `wait` passed with no update (an incremental request on a still screen;
    /// the request stays outstanding).
    /// A second handle on the connection, for sending input (KeyEvents) from another thread
    /// while this one waits for updates.
    pub fn input(&self) -> Result<TcpStream> {
        Ok(self.stream.try_clone()?)
    }

    pub fn request(&mut self, incremental: bool, wait: Option<Duration>) -> Result<Option<Update>> {
        let mut m = vec![3, u8::from(incremental), 0, 0, 0, 0];
        m.extend(self.width.to_be_bytes());
        m.extend(self.height.to_be_bytes());
        let cpu0 = cpu_time(self.server_pid);
        let start = Instant::now();
        self.stream.write_all(&m)?;
        self.receive(start, cpu0, wait)
    }

    /// Waits for the next FramebufferUpdate (skipping Bell and ServerCutText).
    fn receive(&mut self, start: Instant, cpu0: Duration, wait: Option<Duration>) -> Result<Option<Update>> {
        self.received = self.buf.len() - self.pos;
        self.decoding = Duration::ZERO;
        if let Some(wait) = wait
            && self.buf.len() == self.pos
        {
            self.stream.set_read_timeout(Some(wait))?;
            let first = self.fill(1);
            self.stream.set_read_timeout(Some(Duration::from_secs(20)))?;
            match first {
                Err(ClientError::Io(e))
                    if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) =>
                {
                    return Ok(None);
                }
                other => other?,
            }
        }
        loop {
            match self.take(1)?[0] {
                0 => break,
                2 => continue,
                3 => {
                    let head = self.take(7)?;
                    let len = u32::from_be_bytes([head[3], head[4], head[5], head[6]]) as usize;
                    self.take(len)?;
                }
                other => return Err(ClientError::Protocol(format!("unexpected server message {other}"))),
            }
        }
        let head = self.take(3)?;
        let count = u16::from_be_bytes([head[1], head[2]]);
        for _ in 0..count {
            let h = self.take(12)?;
            let u = |i: usize| u16::from_be_bytes([h[i], h[i + 1]]);
            let rect = Rect::new(u(0), u(2), u(4), u(6));
            let encoding = i32::from_be_bytes([h[8], h[9], h[10], h[11]]);
            if encoding == LAST_RECT {
                break;
            }
            self.rect(rect, encoding)?;
        }
        let wall = start.elapsed().saturating_sub(self.decoding);
        let server_cpu = cpu_time(self.server_pid).saturating_sub(cpu0);
        let bytes = self.received - (self.buf.len() - self.pos);
        Ok(Some(Update { bytes, wall, server_cpu }))
    }

    /// CopyRect: `rect` gets what the framebuffer shows at the source the server names (the
    /// areas may overlap, so the source is read whole first).
    fn copy_rect(&mut self, rect: Rect) -> Result<()> {
        let src = self.take(4)?;
        let (src_x, src_y) = (u16::from_be_bytes([src[0], src[1]]), u16::from_be_bytes([src[2], src[3]]));
        let source = Rect::new(src_x, src_y, rect.width, rect.height);
        if source.intersect(&Rect::new(0, 0, self.width, self.height)) != source {
            return Err(ClientError::Protocol(format!("CopyRect source {source:?} outside the screen")));
        }
        let (width, w) = (usize::from(self.width), usize::from(rect.width));
        let rows: Vec<Vec<[u8; 3]>> = (0..usize::from(rect.height))
            .map(|row| {
                let at = (usize::from(src_y) + row) * width + usize::from(src_x);
                self.rgb[at..at + w].to_vec()
            })
            .collect();
        for (row, line) in rows.iter().enumerate() {
            let at = (usize::from(rect.y) + row) * width + usize::from(rect.x);
            self.rgb[at..at + w].copy_from_slice(line);
        }
        Ok(())
    }

    fn rect(&mut self, rect: Rect, encoding: i32) -> Result<()> {
        let inside = u32::from(rect.x) + u32::from(rect.width) <= u32::from(self.width)
            && u32::from(rect.y) + u32::from(rect.height) <= u32::from(self.height);
        match encoding {
            RICH_CURSOR => {
                let bpp = usize::from(self.format.bits_per_pixel / 8);
                let (w, h) = (usize::from(rect.width), usize::from(rect.height));
                self.take(w * h * bpp + w.div_ceil(8) * h)?;
                return Ok(());
            }
            DESKTOP_SIZE => return Ok(()),
            _ if !inside || rect.area() == 0 => {
                return Err(ClientError::Protocol(format!("rect {rect:?} outside the screen")));
            }
            COPY_RECT => return self.copy_rect(rect),
            _ => {}
        }
        loop {
            let data = &self.buf[self.pos..];
            let started = Instant::now();
            let decoded = match encoding {
                RAW | ZRLE | ZLIB | HEXTILE => {
                    let format = &self.format;
                    let fb = &mut self.scratch;
                    let used = match encoding {
                        RAW => zrle_decoder::decode_raw_rect(format, rect, data, fb).map_err(ClientError::Zrle),
                        ZRLE => {
                            let stats = &mut Stats::default();
                            zrle_decoder::decode_zrle_rect(format, &mut self.zrle, rect, data, fb, stats)
                                .map_err(ClientError::Zrle)
                        }
                        ZLIB => zlib_decoder::decode_zlib_rect(format, &mut self.zlib, rect, data, fb)
                            .map_err(ClientError::Zlib),
                        _ => {
                            let stats = &mut hextile_decoder::Stats::default();
                            hextile_decoder::decode_hextile_rect(format, rect, data, fb, stats)
                                .map_err(ClientError::Hextile)
                        }
                    };
                    match used {
                        Ok(used) => {
                            for y in rect.y..rect.y + rect.height {
                                for x in rect.x..rect.x + rect.width {
                                    let value = self.scratch.get(x, y);
                                    self.rgb[usize::from(y) * usize::from(self.width) + usize::from(x)] =
                                        client_pixel_to_rgb(&self.format, value);
                                }
                            }
                            Some(used)
                        }
                        // Each decoder leaves its state as it was when the data was short.
                        Err(
                            ClientError::Zrle(DecodeError::Truncated(_))
                            | ClientError::Zlib(zlib_decoder::DecodeError::Truncated(_))
                            | ClientError::Hextile(hextile_decoder::DecodeError::Truncated(_)),
                        ) => None,
                        Err(e) => return Err(e),
                    }
                }
                TIGHT => match self.tight.decode(data, rect.width, rect.height) {
                    Ok((pixels, used)) => {
                        let rgb: Vec<[u8; 3]> = match pixels {
                            Pixels::Client(values) => {
                                values.iter().map(|&v| client_pixel_to_rgb(&self.format, v)).collect()
                            }
                            Pixels::Rgb(rgb) => {
                                self.lossy = true;
                                rgb
                            }
                        };
                        for (row, line) in rgb.chunks_exact(usize::from(rect.width)).enumerate() {
                            let at = (usize::from(rect.y) + row) * usize::from(self.width) + usize::from(rect.x);
                            self.rgb[at..at + line.len()].copy_from_slice(line);
                        }
                        Some(used)
                    }
                    Err(TightError::Truncated { .. }) => None,
                    Err(e) => return Err(ClientError::Tight(e)),
                },
                other => return Err(ClientError::Protocol(format!("encoding {other} was not asked for"))),
            };
            self.decoding += started.elapsed();
            match decoded {
                Some(used) => {
                    self.pos += used;
                    return Ok(());
                }
                None => self.more()?,
            }
        }
    }

    /// How the framebuffer compares with `image`: `Ok(psnr dB)` (infinite when exact) if it
    /// shows it within the pixel format's precision (lossless) or at 30 dB or more (JPEG).
    pub fn check(&self, image: &RgbImage) -> std::result::Result<f64, String> {
        if image.dimensions() != (u32::from(self.width), u32::from(self.height)) {
            return Err(format!("picture is {:?}, screen {}x{}", image.dimensions(), self.width, self.height));
        }
        let f = &self.format;
        // One step of the client's channels, in 8-bit units (0 for 8-bit channels).
        let step = |max: u16| if max >= 255 { 0 } else { 255u32.div_ceil(u32::from(max)) };
        let steps = [step(f.red_max), step(f.green_max), step(f.blue_max)];
        let mut squared = 0f64;
        let mut outside = 0usize;
        for (shown, want) in self.rgb.iter().zip(image.pixels()) {
            for c in 0..3 {
                let d = u32::from(shown[c].abs_diff(want.0[c]));
                squared += f64::from(d * d);
                if d > steps[c] {
                    outside += 1;
                }
            }
        }
        let mse = squared / (self.rgb.len() * 3) as f64;
        let psnr = if mse == 0.0 { f64::INFINITY } else { 10.0 * (255.0 * 255.0 / mse).log10() };
        if self.lossy {
            if psnr >= 30.0 { Ok(psnr) } else { Err(format!("JPEG picture at {psnr:.1} dB")) }
        } else if outside == 0 {
            Ok(psnr)
        } else {
            Err(format!("{outside} channel values differ beyond the format's precision ({psnr:.1} dB)"))
        }
    }
}

//! The JPEG marker structure (ITU T.81 annex B): SOI, marker segments with 16-bit lengths up to
//! the first SOS, entropy-coded data in which `FF` is always followed by `00` (stuffing), `D0`-`D7`
//! (restart markers) or more `FF` fill bytes, then possibly more segments and scans, then EOI.
//! Every function here bounds-checks and returns an error on malformed data.

use super::JpegError;

pub const SOF0: u8 = 0xc0;
pub const SOF1: u8 = 0xc1;
pub const DHT: u8 = 0xc4;
pub const SOI: u8 = 0xd8;
pub const EOI: u8 = 0xd9;
pub const SOS: u8 = 0xda;
const JPG: u8 = 0xc8;
const DAC: u8 = 0xcc;
const TEM: u8 = 0x01;
const RST0: u8 = 0xd0;
const RST7: u8 = 0xd7;

/// A start-of-frame marker (SOF0-SOF15 without DHT, JPG and DAC, which share the range).
pub fn is_sof(marker: u8) -> bool {
    (0xc0..=0xcf).contains(&marker) && !matches!(marker, DHT | JPG | DAC)
}

/// SOF markers of Huffman-coded frames (SOF0-3, 5-7); the others are arithmetic-coded.
pub fn is_huffman_sof(marker: u8) -> bool {
    is_sof(marker) && marker < 0xc8
}

/// Markers without a length field.
fn is_standalone(marker: u8) -> bool {
    marker == TEM || (RST0..=RST7).contains(&marker) || marker == SOI || marker == EOI
}

/// One marker segment: `data[start..end]` is the whole segment, `FF` marker and length included;
/// its payload starts at `start + 4`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    pub marker: u8,
    pub start: usize,
    pub end: usize,
}

/// The marker at `pos` (an `FF`, possibly followed by more `FF` fill bytes): the marker byte
/// and the offset after it.
fn marker_at(data: &[u8], mut pos: usize) -> Result<(u8, usize), JpegError> {
    match data.get(pos) {
        Some(0xff) => {}
        Some(&byte) => return Err(JpegError::BadMarker { offset: pos, byte }),
        None => return Err(JpegError::Truncated),
    }
    while data.get(pos + 1) == Some(&0xff) {
        pos += 1;
    }
    match data.get(pos + 1) {
        Some(0) => Err(JpegError::BadMarker { offset: pos + 1, byte: 0 }),
        Some(&marker) => Ok((marker, pos + 2)),
        None => Err(JpegError::Truncated),
    }
}

/// The end of the segment whose marker byte ends at `after` (the 16-bit length counts itself).
fn segment_end(data: &[u8], after: usize) -> Result<usize, JpegError> {
    let len = match data.get(after..after + 2) {
        Some(&[hi, lo]) => u16::from_be_bytes([hi, lo]),
        _ => return Err(JpegError::Truncated),
    };
    if len < 2 {
        return Err(JpegError::BadLength { offset: after, len });
    }
    let end = after + usize::from(len);
    if end > data.len() {
        return Err(JpegError::Truncated);
    }
    Ok(end)
}

/// The offset of the `FF` of the first marker in entropy-coded data starting at `pos`.
fn skip_entropy_data(data: &[u8], mut pos: usize) -> Result<usize, JpegError> {
    loop {
        // memchr: SIMD (NEON on the board); this scan runs over every frame's entropy data.
        let ff = pos + memchr::memchr(0xff, data.get(pos..).unwrap_or_default()).ok_or(JpegError::Truncated)?;
        match data.get(ff + 1) {
            None => return Err(JpegError::Truncated),
            // Stuffed zero, restart marker: still entropy data. Fill byte: look again from it.
            Some(&next) if next == 0 || (RST0..=RST7).contains(&next) => pos = ff + 2,
            Some(0xff) => pos = ff + 1,
            Some(_) => return Ok(ff),
        }
    }
}

/// The marker segments from SOI up to and including the first SOS, in order; standalone
/// markers in between are skipped. Ends after SOS or at the first error.
pub struct HeaderSegments<'a> {
    data: &'a [u8],
    pos: usize,
    done: bool,
}

/// Checks the SOI and returns the segments after it.
pub fn header_segments(data: &[u8]) -> Result<HeaderSegments<'_>, JpegError> {
    if !data.starts_with(&[0xff, SOI]) {
        return Err(if data.len() < 2 { JpegError::Truncated } else { JpegError::NoStart });
    }
    Ok(HeaderSegments { data, pos: 2, done: false })
}

impl HeaderSegments<'_> {
    fn next_segment(&mut self) -> Result<Segment, JpegError> {
        loop {
            let start = self.pos;
            let (marker, after) = marker_at(self.data, start)?;
            match marker {
                EOI => return Err(JpegError::NoScan),
                SOI => return Err(JpegError::BadMarker { offset: after - 1, byte: marker }),
                m if is_standalone(m) => self.pos = after,
                _ => {
                    let end = segment_end(self.data, after)?;
                    self.pos = end;
                    return Ok(Segment { marker, start: after - 2, end });
                }
            }
        }
    }
}

impl Iterator for HeaderSegments<'_> {
    type Item = Result<Segment, JpegError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let segment = self.next_segment();
        self.done = segment.as_ref().map_or(true, |s| s.marker == SOS);
        Some(segment)
    }
}

/// A frame header (SOFn).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    pub marker: u8,
    /// Offset of the segment's `FF`.
    pub start: usize,
    pub precision: u8,
    pub width: u16,
    pub height: u16,
    pub components: u8,
    /// The MCU's size in pixels (8 × the largest sampling factors; 8×8 for one component).
    pub mcu: (u16, u16),
}

/// What comes before the first scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Headers {
    /// The first frame header.
    pub sof: Option<FrameHeader>,
    /// Whether any DHT segment precedes the first SOS.
    pub dht: bool,
    /// The first SOS segment.
    pub sos: Segment,
}

/// Walks the segments from SOI to the first SOS.
pub fn read_headers(data: &[u8]) -> Result<Headers, JpegError> {
    let (mut sof, mut dht) = (None, false);
    for segment in header_segments(data)? {
        let segment = segment?;
        match segment.marker {
            DHT => dht = true,
            SOS => return Ok(Headers { sof, dht, sos: segment }),
            m if is_sof(m) && sof.is_none() => sof = Some(parse_sof(data, &segment)?),
            m if is_sof(m) => return Err(JpegError::BadMarker { offset: segment.start + 1, byte: m }),
            _ => {}
        }
    }
    // The iterator ends with an error or after SOS, both handled above.
    Err(JpegError::NoScan)
}

fn parse_sof(data: &[u8], segment: &Segment) -> Result<FrameHeader, JpegError> {
    // Payload: precision, height, width, component count, 3 bytes per component.
    let payload = data.get(segment.start + 4..segment.end).unwrap_or_default();
    let bad_length = || JpegError::BadLength {
        offset: segment.start + 2,
        len: u16::try_from(payload.len() + 2).unwrap_or(u16::MAX),
    };
    let (&[precision, h0, h1, w0, w1, components], rest) = payload.split_first_chunk::<6>().ok_or_else(bad_length)?;
    if rest.len() < 3 * usize::from(components) {
        return Err(bad_length());
    }
    // Each component: id, sampling factors (horizontal << 4 | vertical), quantisation table.
    let sampling = rest.chunks_exact(3).take(usize::from(components)).map(|c| (c[1] >> 4, c[1] & 0x0f));
    let (h, v) = sampling.fold((1, 1), |(h, v), (ch, cv)| (h.max(ch), v.max(cv)));
    let mcu = if components == 1 { (8, 8) } else { (8 * u16::from(h), 8 * u16::from(v)) };
    Ok(FrameHeader {
        marker: segment.marker,
        start: segment.start,
        precision,
        width: u16::from_be_bytes([w0, w1]),
        height: u16::from_be_bytes([h0, h1]),
        components,
        mcu,
    })
}

/// The length of the JPEG at the start of `data`: from SOI through EOI, following all marker
/// segments and scans. Bytes after the EOI (padding, the next frame) are not looked at.
pub fn jpeg_len(data: &[u8]) -> Result<usize, JpegError> {
    let headers = read_headers(data)?;
    let mut pos = headers.sos.end;
    let mut in_scan = true;
    loop {
        if in_scan {
            pos = skip_entropy_data(data, pos)?;
        }
        let (marker, after) = marker_at(data, pos)?;
        match marker {
            EOI => return Ok(after),
            SOI => return Err(JpegError::BadMarker { offset: after - 1, byte: marker }),
            m if is_standalone(m) => {
                pos = after;
                in_scan = false;
            }
            m => {
                pos = segment_end(data, after)?;
                in_scan = m == SOS;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal structurally valid JPEG (not decodable): SOI, APP0, SOF0 (16x8, 1 component),
    /// SOS, entropy data with every escape, EOI.
    fn skeleton(entropy: &[u8]) -> Vec<u8> {
        let mut j = vec![0xff, SOI];
        j.extend_from_slice(&[0xff, 0xe0, 0, 6, b'J', b'F', b'I', b'F']);
        j.extend_from_slice(&[0xff, 0xff, SOF0, 0, 11, 8, 0, 8, 0, 16, 1, 1, 0x11, 0]);
        j.extend_from_slice(&[0xff, SOS, 0, 8, 1, 1, 0, 0, 63, 0]);
        j.extend_from_slice(entropy);
        j.extend_from_slice(&[0xff, EOI]);
        j
    }

    #[test]
    fn walks_segments_and_entropy_data() {
        let j = skeleton(&[1, 0xff, 0, 2, 0xff, 0xd3, 3, 0xff, 0xff, 0xff, 0, 4]);
        let h = read_headers(&j).unwrap();
        assert!(!h.dht);
        let sof = h.sof.unwrap();
        assert_eq!((sof.marker, sof.start, sof.width, sof.height, sof.components), (SOF0, 11, 16, 8, 1));
        assert_eq!(h.sos, Segment { marker: SOS, start: 24, end: 34 });
        assert_eq!(jpeg_len(&j), Ok(j.len()));
        // Trailing bytes and a following frame are not part of it.
        let mut two = j.clone();
        two.extend_from_slice(&j);
        assert_eq!(jpeg_len(&two), Ok(j.len()));
        // A second scan with a DHT before it (progressive-style layout).
        let mut multi = j[..j.len() - 2].to_vec();
        multi.extend_from_slice(&[0xff, DHT, 0, 2, 0xff, SOS, 0, 8, 1, 1, 0, 0, 63, 0, 9, 0xff, EOI]);
        assert_eq!(jpeg_len(&multi), Ok(multi.len()));
    }

    #[test]
    fn errors() {
        let j = skeleton(&[1, 2, 3]);
        assert_eq!(jpeg_len(&j[..j.len() - 1]), Err(JpegError::Truncated));
        assert_eq!(jpeg_len(&j[..30]), Err(JpegError::Truncated));
        assert_eq!(jpeg_len(&[0xff]), Err(JpegError::Truncated));
        assert_eq!(jpeg_len(&[0x00, 0xd8, 0xff]), Err(JpegError::NoStart));
        assert_eq!(jpeg_len(&[0xff, SOI, 0xff, EOI]), Err(JpegError::NoScan));
        assert_eq!(jpeg_len(&[0xff, SOI, 0x12]), Err(JpegError::BadMarker { offset: 2, byte: 0x12 }));
        assert_eq!(jpeg_len(&[0xff, SOI, 0xff, 0xe0, 0, 1]), Err(JpegError::BadLength { offset: 4, len: 1 }));
        // An SOI inside the entropy data: the frame was cut and the next one started.
        let mut cut = j[..j.len() - 2].to_vec();
        cut.extend_from_slice(&[0xff, SOI, 0xff]);
        assert!(matches!(jpeg_len(&cut), Err(JpegError::BadMarker { byte: SOI, .. })));
        // SOF too short for its component list.
        let mut bad_sof = j.clone();
        bad_sof[20] = 3;
        assert!(matches!(read_headers(&bad_sof), Err(JpegError::BadLength { .. })));
    }
}

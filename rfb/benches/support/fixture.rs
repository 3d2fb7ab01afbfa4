//! Loads fixture PNGs as native frames for the benchmarks.

use std::path::Path;

use rfb::Frame;

/// A PNG (RGB or RGBA, 8-bit) as a native frame.
pub fn load(path: &Path) -> Frame {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).expect("fixture")));
    let mut reader = decoder.read_info().expect("png header");
    let mut buf = vec![0; reader.output_buffer_size().expect("png size")];
    let info = reader.next_frame(&mut buf).expect("png data");
    let channels = info.color_type.samples();
    let mut pixels = Vec::with_capacity(info.width as usize * info.height as usize * 4);
    for px in buf[..info.buffer_size()].chunks_exact(channels) {
        pixels.extend_from_slice(&[px[2], px[1], px[0], 0]);
    }
    Frame::from_pixels(info.width as u16, info.height as u16, pixels).expect("frame")
}

//! The repo's fixture screens as native frames.

use rfb::Frame;

/// A fixture PNG (8-bit RGB or RGBA) as a native frame, cropped to `width` x `height` from the
/// top-left corner (`u16::MAX` for the whole width or height).
pub fn load(name: &str, width: u16, height: u16) -> Frame {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures").join(name);
    let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut reader = png::Decoder::new(std::io::BufReader::new(file)).read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    let stride = info.width as usize * channels;
    let (width, height) = (width.min(info.width as u16), height.min(info.height as u16));
    let mut pixels = Vec::with_capacity(usize::from(width) * usize::from(height) * 4);
    for row in buf.chunks_exact(stride).take(usize::from(height)) {
        for px in row.chunks_exact(channels).take(usize::from(width)) {
            pixels.extend_from_slice(&[px[2], px[1], px[0], 0]);
        }
    }
    Frame::from_pixels(width, height, pixels).unwrap()
}

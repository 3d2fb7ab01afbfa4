//! JPEG frames made the way a cheap HDMI-USB capture dongle makes them, for tests and benches.

/// A baseline 4:2:2 JPEG of `width`x`height` packed RGB with the standard Huffman tables.
pub fn dongle_jpeg(rgb: &[u8], width: usize, height: usize, quality: i32) -> Vec<u8> {
    let mut compressor = turbojpeg::Compressor::new().expect("JPEG compressor");
    compressor.set_quality(quality).expect("quality");
    compressor.set_subsamp(turbojpeg::Subsamp::Sub2x1).expect("subsampling");
    let image = turbojpeg::Image { pixels: rgb, width, pitch: width * 3, height, format: turbojpeg::PixelFormat::RGB };
    compressor.compress_to_vec(image).expect("JPEG compression")
}

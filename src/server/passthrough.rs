//! MJPEG pass-through: the source's JPEG (or lossless crops of it) sent as it is to a viewer
//! that takes Tight JPEG, or the JPEG encoding (21) (RealVNC Viewer, which has no Tight; frames
//! wider than a Tight rect). Public so the capture bench measures exactly what viewers get.

use rfb::ServerConnection;
use rfb::region::Region;

use crate::jpeg::BROAD_CHANGE_DIVISOR;
use crate::source::SourceFrame;

/// Sends the source's own JPEG when the viewer takes it (see
/// [`rfb::ServerConnection::jpeg_passthrough`]): the whole frame for a broad
/// change, lossless crops of it for a small one. No decode-and-re-encode on the board, and the
/// viewer sees the source's quality. Returns whether it did.
pub fn pass_jpeg_through(conn: &mut ServerConnection, current: &SourceFrame, region: &Region) -> bool {
    let Some(picture) = current.jpeg() else { return false };
    let bounds = current.bounds();
    let rects = if region.area() * BROAD_CHANGE_DIVISOR >= bounds.area() {
        vec![bounds]
    } else if picture.is_decoded() {
        // Another viewer needed the pixels: encoding the small change from them is cheaper
        // than a crop (a pass over the whole frame).
        return false;
    } else {
        match picture.crop_rects(region) {
            Some(rects) => rects,
            None => return false,
        }
    };
    // False too for a frame this viewer cannot take as it is (wider than a Tight rect without
    // JPEG (21), or not baseline for 21): it is encoded instead.
    let baseline = picture.is_baseline();
    let Some(encodings) =
        rects.iter().map(|rect| conn.jpeg_passthrough(rect.width, baseline)).collect::<Option<Vec<_>>>()
    else {
        return false;
    };
    let via = rfb::encoding::name(encodings[0]);
    let jpegs =
        rects.iter().map(|rect| if *rect == bounds { Ok(picture.bytes().clone()) } else { picture.crop(*rect) });
    let jpegs = match jpegs.collect::<Result<Vec<_>, _>>() {
        Ok(jpegs) => jpegs,
        Err(e) => {
            tracing::debug!("cannot crop the source's JPEG ({e}); encoding instead");
            return false;
        }
    };
    let rects: Vec<(rfb::Rect, &[u8])> = rects.iter().copied().zip(jpegs.iter().map(|jpeg| &jpeg[..])).collect();
    match conn.write_jpeg_update(&rects, baseline) {
        Ok(()) => {
            let bytes: usize = rects.iter().map(|(_, jpeg)| jpeg.len()).sum();
            if rects[0].0 == bounds {
                tracing::trace!("passed the source's JPEG through as {via} ({bytes} bytes)");
            } else {
                tracing::trace!("passed {} crops of the source's JPEG through as {via} ({bytes} bytes)", rects.len());
            }
            true
        }
        Err(e) => {
            tracing::debug!("JPEG pass-through not possible ({e}); encoding instead");
            false
        }
    }
}

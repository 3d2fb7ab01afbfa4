//! An update's encoding taken out of the connection, so it can run on another thread while the
//! connection keeps reading the client's input (neatvnc's model: encode on workers, the event
//! loop never waits for a frame to compress).
//!
//! [`ServerConnection::start_update`] lends the connection's encoders (with their zlib streams)
//! to an [`UpdateJob`]; [`UpdateJob::encode`] runs anywhere; [`ServerConnection::complete_update`]
//! takes the encoders back and queues the update. Only one job is out at a time, so the zlib
//! streams see the updates in the order the client receives them. Messages that arrive
//! meanwhile are handled at once: a new pixel format or encoding list applies from the next
//! update, exactly as if the job's update had already been on the wire.
//!
//! The job writes its rects after [`HEADROOM`] spare bytes of a buffer the connection lends it
//! too; the update header and pseudo-rects go into that room, so a large update is handed to
//! the socket without being copied again, and the buffers are reused from update to update
//! (fresh multi-megabyte allocations cost page faults every time).

use std::sync::Arc;

use super::{ServerConnection, State};
use crate::encoders::shared::SharedEncodings;
use crate::encoders::workers::Workers;
use crate::encoders::{EncodeParams, Encoders};
use crate::encoding::{COPY_RECT, ClientEncodings};
use crate::frame::{Frame, Rect};
use crate::messages::server::write_rect_header;
use crate::moves::Move;
use crate::pixel_format::PixelConverter;

/// Room before a job's rects for the update header and the pseudo-rects (at most a few dozen
/// bytes: QEMU key ack, extended mouse buttons, LED state).
const HEADROOM: usize = 64;
/// A spare buffer larger than this is not kept (a 1080p Raw update is 8 MiB).
const MAX_SPARE: usize = 16 << 20;

/// One update's pixels to encode, with everything the encode needs from the connection.
pub struct UpdateJob {
    encoders: Encoders,
    converter: Arc<PixelConverter>,
    encodings: ClientEncodings,
    /// Goes first, as a CopyRect: it reads what the viewer shows before this update.
    copy: Option<Move>,
    rects: Vec<Rect>,
    /// [`HEADROOM`] bytes, then the encoded rects.
    bytes: Vec<u8>,
}

/// An encoded update on its way back to its connection.
pub struct EncodedUpdate {
    encoders: Encoders,
    /// [`HEADROOM`] bytes, then the encoded rects.
    rects: Vec<u8>,
    count: usize,
    /// The rects that went as JPEG.
    lossy: Vec<Rect>,
    /// False for a cancelled job: nothing goes out.
    send: bool,
}

impl std::fmt::Debug for UpdateJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpdateJob").field("rects", &self.rects).finish_non_exhaustive()
    }
}

impl std::fmt::Debug for EncodedUpdate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncodedUpdate").field("bytes", &self.rects.len()).field("count", &self.count).finish()
    }
}

impl EncodedUpdate {
    /// The rects that went out as JPEG (lossy): the areas a lossless refresh sends again once
    /// the screen is still. A rect whose JPEG did not pay may be listed though it went as Raw.
    pub fn lossy(&self) -> &[Rect] {
        &self.lossy
    }
}

impl UpdateJob {
    /// Encodes the rects of `frame`, which must be the frame whose bounds were given to
    /// [`ServerConnection::start_update`]. `shared` is the frame's generation and the server's
    /// cache of shareable rects; `workers` may encode a large rect's pieces in parallel.
    pub fn encode(
        self,
        frame: &Frame,
        shared: Option<(u64, &dyn SharedEncodings)>,
        workers: &dyn Workers,
    ) -> EncodedUpdate {
        let UpdateJob { mut encoders, converter, encodings, copy, rects, mut bytes } = self;
        let params = EncodeParams { converter: &converter, encodings: &encodings, shared, workers };
        let mut count = 0;
        if let Some(copy) = copy {
            write_rect_header(&mut bytes, &copy.dst, COPY_RECT);
            bytes.extend_from_slice(&copy.src_x.to_be_bytes());
            bytes.extend_from_slice(&copy.src_y.to_be_bytes());
            count += 1;
        }
        for rect in &rects {
            // A frame of another size than announced would leave rects outside it: crop again.
            let rect = rect.intersect(&frame.bounds());
            if !rect.is_empty() {
                count += encoders.encode(frame, &rect, &params, &mut bytes);
            }
        }
        let lossy = encoders.take_lossy();
        EncodedUpdate { encoders, rects: bytes, count, lossy, send: true }
    }

    /// The client's preferred encoding (a client preferring JPEG (21) gets parts of the job in
    /// its lossless one).
    pub fn preferred_encoding(&self) -> i32 {
        self.encodings.preferred
    }

    /// How many pixels the job covers.
    pub fn area(&self) -> usize {
        self.rects.iter().map(Rect::area).sum()
    }

    /// Gives the encoders back without encoding (the frame could not be had); nothing is sent.
    pub fn cancel(self) -> EncodedUpdate {
        EncodedUpdate { encoders: self.encoders, rects: self.bytes, count: 0, lossy: Vec::new(), send: false }
    }
}

impl ServerConnection {
    /// Lends the encoders to a job for an update of `rects` of a frame with `bounds`; None when
    /// the connection is not in its normal phase or a job is already out. With `lossless`, no
    /// lossy encoding is used (the refresh of areas that went out as JPEG).
    pub fn start_update(&mut self, bounds: Rect, rects: &[Rect], lossless: bool) -> Option<UpdateJob> {
        self.start_update_with_copy(bounds, None, rects, lossless)
    }

    /// [`Self::start_update`] with `copy` first: a CopyRect when the client listed CopyRect and
    /// both of its ends lie inside `bounds`, else its destination is encoded with the rects.
    /// The caller vouches that the viewer shows at the copy's source what the destination
    /// should show (nothing sent there since the frame the move was found in).
    pub fn start_update_with_copy(
        &mut self,
        bounds: Rect,
        copy: Option<Move>,
        rects: &[Rect],
        lossless: bool,
    ) -> Option<UpdateJob> {
        if self.state != State::Normal {
            return None;
        }
        let encoders = self.encoders.take()?;
        let mut encodings = self.encodings.clone();
        if lossless {
            // No JPEG inside Tight, and a JPEG (21) viewer gets its first lossless encoding.
            encodings.quality_level = None;
            encodings.preferred = encodings.lossless;
        }
        let inside = |rect: Rect| !rect.is_empty() && rect.intersect(&bounds) == rect;
        let (copy, uncopied) = match copy {
            Some(copy) if encodings.allows(COPY_RECT) && inside(copy.dst) && inside(copy.src()) => (Some(copy), None),
            other => (None, other.map(|copy| copy.dst)),
        };
        let rects = rects.iter().chain(&uncopied).map(|r| r.intersect(&bounds)).filter(|r| !r.is_empty()).collect();
        let mut bytes = std::mem::take(&mut self.spare_output);
        bytes.clear();
        bytes.resize(HEADROOM, 0);
        Some(UpdateJob { encoders, converter: self.converter.clone(), encodings, copy, rects, bytes })
    }

    /// Takes the encoders back and queues the update, with any pseudo-rects owed by now. Must
    /// be the job this connection lent last.
    pub fn complete_update(&mut self, done: EncodedUpdate) {
        let EncodedUpdate { encoders, mut rects, count, send, .. } = done;
        self.encoders = Some(encoders);
        if !send || self.state != State::Normal || rects.len() < HEADROOM {
            self.keep_spare(rects);
            return;
        }
        // The header and pseudo-rects, written aside.
        let pending = std::mem::replace(&mut self.output, Vec::with_capacity(HEADROOM));
        let (_, pseudo) = self.begin_update();
        let head = std::mem::replace(&mut self.output, pending);
        let header_at = if self.output.is_empty() && self.cipher.is_none() && head.len() <= HEADROOM {
            // Nothing else waits to be sent: the job's buffer becomes the output, starting at
            // the header written into its headroom.
            let start = HEADROOM - head.len();
            rects[start..HEADROOM].copy_from_slice(&head);
            let drained = std::mem::replace(&mut self.output, rects);
            self.output_sent = start;
            self.keep_spare(drained);
            start
        } else {
            let header_at = self.output.len();
            self.output.extend_from_slice(&head);
            self.output.extend_from_slice(&rects[HEADROOM..]);
            self.keep_spare(rects);
            header_at
        };
        self.finish_update(header_at, pseudo + count);
    }

    /// Keeps `buffer` for the next job, unless it is very large.
    fn keep_spare(&mut self, buffer: Vec<u8>) {
        if buffer.capacity() <= MAX_SPARE {
            self.spare_output = buffer;
        }
    }
}

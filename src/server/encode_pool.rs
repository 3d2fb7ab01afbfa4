//! The worker threads that encode updates, off the async runtime. A viewer's task hands its
//! update to the pool and goes on reading that viewer's keys and pointer while the update is
//! compressed; inside one update, the encoders spread a large rect's pieces over the same
//! threads (`rfb::encoders::workers`). Sized to the board's cores by default: a Pi 4 has four.

use std::sync::Arc;

use anyhow::Context;
use crossbeam_channel::{Receiver, Sender};
use rfb::encoders::shared::SharedRects;
use rfb::encoders::workers::{ScopedThreads, Workers};
use rfb::{EncodedUpdate, UpdateJob};
use tokio::sync::oneshot;

use crate::source::SourceFrame;

/// What comes back from the pool: the encoded update, or the job's encoders with the reason
/// the frame's pixels could not be had.
pub type Encoded = Result<EncodedUpdate, (EncodedUpdate, String)>;

/// Updates of at most this many pixels (a typed character, a blinking cursor, a few cells of
/// text) are encoded on the viewer's own task: handing one to a pool thread and back costs two
/// thread wake-ups, several times its encode (vs_tigervnc's typed character: 0.3 ms of CPU per
/// update through the pool, 0.1–0.2 ms here; TigerVNC's 0.1), while even the costliest
/// encoding of this many pixels (JPEG) takes a small fraction of a millisecond on a Pi core,
/// so input waits no longer than it would behind the hand-over.
const INLINE_AREA: usize = 64 * 64;

/// Fixed threads that wait on a channel for updates to encode. Not rayon: its idle workers
/// spin (`sched_yield`) before sleeping, which cost 14% of kvnc's CPU between small updates;
/// these threads block until work comes (after a few yields: four per update, measured). The
/// channel wakes one of them per job; a std receiver shared behind a mutex woke two, the
/// receiver and the next thread in line for the lock (a steady Tight update of vs_tigervnc
/// made 6.2 context switches in all, now 4.8).
pub struct EncodePool {
    jobs: Sender<Job>,
    threads: usize,
}

type Job = Box<dyn FnOnce() + Send>;

impl EncodePool {
    pub fn new(threads: usize) -> anyhow::Result<Arc<EncodePool>> {
        let threads = threads.max(1);
        let (jobs, queue) = crossbeam_channel::unbounded::<Job>();
        for i in 0..threads {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("encode-{i}"))
                .spawn(move || work(&queue))
                .context("cannot start the encoding threads")?;
        }
        Ok(Arc::new(EncodePool { jobs, threads }))
    }

    /// Encodes `job` from `frame` on the pool; the result arrives on the returned channel.
    /// The frame's pixels are had there too, so decoding a JPEG frame does not hold up the
    /// viewer's task either. A job of at most [`INLINE_AREA`] pixels whose frame needs no
    /// decoding is encoded right here, on the caller's task: its result is ready at once.
    pub fn encode(
        self: &Arc<Self>,
        job: UpdateJob,
        frame: Arc<SourceFrame>,
        shared_rects: Arc<SharedRects>,
    ) -> oneshot::Receiver<Encoded> {
        let (done, result) = oneshot::channel();
        let inline = job.area() <= INLINE_AREA && frame.pixels_at_hand().is_some();
        let workers = self.clone();
        let task = move || {
            let encoded = match frame.pixels() {
                Ok(pixels) => Ok(job.encode(pixels, Some((frame.generation, &*shared_rects)), &*workers)),
                Err(e) => Err((job.cancel(), e.to_string())),
            };
            // The viewer may have left meanwhile; then nobody wants the update.
            let _ = done.send(encoded);
        };
        if inline {
            run(Box::new(task));
        } else {
            // Only fails once every thread has died, which `work` prevents; the dropped sender
            // then tells the viewer.
            let _ = self.jobs.send(Box::new(task));
        }
        result
    }
}

/// One pool thread: runs jobs until the pool is dropped.
fn work(queue: &Receiver<Job>) {
    while let Ok(job) = queue.recv() {
        run(job);
    }
}

/// Runs one job, on a pool thread or the viewer's task. A panicking encoder is caught, so the
/// thread or task lives on; the job's result channel is dropped, which closes only that viewer.
fn run(job: Job) {
    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)).is_err() {
        tracing::error!("an encoder panicked; its viewer is disconnected");
    }
}

impl Workers for EncodePool {
    fn count(&self) -> usize {
        self.threads
    }

    fn run_all<'a>(&self, tasks: Vec<Box<dyn FnOnce() + Send + 'a>>) {
        // A large rect's bands borrow the frame and the encoder, so they run on scoped threads
        // (the calling pool thread takes one band itself).
        ScopedThreads(self.threads).run_all(tasks);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::Picture;
    use rfb::security::Transport;
    use rfb::{Event, Rect, ServerConfig, ServerConnection};
    use tokio::sync::oneshot::error::TryRecvError;

    /// A connection past its handshake (no security), with a 640x480 screen.
    fn ready_connection() -> ServerConnection {
        let mut conn = ServerConnection::new(Arc::new(ServerConfig::default()), Transport::Tcp, [7; 32]);
        for reply in [&b"RFB 003.008\n"[..], &[1], &[1]] {
            let written = conn.pending_output().len();
            conn.advance_output(written);
            conn.read(reply).expect("handshake");
        }
        assert!(matches!(conn.poll_event(), Some(Event::ClientInit { .. })));
        conn.accept(640, 480).expect("accept");
        let server_init = conn.pending_output().len();
        conn.advance_output(server_init);
        conn
    }

    /// The rect count of the update `conn` has written (none before it), which it then drops.
    fn written_rects(conn: &mut ServerConnection) -> u16 {
        let out = conn.pending_output().to_vec();
        conn.advance_output(out.len());
        assert_eq!(out.first(), Some(&0), "a FramebufferUpdate");
        u16::from_be_bytes([out[2], out[3]])
    }

    /// With the pool's only thread busy, a small update is encoded at once on the caller's
    /// task, and one pixel more waits for the pool.
    #[test]
    fn small_updates_are_encoded_by_the_caller() {
        let pool = EncodePool::new(1).expect("pool");
        let (release, held) = std::sync::mpsc::channel::<()>();
        pool.jobs
            .send(Box::new(move || {
                let _ = held.recv();
            }))
            .expect("hold the thread");
        let frame = Arc::new(SourceFrame { generation: 1, picture: Picture::Pixels(rfb::Frame::new(640, 480)) });
        let shared_rects = Arc::new(SharedRects::default());
        let mut conn = ready_connection();
        let bounds = frame.bounds();

        let small = conn.start_update(bounds, &[Rect::new(0, 0, 64, 32), Rect::new(100, 0, 64, 32)], false);
        let mut result = pool.encode(small.expect("a job"), frame.clone(), shared_rects.clone());
        let encoded = result.try_recv().expect("encoded at once").expect("pixels at hand");
        conn.complete_update(encoded);
        assert_eq!(written_rects(&mut conn), 2);

        let large = conn.start_update(bounds, &[Rect::new(0, 0, 64, 64), Rect::new(0, 64, 1, 1)], false);
        let mut result = pool.encode(large.expect("a job"), frame, shared_rects);
        assert!(matches!(result.try_recv(), Err(TryRecvError::Empty)), "a larger update waits for the pool");
        release.send(()).expect("release the thread");
        let encoded = result.blocking_recv().expect("encoded on the pool").expect("pixels");
        conn.complete_update(encoded);
        assert_eq!(written_rects(&mut conn), 2);
    }
}

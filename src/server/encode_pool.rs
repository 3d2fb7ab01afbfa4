//! The worker threads that encode updates, off the async runtime. A viewer's task hands its
//! update to the pool and goes on reading that viewer's keys and pointer while the update is
//! compressed; inside one update, the encoders spread a large rect's pieces over the same
//! threads (`rfb::encoders::workers`). Sized to the board's cores by default: a Pi 4 has four.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, PoisonError};

use anyhow::Context;
use rfb::encoders::shared::SharedRects;
use rfb::encoders::workers::{ScopedThreads, Workers};
use rfb::encoding::RAW;
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
/// Raw is a copy of the pixels (converted to the viewer's format), so a Raw update is encoded
/// on the viewer's task up to this many pixels: at most 512 KiB at 32 bits, about 0.2 ms of
/// a Pi 4 core, what the hand-over to the pool and back costs (a steady Raw update of
/// vs_tigervnc's moving window: 0.36 ms of CPU through the pool, 0.26 ms here).
const RAW_INLINE_AREA: usize = 128 * 1024;

/// Fixed threads that wait on a queue for updates to encode. Not rayon: its idle workers
/// spin (`sched_yield`) before sleeping, which cost 14% of kvnc's CPU between small updates.
/// Nor a channel: crossbeam's receiver yields four times before it sleeps (5% of a steady Raw
/// update's CPU), and a std receiver shared behind a mutex woke two threads per job, the
/// receiver and the next in line for the lock. Here an idle thread sleeps on the condition
/// variable at once and each job wakes one.
pub struct EncodePool {
    queue: Arc<JobQueue>,
    threads: usize,
}

/// The jobs waiting for a thread, and the threads' sleep.
#[derive(Default)]
struct JobQueue {
    waiting: Mutex<Waiting>,
    added: Condvar,
}

#[derive(Default)]
struct Waiting {
    jobs: VecDeque<Job>,
    /// The pool was dropped: its threads end once the queue is empty.
    closed: bool,
}

impl JobQueue {
    fn waiting(&self) -> std::sync::MutexGuard<'_, Waiting> {
        // Jobs run outside the lock, so a panic never leaves the queue half changed.
        self.waiting.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn push(&self, job: Job) {
        self.waiting().jobs.push_back(job);
        self.added.notify_one();
    }

    /// The next job, waiting for one as long as it takes; None once the pool is gone.
    fn pop(&self) -> Option<Job> {
        let mut waiting = self.waiting();
        loop {
            if let Some(job) = waiting.jobs.pop_front() {
                return Some(job);
            }
            if waiting.closed {
                return None;
            }
            waiting = self.added.wait(waiting).unwrap_or_else(PoisonError::into_inner);
        }
    }

    fn close(&self) {
        self.waiting().closed = true;
        self.added.notify_all();
    }
}

type Job = Box<dyn FnOnce() + Send>;

impl EncodePool {
    pub fn new(threads: usize) -> anyhow::Result<Arc<EncodePool>> {
        let threads = threads.max(1);
        // Made first, so the threads already started end (on its drop) if a later one cannot.
        let pool = Arc::new(EncodePool { queue: Arc::new(JobQueue::default()), threads });
        for i in 0..threads {
            let queue = pool.queue.clone();
            std::thread::Builder::new()
                .name(format!("encode-{i}"))
                .spawn(move || work(&queue))
                .context("cannot start the encoding threads")?;
        }
        Ok(pool)
    }

    /// Encodes `job` from `frame` on the pool; the result arrives on the returned channel.
    /// The frame's pixels are had there too, so decoding a JPEG frame does not hold up the
    /// viewer's task either. A job of at most [`INLINE_AREA`] pixels ([`RAW_INLINE_AREA`] for a
    /// viewer that prefers Raw) whose frame needs no decoding is encoded right here, on the
    /// caller's task: its result is ready at once.
    pub fn encode(
        self: &Arc<Self>,
        job: UpdateJob,
        frame: Arc<SourceFrame>,
        shared_rects: Arc<SharedRects>,
    ) -> oneshot::Receiver<Encoded> {
        let (done, result) = oneshot::channel();
        let inline_area = if job.preferred_encoding() == RAW { RAW_INLINE_AREA } else { INLINE_AREA };
        let inline = job.area() <= inline_area && frame.pixels_at_hand().is_some();
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
            self.queue.push(Box::new(task));
        }
        result
    }
}

/// One pool thread: runs jobs until the pool is dropped.
fn work(queue: &JobQueue) {
    while let Some(job) = queue.pop() {
        run(job);
    }
}

impl Drop for EncodePool {
    fn drop(&mut self) {
        self.queue.close();
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
    use rfb::encoding::ZRLE;
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

    /// Sets the client's encoding list, as its SetEncodings message would.
    fn set_encodings(conn: &mut ServerConnection, encodings: &[i32]) {
        let mut message = vec![2, 0];
        message.extend_from_slice(&u16::try_from(encodings.len()).expect("a short list").to_be_bytes());
        for encoding in encodings {
            message.extend_from_slice(&encoding.to_be_bytes());
        }
        conn.read(&message).expect("SetEncodings");
        while conn.poll_event().is_some() {}
    }

    /// With the pool's only thread busy, a small update (a larger one in Raw) is encoded at
    /// once on the caller's task, and one pixel more waits for the pool.
    #[test]
    fn small_updates_are_encoded_by_the_caller() {
        let pool = EncodePool::new(1).expect("pool");
        let frame = Arc::new(SourceFrame { generation: 1, picture: Picture::Pixels(rfb::Frame::new(640, 480)) });
        let shared_rects = Arc::new(SharedRects::default());
        let bounds = frame.bounds();
        let cases = [
            (ZRLE, INLINE_AREA, [Rect::new(0, 0, 64, 32), Rect::new(100, 0, 64, 32)]),
            (RAW, RAW_INLINE_AREA, [Rect::new(0, 0, 512, 128), Rect::new(0, 200, 512, 128)]),
        ];
        for (encoding, most, at_once) in cases {
            assert_eq!(at_once.iter().map(Rect::area).sum::<usize>(), most);
            let mut conn = ready_connection();
            set_encodings(&mut conn, &[encoding]);
            let (release, held) = std::sync::mpsc::channel::<()>();
            pool.queue.push(Box::new(move || {
                let _ = held.recv();
            }));

            let small = conn.start_update(bounds, &at_once, false);
            let mut result = pool.encode(small.expect("a job"), frame.clone(), shared_rects.clone());
            let encoded = result.try_recv().expect("encoded at once").expect("pixels at hand");
            conn.complete_update(encoded);
            assert_eq!(written_rects(&mut conn), 2, "encoding {encoding}");

            let larger = [at_once[0], at_once[1], Rect::new(600, 400, 1, 1)];
            let larger = conn.start_update(bounds, &larger, false);
            let mut result = pool.encode(larger.expect("a job"), frame.clone(), shared_rects.clone());
            assert!(matches!(result.try_recv(), Err(TryRecvError::Empty)), "encoding {encoding}: one more pixel waits");
            release.send(()).expect("release the thread");
            let encoded = result.blocking_recv().expect("encoded on the pool").expect("pixels");
            conn.complete_update(encoded);
            assert_eq!(written_rects(&mut conn), 3, "encoding {encoding}");
        }
    }
}

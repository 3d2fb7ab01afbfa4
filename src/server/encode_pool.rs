//! The worker threads that encode updates, off the async runtime. A viewer's task hands its
//! update to the pool and goes on reading that viewer's keys and pointer while the update is
//! compressed; inside one update, the encoders spread a large rect's pieces over the same
//! threads (`rfb::encoders::workers`). Sized to the board's cores by default: a Pi 4 has four.

use std::sync::{Arc, Mutex, PoisonError, mpsc};

use anyhow::Context;
use rfb::encoders::shared::SharedRects;
use rfb::encoders::workers::{ScopedThreads, Workers};
use rfb::{EncodedUpdate, UpdateJob};
use tokio::sync::oneshot;

use crate::source::SourceFrame;

/// What comes back from the pool: the encoded update, or the job's encoders with the reason
/// the frame's pixels could not be had.
pub type Encoded = Result<EncodedUpdate, (EncodedUpdate, String)>;

/// Fixed threads that wait on a channel for updates to encode. Not rayon: its idle workers
/// spin (`sched_yield`) before sleeping, which cost 14% of kvnc's CPU between small updates;
/// these threads block until work comes.
pub struct EncodePool {
    jobs: mpsc::Sender<Job>,
    threads: usize,
}

type Job = Box<dyn FnOnce() + Send>;

impl EncodePool {
    pub fn new(threads: usize) -> anyhow::Result<Arc<EncodePool>> {
        let threads = threads.max(1);
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
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
    /// viewer's task either.
    pub fn encode(
        self: &Arc<Self>,
        job: UpdateJob,
        frame: Arc<SourceFrame>,
        shared_rects: Arc<SharedRects>,
    ) -> oneshot::Receiver<Encoded> {
        let (done, result) = oneshot::channel();
        let workers = self.clone();
        let task = move || {
            let encoded = match frame.pixels() {
                Ok(pixels) => Ok(job.encode(pixels, Some((frame.generation, &*shared_rects)), &*workers)),
                Err(e) => Err((job.cancel(), e.to_string())),
            };
            // The viewer may have left meanwhile; then nobody wants the update.
            let _ = done.send(encoded);
        };
        // Only fails once every thread has died, which `work` prevents; the dropped sender
        // then tells the viewer.
        let _ = self.jobs.send(Box::new(task));
        result
    }
}

/// One pool thread: runs jobs until the pool is dropped. A panicking encoder is caught, so the
/// thread lives on; the job's result channel is dropped, which closes only that viewer.
fn work(queue: &Mutex<mpsc::Receiver<Job>>) {
    loop {
        let job = match queue.lock().unwrap_or_else(PoisonError::into_inner).recv() {
            Ok(job) => job,
            Err(_) => return,
        };
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)).is_err() {
            tracing::error!("an encoder panicked; its viewer is disconnected");
        }
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

//! The worker threads that encode updates, off the async runtime. A viewer's task hands its
//! update to the pool and goes on reading that viewer's keys and pointer while the update is
//! compressed; inside one update, the encoders spread a large rect's pieces over the same
//! threads (`rfb::encoders::workers`). Sized to the board's cores by default: a Pi 4 has four.

use std::sync::Arc;

use anyhow::Context;
use rfb::encoders::shared::SharedRects;
use rfb::encoders::workers::Workers;
use rfb::{EncodedUpdate, UpdateJob};
use tokio::sync::oneshot;

use crate::source::SourceFrame;

/// What comes back from the pool: the encoded update, or the job's encoders with the reason
/// the frame's pixels could not be had.
pub type Encoded = Result<EncodedUpdate, (EncodedUpdate, String)>;

pub struct EncodePool {
    pool: rayon::ThreadPool,
}

impl EncodePool {
    pub fn new(threads: usize) -> anyhow::Result<Arc<EncodePool>> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads.max(1))
            .thread_name(|i| format!("encode-{i}"))
            // Without a handler rayon aborts the process; this way only the viewer whose
            // update failed is closed (its result channel is dropped).
            .panic_handler(|_| tracing::error!("an encoder panicked; its viewer is disconnected"))
            .build()
            .context("cannot start the encoding threads")?;
        Ok(Arc::new(EncodePool { pool }))
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
        self.pool.spawn(move || {
            let encoded = match frame.pixels() {
                Ok(pixels) => Ok(job.encode(pixels, Some((frame.generation, &*shared_rects)), &*workers)),
                Err(e) => Err((job.cancel(), e.to_string())),
            };
            // The viewer may have left meanwhile; then nobody wants the update.
            let _ = done.send(encoded);
        });
        result
    }
}

impl Workers for EncodePool {
    fn count(&self) -> usize {
        self.pool.current_num_threads()
    }

    fn run_all<'a>(&self, tasks: Vec<Box<dyn FnOnce() + Send + 'a>>) {
        // Called from one of the pool's own threads, which works on the tasks too instead of
        // blocking.
        self.pool.scope(|scope| {
            for task in tasks {
                scope.spawn(move |_| task());
            }
        });
    }
}

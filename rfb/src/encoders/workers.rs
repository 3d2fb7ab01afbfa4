//! The seam through which an encoder spreads one update over several cores. rfb owns no
//! threads: the caller passes its pool (kvnc: a rayon pool sized to the board's cores), and
//! tests and single-core callers pass [`Serial`].

/// Runs independent pieces of one encode, possibly at the same time on other threads.
pub trait Workers: Sync {
    /// How many tasks can usefully run at once; encoders split work into about this many.
    fn count(&self) -> usize;

    /// Runs every task and returns once all of them have finished.
    fn run_all<'a>(&self, tasks: Vec<Box<dyn FnOnce() + Send + 'a>>);
}

/// Runs tasks one after another on the calling thread.
#[derive(Debug, Default, Clone, Copy)]
pub struct Serial;

impl Workers for Serial {
    fn count(&self) -> usize {
        1
    }

    fn run_all<'a>(&self, tasks: Vec<Box<dyn FnOnce() + Send + 'a>>) {
        for task in tasks {
            task();
        }
    }
}

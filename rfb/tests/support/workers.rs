//! A [`Workers`] that really runs tasks on other threads, so the encoders' parallel paths are
//! tested with the interleavings threads bring.

use rfb::encoders::workers::Workers;

/// Runs every task on a thread of its own (scoped), `count` reported to the encoders.
pub struct Threads(pub usize);

impl Workers for Threads {
    fn count(&self) -> usize {
        self.0
    }

    fn run_all<'a>(&self, tasks: Vec<Box<dyn FnOnce() + Send + 'a>>) {
        std::thread::scope(|scope| {
            for task in tasks {
                scope.spawn(task);
            }
        });
    }
}

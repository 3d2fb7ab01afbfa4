//! The seam through which an encoder spreads one update over several cores. rfb keeps no
//! threads: the caller passes its pool (kvnc: `EncodePool`, sized to the board's cores);
//! single-core callers pass [`Serial`], and callers without a pool (tests, benches) can pass
//! [`ScopedThreads`].

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

use crate::frame::Rect;

/// Rects of at least this many pixels are cut into bands encoded in parallel (when the caller
/// has more than one worker): below it the hand-over costs more than it saves.
pub const MIN_PARALLEL_AREA: usize = 4 * 65536;
/// Band heights are multiples of this (Tight's solid search block), so bands cut fewer solid
/// areas.
const BAND_ALIGN: u16 = 16;
/// Bands per worker: screen content is uneven (a photo above, a taskbar below), and workers that
/// take the next band as they finish even it out.
const BANDS_PER_WORKER: usize = 3;
/// The lowest band worth its own task (and, for JPEG (21), its own image headers).
const MIN_BAND_HEIGHT: usize = 64;

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

/// Runs the tasks on the calling thread and `self.0 - 1` scoped threads, each taking the next
/// task as it finishes one, so uneven tasks even out. Spawning costs tens of microseconds,
/// against milliseconds for the bands of a rect large enough to be split.
#[derive(Debug, Clone, Copy)]
pub struct ScopedThreads(pub usize);

impl Workers for ScopedThreads {
    fn count(&self) -> usize {
        self.0
    }

    fn run_all<'a>(&self, tasks: Vec<Box<dyn FnOnce() + Send + 'a>>) {
        let helpers = self.0.min(tasks.len()).saturating_sub(1);
        let queue = std::sync::Mutex::new(tasks.into_iter());
        let work = || {
            loop {
                // A task that panicked poisons nothing the queue holds: take the lock anyway.
                let next = queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner).next();
                match next {
                    Some(task) => task(),
                    None => return,
                }
            }
        };
        std::thread::scope(|scope| {
            for _ in 0..helpers {
                scope.spawn(work);
            }
            work();
        });
    }
}

/// The bands `rect` is encoded in: a few per worker for a rect of at least
/// [`MIN_PARALLEL_AREA`] pixels, else the rect itself.
pub fn bands(rect: &Rect, workers: &dyn Workers) -> Vec<Rect> {
    if rect.area() < MIN_PARALLEL_AREA || workers.count() < 2 {
        return split_rows(rect, 1);
    }
    let most = usize::from(rect.height) / MIN_BAND_HEIGHT;
    split_rows(rect, (workers.count() * BANDS_PER_WORKER).min(most).max(2))
}

/// Cuts `rect` into at most `count` bands of whole rows, heights a multiple of
/// [`BAND_ALIGN`] except the last.
fn split_rows(rect: &Rect, count: usize) -> Vec<Rect> {
    let count = u16::try_from(count.max(1)).unwrap_or(u16::MAX);
    let height = rect.height.div_ceil(count).next_multiple_of(BAND_ALIGN).min(rect.height).max(1);
    row_bands(rect, usize::from(height))
}

/// `rect` cut into bands of `rows` rows (the last may be lower), top to bottom.
pub fn row_bands(rect: &Rect, rows: usize) -> Vec<Rect> {
    let rows = u16::try_from(rows).unwrap_or(u16::MAX).max(1);
    let mut bands = Vec::new();
    let mut y = 0;
    while y < rect.height {
        let height = rows.min(rect.height - y);
        bands.push(Rect::new(rect.x, rect.y + y, rect.width, height));
        y += height;
    }
    bands
}

/// Encodes `bands` (of one frame) side by side on `workers`: one lane per worker (an encoder's
/// state for one thread, kept in `lanes` across updates and made by `new_lane` when missing)
/// takes the next band as it finishes one and writes it with `encode` into a buffer of its
/// own; the buffers are then appended to `out` in band order. Bands of less than
/// [`MIN_PARALLEL_AREA`] pixels in all (a few small photos of one update) are encoded on the
/// calling thread. Returns the sum of what `encode` returned (the rects written). For encodings
/// without state across rects (Hextile, JPEG (21)).
pub(crate) fn encode_bands<L: Send>(
    workers: &dyn Workers,
    lanes: &mut Vec<L>,
    new_lane: impl FnMut() -> L,
    bands: &[Rect],
    encode: impl Fn(&mut L, &Rect, &mut Vec<u8>) -> usize + Sync,
    out: &mut Vec<u8>,
) -> usize {
    let area: usize = bands.iter().map(Rect::area).sum();
    let count = if area < MIN_PARALLEL_AREA { 1 } else { bands.len().min(workers.count()).max(1) };
    if lanes.len() < count {
        lanes.resize_with(count, new_lane);
    }
    let lanes = &mut lanes[..count];
    if let [lane] = lanes {
        // One lane: straight into `out`, nothing handed to other threads or copied.
        return bands.iter().map(|band| encode(lane, band, out)).sum();
    }
    let encoded = run_indexed(workers, lanes, bands.len(), |lane, i| {
        let mut data = Vec::new();
        let count = encode(lane, &bands[i], &mut data);
        (data, count)
    });
    let mut count = 0;
    for (data, rects) in encoded.unwrap_or_default() {
        out.extend_from_slice(&data);
        count += rects;
    }
    count
}

/// Runs `task(lane, i)` for every `i` in `0..count` on `workers`, each lane taking the next
/// index as it finishes one; returns the results in index order (None without lanes).
pub(crate) fn run_indexed<L: Send, T: Send>(
    workers: &dyn Workers,
    lanes: &mut [L],
    count: usize,
    task: impl Fn(&mut L, usize) -> T + Sync,
) -> Option<Vec<T>> {
    let results: Vec<Mutex<Option<T>>> = (0..count).map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    let (results_ref, next_ref, task_ref) = (&results, &next, &task);
    let tasks = lanes
        .iter_mut()
        .map(|lane| -> Box<dyn FnOnce() + Send + '_> {
            Box::new(move || {
                loop {
                    let i = next_ref.fetch_add(1, Ordering::Relaxed);
                    let Some(slot) = results_ref.get(i) else { return };
                    let result = task_ref(lane, i);
                    *slot.lock().unwrap_or_else(PoisonError::into_inner) = Some(result);
                }
            })
        })
        .collect();
    workers.run_all(tasks);
    results.into_iter().map(|slot| slot.into_inner().unwrap_or_else(PoisonError::into_inner)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_aligned_and_tile_the_rect() {
        assert_eq!(split_rows(&Rect::new(3, 5, 10, 100), 1), [Rect::new(3, 5, 10, 100)]);
        let four = split_rows(&Rect::new(0, 10, 1920, 1080), 4);
        assert_eq!(four.iter().map(|b| b.height).collect::<Vec<_>>(), [272, 272, 272, 264]);
        assert!(four.windows(2).all(|w| w[0].y + w[0].height == w[1].y));
        assert_eq!(split_rows(&Rect::new(0, 0, 5, 20), 4), [Rect::new(0, 0, 5, 16), Rect::new(0, 16, 5, 4)]);
        assert_eq!(split_rows(&Rect::new(0, 0, 5, 3), 8), [Rect::new(0, 0, 5, 3)]);
    }

    /// Threads that count the times they are handed tasks.
    struct Counting(ScopedThreads, AtomicUsize);

    impl Workers for Counting {
        fn count(&self) -> usize {
            self.0.count()
        }

        fn run_all<'a>(&self, tasks: Vec<Box<dyn FnOnce() + Send + 'a>>) {
            self.1.fetch_add(1, Ordering::Relaxed);
            self.0.run_all(tasks);
        }
    }

    #[test]
    fn small_bands_are_encoded_on_the_calling_thread() {
        let workers = Counting(ScopedThreads(2), AtomicUsize::new(0));
        let encode = |lane: &mut usize, band: &Rect, out: &mut Vec<u8>| {
            *lane += 1;
            out.extend_from_slice(&band.y.to_be_bytes());
            1
        };
        let (mut lanes, mut out) = (Vec::new(), Vec::new());
        let small = [Rect::new(0, 0, 100, 100), Rect::new(0, 200, 100, 100), Rect::new(300, 0, 64, 64)];
        assert_eq!(encode_bands(&workers, &mut lanes, || 0, &small, encode, &mut out), 3);
        assert_eq!((workers.1.load(Ordering::Relaxed), lanes.len(), &out[..]), (0, 1, &[0, 0, 0, 200, 0, 0][..]));
        let large = bands(&Rect::new(0, 0, 1024, 512), &workers);
        out.clear();
        assert_eq!(encode_bands(&workers, &mut lanes, || 0, &large, encode, &mut out), large.len());
        assert_eq!((workers.1.load(Ordering::Relaxed), lanes.len()), (1, 2));
        let ys: Vec<u8> = large.iter().flat_map(|band| band.y.to_be_bytes()).collect();
        assert_eq!(out, ys, "band order");
    }

    #[test]
    fn small_rects_stay_whole() {
        assert_eq!(bands(&Rect::new(0, 0, 512, 511), &ScopedThreads(4)).len(), 1);
        assert_eq!(bands(&Rect::new(0, 0, 1920, 1080), &ScopedThreads(4)).len(), 12);
        assert_eq!(bands(&Rect::new(0, 0, 1920, 1080), &ScopedThreads(2)).len(), 6);
        // Bands stay at least 64 rows high.
        assert_eq!(bands(&Rect::new(0, 0, 4096, 128), &ScopedThreads(4)).len(), 2);
        assert_eq!(bands(&Rect::new(0, 0, 1920, 1080), &Serial).len(), 1);
    }
}

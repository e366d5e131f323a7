//! A counting global allocator: how many allocations (and bytes) a stretch of code makes, for the
//! allocations-per-event report. Counting is off unless [`Counter::start`] turned it on, so the
//! throughput scenarios pay one relaxed load per allocation and nothing else.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// The system allocator, counting while switched on.
pub struct Counting;

static ON: AtomicBool = AtomicBool::new(false);
static ALLOCS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);

fn count(size: usize) {
    if ON.load(Ordering::Relaxed) {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(size as u64, Ordering::Relaxed);
    }
}

// SAFETY: every call is forwarded unchanged to `System`; counting touches only atomics and never
// allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded; `ptr` came from `System` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // A growing buffer is one more allocation as far as the cost goes.
        count(new_size);
        // SAFETY: forwarded; `ptr` came from `System` with this layout.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Allocations and bytes counted between [`Counter::start`] and [`Counter::stop`].
#[derive(Debug, Clone, Copy)]
pub struct Counted {
    pub allocs: u64,
    pub bytes: u64,
}

/// Counts the allocations of every thread of the process from `start` to `stop`.
pub struct Counter;

impl Counter {
    /// Resets the counts and switches counting on.
    pub fn start() -> Counter {
        ALLOCS.store(0, Ordering::SeqCst);
        BYTES.store(0, Ordering::SeqCst);
        ON.store(true, Ordering::SeqCst);
        Counter
    }

    /// Switches counting off and returns the counts.
    pub fn stop(self) -> Counted {
        ON.store(false, Ordering::SeqCst);
        Counted {
            allocs: ALLOCS.load(Ordering::SeqCst),
            bytes: BYTES.load(Ordering::SeqCst),
        }
    }
}

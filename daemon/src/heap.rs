//! The process heap (glibc malloc): one arena, and free pages handed back
//! once a burst of work is over.
//!
//! Establishing 10,000 systems in a burst leaves about 4 MiB live (the cache
//! entries, pooled HTTP connections); what glibc kept on top of that was
//! more than twice as much: one arena per thread that allocated (each
//! tokio worker and blocking thread grew its own to its own peak), and free
//! pages between the entries that outlived the burst. One arena shares the
//! free space between the threads (small allocations come from each
//! thread's cache without taking the arena's lock; the 64-client throughput
//! did not change), and `malloc_trim` returns the free pages, also those
//! inside the heap, which glibc never does by itself. Measured with
//! `bench all` (figure 5): 20-21 MiB after the burst with the default
//! arenas, 15.3 MiB with one arena, 13.3-14 MiB with the trim as well.
//!
//! Elsewhere (musl, other systems) both are no-ops.

/// Keeps malloc to one arena. Call it before the runtime starts its threads:
/// a thread keeps the arena it first used.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub fn one_arena() {
    // SAFETY: mallopt only sets a malloc tunable, under malloc's own lock;
    // it has no memory-safety preconditions. A refusal (0) leaves the
    // default, which is only larger.
    let _ = unsafe { libc::mallopt(libc::M_ARENA_MAX, 1) };
}

/// Keeps malloc to one arena (nothing to do here).
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn one_arena() {}

/// Hands free heap pages back to the kernel. Takes malloc's lock for a
/// walk over the free chunks (well under a millisecond for the heap of
/// 10,000 systems): for the end of a burst, not for every request.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub fn trim() {
    // SAFETY: malloc_trim only releases memory malloc holds free, under
    // malloc's own locks; it has no preconditions.
    let _ = unsafe { libc::malloc_trim(0) };
}

/// Hands free heap pages back (nothing to do here).
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn trim() {}

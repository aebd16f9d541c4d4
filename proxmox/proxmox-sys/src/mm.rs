//! Memory helpers: making the pages of a buffer present before it is
//! filled.
//!
//! Not in upstream's proxmox-sys (its memory mapping helpers are in its
//! `mmap` module). A buffer the size of a config file, read into memory
//! the process has not touched yet, costs one page fault per 4 KiB page on
//! the first write to it (the `read` that fills it): 658 faults for a
//! 2.6 MB `encryption-keys.cfg`, each a trap into the kernel and back.
//! [`prefault_for_write`] asks the kernel to make all of them present in
//! one call (`MADV_POPULATE_WRITE`, Linux 5.14 or later) instead.

use std::mem::MaybeUninit;

/// Buffers smaller than this are left alone: a few page faults cost less
/// than the system call.
pub const PREFAULT_MIN_LEN: usize = 64 * 1024;

/// Makes the whole pages of `buf` present and writable now, as a write to
/// each would (`madvise(MADV_POPULATE_WRITE)`), without changing what any
/// byte holds, unless they are present already. For a buffer about to be
/// filled by `read`, e.g. a `Vec`'s
/// [`spare_capacity_mut`](Vec::spare_capacity_mut).
///
/// Memory the process used before (a buffer from a heap that earlier
/// allocations grew) is left alone: the kernel walks present pages one by
/// one too, which cost as much as it saves on new ones (0.47 ms for 656
/// present pages on the VM it was measured on, against 0.4 ms saved on as
/// many new ones). It tells them apart by the buffer's last whole page
/// (`mincore`): a heap grows at its end, so a buffer partly on new memory
/// has it there.
///
/// Returns whether the pages were made present: `false` for a buffer
/// shorter than [`PREFAULT_MIN_LEN`], one whose last page is present, on a
/// kernel without `MADV_POPULATE_WRITE` (older than 5.14: `EINVAL`) or
/// when the kernel could not (out of memory: the writes that follow fault
/// as they would have without this call). Nothing is lost either way, so
/// callers may ignore it.
pub fn prefault_for_write(buf: &mut [MaybeUninit<u8>]) -> bool {
    if buf.len() < PREFAULT_MIN_LEN {
        return false;
    }
    let page = rustix::param::page_size();
    let start = buf.as_mut_ptr() as usize;
    let end = start + buf.len();
    // whole pages inside the buffer only
    let first = start.next_multiple_of(page);
    let last = end - end % page;
    if last <= first || is_present(last - page, page) {
        return false;
    }
    // SAFETY: `first..last` is inside `buf`, memory this process owns and
    // that the `&mut` borrow keeps allocated and unshared for the call.
    // MADV_POPULATE_WRITE changes no byte of it: it faults in pages as a
    // write would, so a page not yet present becomes a zeroed page (what
    // the first write would have found), a present one stays as it is and
    // a shared copy-on-write one becomes a private copy of the same bytes.
    // It does not move, free or protect the memory (madvise(2)).
    let result = unsafe {
        rustix::mm::madvise(
            first as *mut std::ffi::c_void,
            last - first,
            rustix::mm::Advice::LinuxPopulateWrite,
        )
    };
    result.is_ok()
}

/// Whether the page at `addr` (page aligned, inside memory the caller
/// holds) is present in memory (`mincore`; neither rustix nor nix has it).
/// `false` if the call fails.
fn is_present(addr: usize, page: usize) -> bool {
    let mut state = 0u8;
    // SAFETY: mincore only reads the page tables of `addr..addr + page`
    // (one page, so it writes one byte: `state`); it touches no memory of
    // the range and fails with ENOMEM if it is not mapped.
    let result = unsafe { libc::mincore(addr as *mut libc::c_void, page, &mut state) };
    result == 0 && state & 1 == 1
}

#[cfg(test)]
mod tests {
    use nix::sys::resource::{UsageWho, getrusage};

    use super::*;

    /// Minor page faults of this thread so far (other test threads fault
    /// on their own counters).
    fn thread_faults() -> i64 {
        getrusage(UsageWho::RUSAGE_THREAD)
            .unwrap()
            .minor_page_faults()
    }

    /// Writes `buf` whole, one byte per page, and returns the page faults
    /// that took.
    fn faults_writing(buf: &mut [MaybeUninit<u8>]) -> i64 {
        let before = thread_faults();
        for byte in buf.iter_mut().step_by(4096) {
            byte.write(1);
        }
        std::hint::black_box(&buf);
        thread_faults() - before
    }

    /// The other test's buffers: smaller than this one's, so glibc maps
    /// this one fresh even after it freed theirs (its mmap threshold only
    /// rises to the size of a freed mapping).
    const LEN: usize = 8 << 20;

    /// The test that the call does what it is for: after it, filling a
    /// new buffer takes (almost) no page faults; without it, one per page.
    #[test]
    fn filling_a_prefaulted_buffer_takes_no_page_faults() {
        const NEW: usize = 2 * LEN;
        let mut plain = Vec::<u8>::with_capacity(NEW);
        let faults = faults_writing(plain.spare_capacity_mut());
        assert!(faults > (NEW / 4096 / 2) as i64, "{faults} faults");

        let mut buf = Vec::<u8>::with_capacity(NEW);
        assert!(prefault_for_write(buf.spare_capacity_mut()));
        let faults = faults_writing(buf.spare_capacity_mut());
        // the first and last page may be shared with other allocations
        // and so be left alone
        assert!(faults <= 2, "{faults} faults after the prefault");
    }

    /// Memory already present is left alone (the kernel would walk it page
    /// by page for nothing).
    #[test]
    fn present_memory_is_left_alone() {
        let mut buf = Vec::<u8>::with_capacity(LEN);
        buf.resize(LEN, 1);
        buf.truncate(0);
        assert!(!prefault_for_write(buf.spare_capacity_mut()));
    }

    /// Bytes already written keep their values, those in the pages made
    /// present as well, and a short buffer is left alone.
    #[test]
    fn nothing_written_changes() {
        let pattern = |i: usize| (i % 251) as u8;
        let half = LEN / 2 + 1000;
        let mut buf = Vec::<u8>::with_capacity(LEN);
        buf.extend((0..half).map(pattern));
        // the spare capacity shares its first page with what was written
        assert!(prefault_for_write(buf.spare_capacity_mut()));
        assert!(buf.iter().enumerate().all(|(i, b)| *b == pattern(i)));

        let mut buf = Vec::<u8>::with_capacity(LEN);
        buf.extend((0..half).map(pattern));
        // the whole allocation, the written part included: a truncate
        // leaves the bytes in place
        buf.truncate(0);
        assert!(prefault_for_write(buf.spare_capacity_mut()));
        // SAFETY: the first `half` bytes were initialized by the extend
        unsafe { buf.set_len(half) };
        assert!(buf.iter().enumerate().all(|(i, b)| *b == pattern(i)));

        let mut small = Vec::<u8>::with_capacity(PREFAULT_MIN_LEN - 1);
        assert!(!prefault_for_write(small.spare_capacity_mut()));
        small.push(1);
        assert!(!prefault_for_write(small.spare_capacity_mut()));
    }
}

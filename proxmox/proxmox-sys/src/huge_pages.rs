//! Read buffers in transparent huge pages, for processes that opt in.
//!
//! Not in upstream's proxmox-sys. A process that reads a large file into
//! memory it has not touched yet pays one page fault per 4 KiB page (658
//! for a 2.6 MB `encryption-keys.cfg`, 2.5 to 3.6 us each on the VM it was
//! measured on), even when they are made present in one call
//! ([`crate::mm::prefault_for_write`]): the kernel still allocates, zeroes
//! and charges them one by one. A 2 MiB-aligned anonymous mapping advised
//! `MADV_HUGEPAGE` gets one huge page for each aligned 2 MiB instead.
//!
//! The catch: with THP `defrag` set to `madvise` (Debian's default), the
//! kernel may compact memory to find a free 2 MiB when such a mapping is
//! first touched, a stall of unknown length. So it is off unless a process
//! turns it on at its start ([`enable`]): a short-lived command-line
//! process, where a stall delays one command; never a daemon, whose every
//! client would wait. Nothing in this crate or its users turns it on.
//!
//! [`HugePageBuf`] is the mapping (with the heap's advice below, the only
//! `unsafe` of this module), [`TextBuf`] text kept either in a `String` or
//! in such a buffer, validated as UTF-8 once.
//!
//! [`enable`] also puts the next [`HEAP_ADVISED`] bytes of the process's
//! heap in huge pages (glibc's malloc): the tables a parse builds beside its
//! text (a 10,000-key config's scan, index and lookup tables: about 1.2 MB,
//! 290 new 4 KiB pages) then come from one huge page instead. This is what
//! glibc's `glibc.malloc.hugetlb=1` tunable does, which a process can only
//! get from its environment at its start.

use std::ffi::c_void;
use std::io::{self, Read};
use std::ops::Deref;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, Ordering};

use rustix::mm::{Advice, MapFlags, ProtFlags};

/// The size of a transparent huge page on x86_64 and arm64 (4 KiB base
/// pages): a buffer shorter than this gets none.
pub const HUGE_PAGE_SIZE: usize = 2 << 20;

static ENABLED: AtomicBool = AtomicBool::new(false);

/// Lets this process read large files into huge pages ([`enabled`]) and
/// puts the next [`HEAP_ADVISED`] bytes of its heap in huge pages. Call it
/// at the start of a short-lived process only (see the module's text),
/// from its main thread (whose heap the rest of `main` uses); it cannot be
/// turned off again.
pub fn enable() {
    static HEAP: std::sync::Once = std::sync::Once::new();
    ENABLED.store(true, Ordering::Relaxed);
    HEAP.call_once(|| {
        advise_heap();
    });
}

/// How much of the heap [`enable`] puts in huge pages: four of them, room
/// for the tables of a parse of up to about 30,000 keys; virtual memory
/// until used.
pub const HEAP_ADVISED: usize = 4 * HUGE_PAGE_SIZE;

/// glibc's malloc serves a block of up to this size from its heap, not
/// from a mapping of its own (which gets 4 KiB pages and is returned to the
/// kernel on free): the largest threshold glibc's own adaptive one reaches
/// (`DEFAULT_MMAP_THRESHOLD_MAX` on 64-bit), set at once.
const MMAP_THRESHOLD: usize = 32 << 20;

/// glibc's malloc keeps up to this much free memory at the top of its heap
/// instead of returning it (twice the mmap threshold, as its adaptive one).
const TRIM_THRESHOLD: usize = 2 * MMAP_THRESHOLD;

/// Makes the memory glibc's malloc hands out next in this thread's arena
/// (the main thread's: the heap `brk` grows) come from huge pages: blocks up
/// to [`MMAP_THRESHOLD`] are served from the heap, and the heap's top is
/// grown by [`HEAP_ADVISED`] and a 2 MiB boundary, advised `MADV_HUGEPAGE`
/// from that boundary on, and left free, with the free space below the
/// boundary taken by a block that is never used (address space only: its
/// pages are never touched but the one holding its header). Where glibc
/// hands out its blocks is its own business: if it serves them elsewhere,
/// they get 4 KiB pages as before.
///
/// Returns whether the heap was advised: not where malloc or the advice
/// fails (`EINVAL`: a kernel without transparent huge pages), nor without
/// glibc.
fn advise_heap() -> bool {
    #[cfg(target_env = "gnu")]
    {
        // SAFETY: mallopt takes any value for these two parameters; they
        // change only when malloc maps a block on its own and how much free
        // memory free() keeps, not any block handed out
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD as libc::c_int);
            libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD as libc::c_int);
        }
        // SAFETY: malloc of any size; null is checked
        let block = unsafe { libc::malloc(HEAP_ADVISED + HUGE_PAGE_SIZE) };
        let Some(block) = NonNull::new(block.cast::<u8>()) else {
            return false;
        };
        let start = block.as_ptr() as usize;
        let aligned = start.next_multiple_of(HUGE_PAGE_SIZE);
        // SAFETY: `aligned..aligned + HEAP_ADVISED` is inside `block`
        // (`HUGE_PAGE_SIZE` longer than that, and `aligned` less than
        // `HUGE_PAGE_SIZE` after its start), which this function holds and
        // nothing else points into; the advice changes how the kernel
        // backs its pages, not what they hold or whether they are mapped
        let advised = unsafe {
            rustix::mm::madvise(aligned as *mut c_void, HEAP_ADVISED, Advice::LinuxHugepage)
        }
        .is_ok();
        // SAFETY: `block` came from malloc above and is freed once; nothing
        // points into it
        unsafe { libc::free(block.as_ptr().cast()) };
        if advised && aligned > start {
            // the freed block went back to the heap's top: a block of the
            // size below the boundary takes that part (glibc: 16 bytes of
            // header before a block, 8 of them in the block before), so the
            // next ones start at the boundary. Kept for the life of the
            // process: only its first page is ever touched. `black_box`:
            // the compiler drops a malloc whose block is unused (a store to
            // a static that nothing reads did not keep it).
            // SAFETY: malloc of any size; the block is never freed or used
            let below = unsafe { libc::malloc(aligned - start + 8) };
            std::hint::black_box(below);
        }
        advised
    }
    #[cfg(not(target_env = "gnu"))]
    false
}

/// Whether [`enable`] was called in this process.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// A zero-filled buffer in its own anonymous mapping, 2 MiB-aligned and
/// advised `MADV_HUGEPAGE`, filled from the start ([`HugePageBuf::fill_from`]);
/// unmapped on drop. Derefs to the bytes filled so far.
pub struct HugePageBuf {
    /// Start of the mapping, 2 MiB-aligned.
    ptr: NonNull<u8>,
    /// Length of the mapping, a whole number of pages.
    map_len: usize,
    /// Bytes filled, at most `map_len`.
    len: usize,
}

// SAFETY: a `HugePageBuf` owns its mapping alone, as a `Box<[u8]>` owns its
// memory: no other value points into it, shared access only reads, and
// writes need `&mut self`.
unsafe impl Send for HugePageBuf {}
// SAFETY: as for `Send`: `&HugePageBuf` gives read-only access.
unsafe impl Sync for HugePageBuf {}

impl HugePageBuf {
    /// A buffer of at least `capacity` bytes (rounded up to whole pages).
    ///
    /// # Errors
    ///
    /// The kernel's: the mapping refused (`ENOMEM`: no address space or
    /// memory, or `vm.max_map_count` reached), `madvise` refused (`EINVAL`:
    /// a kernel without transparent huge pages). Nothing stays mapped then.
    /// A `capacity` of 0, or one so large its rounding overflows, is
    /// `EINVAL` too.
    pub fn with_capacity(capacity: usize) -> io::Result<Self> {
        let page = rustix::param::page_size();
        let map_len = capacity
            .checked_next_multiple_of(page)
            .filter(|len| *len > 0)
            .ok_or(io::ErrorKind::InvalidInput)?;
        // enough to find a 2 MiB boundary with `map_len` after it
        let over = map_len
            .checked_add(HUGE_PAGE_SIZE - page)
            .ok_or(io::ErrorKind::InvalidInput)?;
        // SAFETY: a new private anonymous mapping at an address the kernel
        // picks: it overlaps nothing else of this process.
        let raw = unsafe {
            rustix::mm::mmap_anonymous(
                std::ptr::null_mut(),
                over,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::PRIVATE,
            )
        }?;
        let start = raw as usize;
        let aligned = start.next_multiple_of(HUGE_PAGE_SIZE);
        let head = aligned - start;
        let tail = over - head - map_len;
        // the head and the tail around `aligned..aligned + map_len` are
        // unmapped; all three are page multiples (`start`, `HUGE_PAGE_SIZE`
        // and `map_len` are), inside the mapping made above
        let trimmed = (head == 0 || unmap(start, head).is_ok())
            && (tail == 0 || unmap(aligned + map_len, tail).is_ok());
        if !trimmed {
            // munmap of a range with holes unmaps what is left of it
            let _ = unmap(start, over);
            return Err(io::Error::from(io::ErrorKind::OutOfMemory));
        }
        let buf = Self {
            ptr: NonNull::new(aligned as *mut u8).expect("mmap never returns address 0"),
            map_len,
            len: 0,
        };
        // SAFETY: the range is the mapping `buf` owns; the advice changes
        // how the kernel backs it, not what it holds (zeroes) or whether it
        // is mapped. On error `buf` is dropped, which unmaps it.
        unsafe {
            rustix::mm::madvise(
                buf.ptr.as_ptr().cast::<c_void>(),
                map_len,
                Advice::LinuxHugepage,
            )
        }?;
        Ok(buf)
    }

    /// The bytes not filled yet (zeroes: an anonymous mapping is
    /// zero-filled, and only [`HugePageBuf::fill_from`] writes to it).
    fn unfilled(&mut self) -> &mut [u8] {
        // SAFETY: `ptr..ptr + map_len` is this buffer's mapping, readable,
        // writable and initialized (anonymous pages read as zero), and
        // `len <= map_len`; the `&mut self` borrow makes the slice the only
        // access to it while it lives.
        unsafe {
            std::slice::from_raw_parts_mut(self.ptr.as_ptr().add(self.len), self.map_len - self.len)
        }
    }

    /// Reads `reader` into the buffer after what it holds, until the end of
    /// `reader` or the buffer is full (a read of length 0 then tells
    /// neither). Returns whether the buffer is full. The pages are made
    /// present in one call first ([`crate::mm::prefault_for_write`]: the
    /// huge ones and the 4 KiB ones of a tail shorter than 2 MiB).
    ///
    /// # Errors
    ///
    /// The reader's, but `Interrupted`, which is retried. What was read
    /// before the error stays.
    pub fn fill_from(&mut self, reader: &mut impl Read) -> io::Result<bool> {
        let unfilled = self.unfilled();
        // SAFETY of the cast: `MaybeUninit<u8>` has the layout of `u8`, and
        // every byte of `unfilled` is initialized (it reads back as before)
        crate::mm::prefault_for_write(as_maybe_uninit(unfilled));
        loop {
            let unfilled = self.unfilled();
            if unfilled.is_empty() {
                return Ok(true);
            }
            match reader.read(unfilled) {
                Ok(0) => return Ok(false),
                Ok(n) => {
                    let n = n.min(unfilled.len());
                    self.len += n;
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => return Err(err),
            }
        }
    }

    /// The size of the mapping: [`HugePageBuf::fill_from`] stops there.
    pub fn capacity(&self) -> usize {
        self.map_len
    }
}

/// `bytes` as possibly uninitialized bytes, for a callee that only writes
/// (or, as the prefault, writes nothing).
fn as_maybe_uninit(bytes: &mut [u8]) -> &mut [std::mem::MaybeUninit<u8>] {
    // SAFETY: `MaybeUninit<u8>` has the size and alignment of `u8`; the
    // callee can only store initialized bytes through the slice (there is
    // no safe way to store an uninitialized one), so `bytes` stays
    // initialized.
    unsafe { &mut *(std::ptr::from_mut(bytes) as *mut [std::mem::MaybeUninit<u8>]) }
}

/// Unmaps `len` bytes at `addr`, part of a mapping made by
/// [`HugePageBuf::with_capacity`] that nothing points into.
fn unmap(addr: usize, len: usize) -> io::Result<()> {
    // SAFETY: the caller's range is (part of) an anonymous mapping this
    // module made and no reference or slice points into.
    unsafe { rustix::mm::munmap(addr as *mut c_void, len) }.map_err(io::Error::from)
}

impl Deref for HugePageBuf {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        // SAFETY: the first `len` bytes of the mapping this buffer owns,
        // initialized; `&self` keeps them from being written or unmapped.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for HugePageBuf {
    fn drop(&mut self) {
        // nothing can be done about a failure here: the memory stays
        // mapped (it cannot fail for a whole mapping made by this module)
        let _ = unmap(self.ptr.as_ptr() as usize, self.map_len);
    }
}

impl std::fmt::Debug for HugePageBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HugePageBuf")
            .field("len", &self.len)
            .field("capacity", &self.map_len)
            .finish_non_exhaustive()
    }
}

/// Text owned either as a `String` or in a [`HugePageBuf`], validated as
/// UTF-8 when made. Derefs to `str`; the text never changes after.
pub struct TextBuf(Repr);

enum Repr {
    Heap(String),
    /// Its filled bytes are valid UTF-8 (checked by [`TextBuf::from_huge`]).
    Huge(HugePageBuf),
}

impl TextBuf {
    /// The filled bytes of `buf` as text.
    ///
    /// # Errors
    ///
    /// `buf` back and where its UTF-8 is invalid, if it is.
    pub fn from_huge(buf: HugePageBuf) -> Result<Self, (HugePageBuf, std::str::Utf8Error)> {
        match crate::fs::check_utf8(&buf) {
            Ok(()) => Ok(Self(Repr::Huge(buf))),
            Err(err) => Err((buf, err)),
        }
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            Repr::Heap(text) => text,
            // SAFETY: checked as UTF-8 by `from_huge`, and a `TextBuf`
            // gives no access that could change the buffer's bytes since
            Repr::Huge(buf) => unsafe { std::str::from_utf8_unchecked(buf) },
        }
    }

    /// Whether the text is in huge pages (in a [`HugePageBuf`]).
    pub fn is_huge(&self) -> bool {
        matches!(self.0, Repr::Huge(_))
    }
}

impl Deref for TextBuf {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for TextBuf {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl Default for TextBuf {
    fn default() -> Self {
        Self(Repr::Heap(String::new()))
    }
}

impl From<String> for TextBuf {
    fn from(text: String) -> Self {
        Self(Repr::Heap(text))
    }
}

impl From<&str> for TextBuf {
    fn from(text: &str) -> Self {
        Self(Repr::Heap(text.to_owned()))
    }
}

impl From<&String> for TextBuf {
    fn from(text: &String) -> Self {
        Self(Repr::Heap(text.clone()))
    }
}

impl std::fmt::Debug for TextBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

impl PartialEq<str> for TextBuf {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The 2 MiB-aligned mapping of `buf` and its flags, from
    /// `/proc/self/smaps`: the `VmFlags` line (`hg`: advised huge) and the
    /// `AnonHugePages` line (huge pages backing it, kB).
    fn smaps_of(addr: usize) -> Option<(String, u64)> {
        smaps_where(|start, _| start == addr)
    }

    /// [`smaps_of`] the mapping that holds `addr`.
    fn smaps_holding(addr: usize) -> Option<(String, u64)> {
        smaps_where(|start, end| (start..end).contains(&addr))
    }

    /// [`smaps_of`] the first mapping whose start and end `wanted` takes.
    fn smaps_where(wanted: impl Fn(usize, usize) -> bool) -> Option<(String, u64)> {
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
        let mut lines = smaps.lines();
        while let Some(line) = lines.next() {
            let Some((range, _)) = line.split_once(' ') else {
                continue;
            };
            let Some((start, end)) = range.split_once('-') else {
                continue;
            };
            let (Ok(start), Ok(end)) = (
                usize::from_str_radix(start, 16),
                usize::from_str_radix(end, 16),
            ) else {
                continue;
            };
            if !wanted(start, end) {
                continue;
            }
            let mut huge = 0;
            for line in lines.by_ref() {
                if let Some(kb) = line.strip_prefix("AnonHugePages:") {
                    huge = kb.trim().trim_end_matches(" kB").parse().unwrap();
                }
                if let Some(flags) = line.strip_prefix("VmFlags:") {
                    return Some((flags.to_string(), huge));
                }
            }
        }
        None
    }

    /// Whether the mapping starting at `addr` is in `/proc/self/maps`.
    fn is_mapped(addr: usize) -> bool {
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        maps.lines().any(|line| {
            line.split_once('-')
                .is_some_and(|(start, _)| usize::from_str_radix(start, 16) == Ok(addr))
        })
    }

    /// In a process of its own: another test's mapping could start where
    /// a dropped buffer was.
    #[test]
    fn a_buffer_is_aligned_advised_filled_and_unmapped() {
        in_own_process(
            "a_buffer_is_aligned_advised_filled_and_unmapped",
            a_buffer_is_aligned_advised_filled_and_unmapped_here,
        );
    }

    fn a_buffer_is_aligned_advised_filled_and_unmapped_here() {
        let data: Vec<u8> = (0..HUGE_PAGE_SIZE + 300_001)
            .map(|i| (i % 251) as u8)
            .collect();
        let mut buf = HugePageBuf::with_capacity(data.len() + 1).unwrap();
        let addr = buf.as_ptr() as usize;
        assert_eq!(addr % HUGE_PAGE_SIZE, 0);
        assert!(buf.capacity() > data.len());
        assert!(buf.is_empty());
        let mut reader = &data[..];
        assert!(!buf.fill_from(&mut reader).unwrap());
        assert_eq!(&buf[..], &data[..]);
        let (flags, _) = smaps_of(addr).expect("the buffer's mapping");
        assert!(flags.split_whitespace().any(|flag| flag == "hg"), "{flags}");
        drop(buf);
        assert!(!is_mapped(addr), "the buffer's mapping outlived it");
    }

    /// Where the system has THP for advised memory, the buffer gets it.
    #[test]
    fn a_buffer_gets_huge_pages_where_the_system_gives_them() {
        let mode = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled")
            .unwrap_or_default();
        let mut buf = HugePageBuf::with_capacity(2 * HUGE_PAGE_SIZE).unwrap();
        let mut zeroes = std::io::repeat(7).take(2 * HUGE_PAGE_SIZE as u64);
        assert!(buf.fill_from(&mut zeroes).unwrap());
        let (_, huge_kb) = smaps_of(buf.as_ptr() as usize).unwrap();
        // a fragmented machine may not find a free 2 MiB: then none is
        // asserted, but the bytes are still right
        if mode.contains("[madvise]") || mode.contains("[always]") {
            eprintln!("AnonHugePages: {huge_kb} kB");
        }
        assert!(buf.iter().all(|b| *b == 7));
    }

    /// A full buffer says so, and a reader's later bytes are left to it.
    #[test]
    fn a_full_buffer_stops_reading() {
        let mut buf = HugePageBuf::with_capacity(1).unwrap();
        let cap = buf.capacity();
        let data = vec![b'x'; cap + 10];
        let mut reader = &data[..];
        assert!(buf.fill_from(&mut reader).unwrap());
        assert_eq!(buf.len(), cap);
        assert_eq!(reader.len(), 10);
        assert!(buf.fill_from(&mut reader).unwrap());
    }

    #[test]
    fn impossible_sizes_are_errors_and_leave_nothing_mapped() {
        let before = std::fs::read_to_string("/proc/self/maps")
            .unwrap()
            .lines()
            .count();
        assert!(HugePageBuf::with_capacity(0).is_err());
        assert!(HugePageBuf::with_capacity(usize::MAX - 100).is_err());
        // more address space than a process has (128 TiB on x86_64)
        let err = HugePageBuf::with_capacity(1 << 48).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOMEM), "{err}");
        let after = std::fs::read_to_string("/proc/self/maps")
            .unwrap()
            .lines()
            .count();
        // other test threads may map memory meanwhile: a leak of each
        // failure would be three mappings
        assert!(after < before + 3, "{before} -> {after}");
    }

    /// 1,000 buffers made and dropped leave the process's mappings and
    /// resident memory as they were.
    /// In a process of its own: another test's mapping could start where
    /// a dropped buffer was.
    #[test]
    fn buffers_are_freed() {
        in_own_process("buffers_are_freed", buffers_are_freed_here);
    }

    fn buffers_are_freed_here() {
        let data = vec![b'a'; HUGE_PAGE_SIZE + 4096];
        let rss = || {
            let status = std::fs::read_to_string("/proc/self/statm").unwrap();
            status
                .split_whitespace()
                .nth(1)
                .unwrap()
                .parse::<u64>()
                .unwrap()
                * 4096
        };
        let before = rss();
        for _ in 0..1000 {
            let mut buf = HugePageBuf::with_capacity(data.len() + 1).unwrap();
            buf.fill_from(&mut &data[..]).unwrap();
            let text = TextBuf::from_huge(buf).unwrap();
            assert_eq!(text.len(), data.len());
            let addr = text.as_ptr() as usize;
            drop(text);
            assert!(!is_mapped(addr));
        }
        // 1,000 leaked buffers would be 2 GiB; other test threads use a
        // few MiB at most
        let after = rss();
        assert!(after < before + (64 << 20), "RSS {before} -> {after}");
    }

    #[test]
    fn text_is_the_bytes_read_and_invalid_utf8_is_refused() {
        let text = "ä line\n".repeat(1000);
        let mut buf = HugePageBuf::with_capacity(text.len() + 1).unwrap();
        buf.fill_from(&mut text.as_bytes()).unwrap();
        let huge = TextBuf::from_huge(buf).unwrap();
        assert!(huge.is_huge());
        assert_eq!(&*huge, text);

        let mut bad = text.clone().into_bytes();
        bad[2000] = 0xff;
        let mut buf = HugePageBuf::with_capacity(bad.len() + 1).unwrap();
        buf.fill_from(&mut &bad[..]).unwrap();
        let (buf, err) = TextBuf::from_huge(buf).unwrap_err();
        assert_eq!(err.valid_up_to(), 2000);
        assert_eq!(&buf[..], &bad[..]);

        let heap = TextBuf::from(text.clone());
        assert!(!heap.is_huge());
        assert_eq!(&*heap, text);
    }

    /// Runs the test `name` of this binary alone in a new process (`body`
    /// there), so what it changes for the whole process (malloc's settings,
    /// the heap's advice, new mappings) cannot reach the other tests, which
    /// look at this process's mappings. Fails if `body` fails there.
    fn in_own_process(name: &str, body: impl FnOnce()) {
        const CHILD: &str = "PROXMOX_SYS_TEST_CHILD";
        if std::env::var_os(CHILD).is_some_and(|v| v == name) {
            body();
            println!("child {name} done");
            return;
        }
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([&format!("huge_pages::tests::{name}"), "--exact"])
            .args(["--nocapture", "--test-threads=1"])
            .env(CHILD, name)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stdout}{stderr}");
        assert!(stdout.contains(&format!("child {name} done")), "{stdout}");
    }

    /// After the heap's advice, a block of the size of a parse's tables
    /// lies in memory advised huge, and what the heap held before, and the
    /// new block, read back as written.
    #[test]
    fn the_heap_is_advised_and_keeps_its_bytes() {
        in_own_process("the_heap_is_advised_and_keeps_its_bytes", heap_is_advised);
    }

    fn heap_is_advised() {
        let pattern = |len: usize, seed: usize| -> Vec<u32> {
            (0..len).map(|i| (i * 7 + seed) as u32).collect()
        };
        let before = pattern(100_000, 1);
        // a test runs in a thread of its own: this advises the top of its
        // thread's arena, which the next blocks of this thread come from
        assert!(advise_heap());
        let mut table = vec![0u32; 300_000];
        for (i, slot) in table.iter_mut().enumerate() {
            *slot = (i * 7 + 2) as u32;
        }
        let (flags, huge_kb) = smaps_holding(table.as_ptr() as usize).expect("the table's mapping");
        assert!(flags.split_whitespace().any(|flag| flag == "hg"), "{flags}");
        eprintln!("AnonHugePages: {huge_kb} kB");
        assert_eq!(before, pattern(100_000, 1));
        assert_eq!(table, pattern(300_000, 2));
    }

    #[test]
    fn enabled_only_when_enabled() {
        in_own_process("enabled_only_when_enabled", || {
            assert!(!enabled());
            enable();
            assert!(enabled());
            enable();
            assert!(enabled());
        });
    }
}

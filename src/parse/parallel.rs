//! Reading a large input on several threads.
//!
//! The input is cut into chunks at line ends. Reading a rule line up to its
//! filed form needs no parser state ([`super::pre_rule`]), so any thread can
//! do it for any chunk; the calling thread files the lines in input order,
//! chunk by chunk, and reads chunks itself whenever the next one is not
//! ready. Only chunks read but not yet filed are held twice, so memory stays
//! close to that of the one-thread parse.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use super::lexer::Token;
use super::{MAX_LINE, Parser_, PreLine, Severity, pre_chain, pre_rule, rule, split_lines};

/// Inputs smaller than this are read on one thread.
pub const MIN_PARALLEL_BYTES: usize = 1 << 20;

/// Bytes per chunk.
pub const CHUNK_BYTES: usize = 64 << 10;

/// One non-blank line of a chunk.
#[derive(Clone, Copy)]
struct Item {
    /// 0-based line index inside the chunk.
    index: u32,
    /// Byte offset of the line in the input.
    start: u32,
    /// Length without the line end and trailing blanks.
    len: u32,
    /// The next [`PreLine`] of the chunk belongs to this line.
    pre: bool,
}

/// What reading one chunk gives.
struct Read {
    items: Vec<Item>,
    pre: Vec<PreLine>,
    /// Line ends in the chunk.
    newlines: u32,
}

/// Splits `src` into pieces of about `size` bytes that end after a `\n`
/// (the last one ends with the input).
fn cut(src: &str, size: usize) -> Vec<(usize, usize)> {
    let bytes = src.as_bytes();
    let mut out = Vec::new();
    let mut start = 0;
    while start < bytes.len() {
        let want = (start + size.max(1)).min(bytes.len());
        let end = match memchr::memchr(b'\n', &bytes[want..]) {
            Some(i) => want + i + 1,
            None => bytes.len(),
        };
        out.push((start, end));
        start = end;
    }
    out
}

/// Reads the rule lines of one chunk ahead of filing.
fn read(src: &Arc<String>, (start, end): (usize, usize)) -> Read {
    let text = &src[start..end];
    let mut tokens: Vec<Token<'_>> = Vec::with_capacity(32);
    let mut body = rule::Body::default();
    let mut items = Vec::with_capacity(text.len() / 64);
    let mut pre = Vec::with_capacity(text.len() / 128);
    let mut offset = start;
    let mut newlines = 0u32;
    for (index, raw) in split_lines(text).enumerate() {
        let at = offset;
        offset += raw.len() + 1;
        let line = raw.trim_end();
        if index > 0 {
            newlines += 1;
        }
        if line.is_empty() {
            continue;
        }
        let first = line.trim_start().as_bytes()[0];
        let read = if line.len() > MAX_LINE {
            None
        } else if first == b'-' || first == b'[' {
            pre_rule(line, &mut tokens, &mut body).map(PreLine::Rule)
        } else if first == b':' {
            pre_chain(line, &mut tokens).map(PreLine::Chain)
        } else {
            None
        };
        let is_pre = read.is_some();
        pre.extend(read);
        items.push(Item {
            index: index as u32,
            start: at as u32,
            len: line.len() as u32,
            pre: is_pre,
        });
    }
    Read {
        items,
        pre,
        newlines,
    }
}

/// Chunks read ahead of filing, at most: more would only hold memory.
const AHEAD: usize = 8;

/// Chunks read and waiting to be filed.
struct Shared {
    slots: Vec<Mutex<Option<Read>>>,
    /// Next chunk to claim for reading.
    next: AtomicUsize,
    /// Chunks filed so far.
    filed: AtomicUsize,
    stop: AtomicBool,
    /// Signalled when a chunk was read or filed.
    ready: Condvar,
    wait: Mutex<()>,
}

impl Shared {
    /// Waits for a signal unless `done` already holds (checked under the
    /// lock, so a signal cannot slip in between).
    fn nap(&self, done: impl Fn() -> bool) {
        let guard = self.wait.lock().unwrap_or_else(|e| e.into_inner());
        if done() {
            return;
        }
        drop(
            self.ready
                .wait_timeout(guard, std::time::Duration::from_millis(2))
                .unwrap_or_else(|e| e.into_inner()),
        );
    }

    fn wake(&self) {
        let _guard = self.wait.lock().unwrap_or_else(|e| e.into_inner());
        self.ready.notify_all();
    }

    /// Reads the next unclaimed chunk; false when none is left. A helper
    /// (`helper`) waits while it is [`AHEAD`] chunks ahead of filing; the
    /// filing thread gives up instead.
    fn read_one(&self, src: &Arc<String>, chunks: &[(usize, usize)], helper: bool) -> bool {
        loop {
            if self.stop.load(Ordering::Relaxed) {
                return false;
            }
            let next = self.next.load(Ordering::Relaxed);
            if next >= chunks.len() {
                return false;
            }
            if next < self.filed.load(Ordering::Relaxed) + AHEAD {
                break;
            }
            if !helper {
                return false;
            }
            self.nap(|| {
                self.stop.load(Ordering::Relaxed)
                    || self.next.load(Ordering::Relaxed)
                        < self.filed.load(Ordering::Relaxed) + AHEAD
            });
        }
        let k = self.next.fetch_add(1, Ordering::Relaxed);
        let Some(&range) = chunks.get(k) else {
            return false;
        };
        let r = read(src, range);
        *self.slots[k].lock().unwrap_or_else(|e| e.into_inner()) = Some(r);
        self.wake();
        true
    }

    fn is_read(&self, k: usize) -> bool {
        self.slots[k]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }

    fn take(&self, k: usize) -> Option<Read> {
        self.slots[k]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }
}

/// Parses `src` into `p` on `threads` threads. Returns false when strict
/// parsing stopped at an error (the error is in `p.problems`).
pub(super) fn parse(
    p: &mut Parser_<'_>,
    src: &Arc<String>,
    threads: usize,
    chunk_bytes: usize,
) -> bool {
    let chunks = cut(src, chunk_bytes);
    let shared = Shared {
        slots: (0..chunks.len()).map(|_| Mutex::new(None)).collect(),
        next: AtomicUsize::new(0),
        filed: AtomicUsize::new(0),
        stop: AtomicBool::new(false),
        ready: Condvar::new(),
        wait: Mutex::new(()),
    };
    let strict = p.opts.strict;
    std::thread::scope(|s| {
        for _ in 1..threads.min(chunks.len()) {
            s.spawn(|| while shared.read_one(src, &chunks, true) {});
        }
        let mut tokens: Vec<Token<'_>> = Vec::with_capacity(32);
        let mut base = 0u32;
        for k in 0..chunks.len() {
            let read = loop {
                if let Some(r) = shared.take(k) {
                    break r;
                }
                // Not ready: read a chunk here, or wait for the one a
                // helper is reading.
                if !shared.read_one(src, &chunks, false) {
                    shared.nap(|| shared.is_read(k));
                }
            };
            let mut pre = read.pre.into_iter();
            for item in &read.items {
                let no = base + item.index + 1;
                let start = item.start as usize;
                let line = &src[start..start + item.len as usize];
                match item.pre.then(|| pre.next()).flatten() {
                    Some(PreLine::Rule(r)) => p.add_rule(no, start, line, r),
                    Some(PreLine::Chain(c)) => p.add_chain(no, line, c),
                    None => p.line(no, start, line, &mut tokens),
                }
                if strict && p.problems.iter().any(|x| x.severity == Severity::Error) {
                    shared.stop.store(true, Ordering::Relaxed);
                    shared.wake();
                    return false;
                }
            }
            base += read.newlines;
            shared.filed.store(k + 1, Ordering::Relaxed);
            shared.wake();
        }
        true
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_end_after_line_ends_and_cover_the_input() {
        let text = "a\nbb\n\nccc\nd";
        for size in 1..text.len() + 2 {
            let c = cut(text, size);
            assert_eq!(c.first().map(|x| x.0), Some(0));
            assert_eq!(c.last().map(|x| x.1), Some(text.len()));
            for w in c.windows(2) {
                assert_eq!(w[0].1, w[1].0);
                assert_eq!(&text[w[0].1 - 1..w[0].1], "\n");
            }
        }
    }
}

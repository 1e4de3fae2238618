//! Prompt prefix reuse: the K/V of finished sequences, kept so a new
//! request whose prompt starts with the same tokens (the same system prompt
//! and chat template, the earlier turns of a conversation) copies them
//! instead of recomputing them — llama.cpp's `cache_prompt`, vLLM's
//! automatic prefix caching.
//!
//! Bounded by bytes; the least recently used entries go first. Entries are
//! whole token sequences with their caches; a lookup copies the longest
//! matching prefix, so an entry stays intact for the next request. Because
//! the CPU forward is batch-invariant, reused K/V equal recomputed ones bit
//! for bit and outputs do not change.
//!
//! Thread-safety: owned by one scheduler thread; not shared.

use super::model::SequenceCache;

/// Shortest match worth a copy.
pub const MIN_REUSE: usize = 16;

struct Entry {
    tokens: Vec<u32>,
    cache: SequenceCache,
    last_used: u64,
}

/// Finished sequences' caches, by their tokens.
pub struct PrefixCache {
    entries: Vec<Entry>,
    capacity: usize,
    bytes: usize,
    tick: u64,
}

/// Length of the common prefix of `a` and `b`.
pub fn common_prefix(a: &[u32], b: &[u32]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

impl PrefixCache {
    /// A cache holding at most `capacity` bytes of K/V (0 disables it).
    pub fn new(capacity: usize) -> Self {
        Self { entries: Vec::new(), capacity, bytes: 0, tick: 0 }
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The longest stored prefix of `prompt` (at least [`MIN_REUSE`] tokens,
    /// and never the whole prompt: its last token must run to give logits),
    /// as a fresh cache with that many tokens.
    pub fn lookup(&mut self, prompt: &[u32]) -> Option<(usize, SequenceCache)> {
        let limit = prompt.len().saturating_sub(1);
        let (best, n) = self
            .entries
            .iter()
            .enumerate()
            .map(|(i, e)| (i, common_prefix(&e.tokens, &prompt[..limit]).min(e.cache.prompt_len())))
            .max_by_key(|&(i, n)| (n, std::cmp::Reverse(i)))?;
        if n < MIN_REUSE {
            return None;
        }
        self.tick += 1;
        let e = &mut self.entries[best];
        e.last_used = self.tick;
        e.cache.prefix(n).map(|c| (n, c))
    }

    /// Keeps `cache`, which holds the K/V of `tokens`. Only its prompt rows
    /// are kept for reuse (decode rows come from other kernels, so reusing
    /// them would change outputs). Replaces entries it extends; skips it when
    /// an entry already covers it.
    pub fn insert(&mut self, mut tokens: Vec<u32>, cache: SequenceCache) {
        tokens.truncate(cache.prompt_len());
        if tokens.len() < MIN_REUSE || self.capacity == 0 {
            return;
        }
        self.tick += 1;
        if let Some(e) = self.entries.iter_mut().find(|e| common_prefix(&e.tokens, &tokens) == tokens.len()) {
            e.last_used = self.tick; // already covered
            return;
        }
        // A tight copy of the prompt rows: the sequence's own buffers have room for its answer.
        let Some(cache) = cache.prefix(tokens.len()) else { return };
        let size = cache.bytes();
        if size > self.capacity {
            return;
        }
        let mut i = 0;
        while i < self.entries.len() {
            let e = &self.entries[i];
            if common_prefix(&e.tokens, &tokens) == e.tokens.len() {
                self.bytes -= e.cache.bytes();
                self.entries.swap_remove(i);
            } else {
                i += 1;
            }
        }
        self.bytes += size;
        self.entries.push(Entry { tokens, cache, last_used: self.tick });
        while self.bytes > self.capacity {
            let oldest = (0..self.entries.len()).min_by_key(|&i| self.entries[i].last_used).expect("bytes > 0 means entries");
            self.bytes -= self.entries[oldest].cache.bytes();
            self.entries.swap_remove(oldest);
        }
    }

    /// Drops every entry.
    pub fn clear(&mut self) {
        self.entries.clear();
        self.bytes = 0;
    }
}

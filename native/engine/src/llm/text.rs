//! Turning generated token ids into text a piece at a time: never emits half
//! a UTF-8 character, and holds back text that may be the start of a stop
//! sequence until it is known not to be one.

use crate::{EngineError, Result};
use tokenizers::Tokenizer;

/// Incremental detokenizer. Decodes a short window of recent tokens so that
/// byte-level BPE pieces which only form valid UTF-8 together are emitted once
/// complete, and so that leading-space handling matches a full decode.
pub struct IncrementalDecoder {
    tokens: Vec<u32>,
    prefix_offset: usize,
    read_offset: usize,
}

impl IncrementalDecoder {
    pub fn new() -> Self {
        Self { tokens: Vec::new(), prefix_offset: 0, read_offset: 0 }
    }

    /// Adds one token and returns the newly completed text (possibly empty).
    pub fn push(&mut self, tok: &Tokenizer, id: u32) -> Result<String> {
        self.tokens.push(id);
        let prefix = tok
            .decode(&self.tokens[self.prefix_offset..self.read_offset], false)
            .map_err(EngineError::tokenizer)?;
        let full = tok.decode(&self.tokens[self.prefix_offset..], false).map_err(EngineError::tokenizer)?;
        if full.len() > prefix.len() && !full.ends_with('\u{FFFD}') && full.is_char_boundary(prefix.len()) {
            let new = full[prefix.len()..].to_string();
            self.prefix_offset = self.read_offset;
            self.read_offset = self.tokens.len();
            Ok(new)
        } else {
            Ok(String::new())
        }
    }

    /// Text still pending at the end of generation (an incomplete character
    /// is emitted as U+FFFD rather than dropped).
    pub fn flush(&mut self, tok: &Tokenizer) -> Result<String> {
        let prefix = tok
            .decode(&self.tokens[self.prefix_offset..self.read_offset], false)
            .map_err(EngineError::tokenizer)?;
        let full = tok.decode(&self.tokens[self.prefix_offset..], false).map_err(EngineError::tokenizer)?;
        self.prefix_offset = self.tokens.len();
        self.read_offset = self.tokens.len();
        Ok(if full.len() > prefix.len() && full.is_char_boundary(prefix.len()) {
            full[prefix.len()..].to_string()
        } else {
            String::new()
        })
    }
}

impl Default for IncrementalDecoder {
    fn default() -> Self {
        Self::new()
    }
}

/// Watches the output for stop sequences.
pub struct StopMatcher {
    stops: Vec<String>,
    pending: String,
}

/// What to do with text after a stop check.
#[derive(Debug, PartialEq, Eq)]
pub enum StopOutcome {
    /// Emit this text and continue.
    Continue(String),
    /// Emit this text (the output before the stop sequence) and finish.
    Stop(String),
}

impl StopMatcher {
    pub fn new(stops: Vec<String>) -> Self {
        Self { stops, pending: String::new() }
    }

    /// Feeds new text; returns what can be released.
    pub fn feed(&mut self, text: &str) -> StopOutcome {
        if self.stops.is_empty() {
            return StopOutcome::Continue(text.to_string());
        }
        self.pending.push_str(text);
        // Earliest complete stop sequence wins.
        if let Some(pos) = self.stops.iter().filter_map(|s| self.pending.find(s.as_str())).min() {
            let out = self.pending[..pos].to_string();
            self.pending.clear();
            return StopOutcome::Stop(out);
        }
        // Hold back the longest suffix that is a prefix of some stop sequence.
        let mut hold = 0;
        for s in &self.stops {
            for (i, _) in self.pending.char_indices() {
                let suffix = &self.pending[i..];
                if s.starts_with(suffix) {
                    hold = hold.max(suffix.len());
                    break;
                }
            }
        }
        let cut = self.pending.len() - hold;
        let out = self.pending[..cut].to_string();
        self.pending.drain(..cut);
        StopOutcome::Continue(out)
    }

    /// Releases held-back text at the end of generation.
    pub fn flush(&mut self) -> String {
        std::mem::take(&mut self.pending)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_sequence_split_across_pieces() {
        let mut m = StopMatcher::new(vec!["STOP".into()]);
        assert_eq!(m.feed("hello S"), StopOutcome::Continue("hello ".into()));
        assert_eq!(m.feed("TO"), StopOutcome::Continue(String::new()));
        assert_eq!(m.feed("P and more"), StopOutcome::Stop(String::new()));
    }

    #[test]
    fn false_start_is_released() {
        let mut m = StopMatcher::new(vec!["STOP".into()]);
        assert_eq!(m.feed("ST"), StopOutcome::Continue(String::new()));
        assert_eq!(m.feed("ay"), StopOutcome::Continue("STay".into()));
        assert_eq!(m.flush(), "");
    }

    #[test]
    fn multibyte_text_is_cut_on_char_boundaries() {
        let mut m = StopMatcher::new(vec!["é!".into()]);
        assert_eq!(m.feed("café"), StopOutcome::Continue("caf".into()));
        assert_eq!(m.feed("!x"), StopOutcome::Stop(String::new()));
    }
}

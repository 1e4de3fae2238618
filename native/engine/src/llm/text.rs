//! Turning generated token ids into text a piece at a time: never emits half
//! a UTF-8 character, and holds back text that may be the start of a stop
//! sequence until it is known not to be one.

use crate::{EngineError, Result};
use tokenizers::Tokenizer;

/// Incremental detokenizer. Decodes a short window of recent tokens so that
/// byte-level BPE pieces which only form valid UTF-8 together are emitted once
/// complete, and so that leading-space handling matches a full decode.
///
/// Text whose decode ends in U+FFFD is held back, since the next tokens may
/// complete the character (the approach of TGI, vLLM and `tokenizers`'
/// `DecodeStream`). Unlike theirs, the hold is bounded: a UTF-8 character is at
/// most 4 bytes and every token adds at least one, so an unfinished character
/// lies within the last [`MAX_UNFINISHED_TOKENS`] tokens. Once more are held,
/// everything before a cut among those last tokens is final, whatever comes
/// next, and is released; invalid bytes stream as U+FFFD instead of stalling
/// the output (llama.cpp's server likewise holds at most an unfinished
/// character's bytes). This keeps both the silence and the decode window, so
/// the cost per token, constant.
pub struct IncrementalDecoder {
    tokens: Vec<u32>,
    /// Start of the decode window: text before it has been emitted and is
    /// context only, so that leading-space handling matches a full decode.
    prefix_offset: usize,
    /// Tokens before this have been emitted.
    read_offset: usize,
}

/// Tokens an unfinished UTF-8 character can still span: its at most 3 bytes
/// come from at most 3 tokens.
const MAX_UNFINISHED_TOKENS: usize = 3;

/// Held tokens past which the tail is cut even where no cut agrees with the
/// full decode (only a tokenizer whose tokens start inside characters, or
/// byte-fallback runs whose decode is all-or-nothing, get here): a bounded
/// window matters more than the exact count of U+FFFD in broken output.
const MAX_HELD_TOKENS: usize = 16;

const REPLACEMENT: char = '\u{FFFD}';

impl IncrementalDecoder {
    pub fn new() -> Self {
        Self { tokens: Vec::new(), prefix_offset: 0, read_offset: 0 }
    }

    fn decode(&self, tok: &Tokenizer, from: usize, to: usize) -> Result<String> {
        tok.decode(&self.tokens[from..to], false).map_err(EngineError::tokenizer)
    }

    /// Marks the tokens before `read` as emitted and returns `text`.
    fn release(&mut self, text: &str, read: usize) -> String {
        self.prefix_offset = self.read_offset;
        self.read_offset = read;
        text.to_string()
    }

    /// Adds one token and returns the newly completed text (possibly empty).
    pub fn push(&mut self, tok: &Tokenizer, id: u32) -> Result<String> {
        self.tokens.push(id);
        let end = self.tokens.len();
        let prefix = self.decode(tok, self.prefix_offset, self.read_offset)?;
        let full = self.decode(tok, self.prefix_offset, end)?;
        if full.len() > prefix.len() && !full.ends_with(REPLACEMENT) && full.starts_with(&prefix) {
            return Ok(self.release(&full[prefix.len()..], end));
        }
        let held = end - self.read_offset;
        if held <= MAX_UNFINISHED_TOKENS {
            return Ok(String::new());
        }
        // More held than an unfinished character can span: release up to the
        // latest cut where decoding the two sides apart gives the same text as
        // decoding them together. There no UTF-8 sequence crosses the cut, and
        // the one before it was ended by a byte already seen, so later tokens
        // cannot change the text before the cut.
        for cut in (end - MAX_UNFINISHED_TOKENS..end).rev() {
            let head = self.decode(tok, self.prefix_offset, cut)?;
            if head.len() > prefix.len() && head.starts_with(&prefix) && full.starts_with(&head) {
                let tail = self.decode(tok, cut, end)?;
                if full.len() == head.len() + tail.len() && full.ends_with(&tail) {
                    return Ok(self.release(&head[prefix.len()..], cut));
                }
            }
        }
        if held < MAX_HELD_TOKENS {
            return Ok(String::new());
        }
        // No agreeing cut: cut anyway and restart the window there.
        let cut = end - MAX_UNFINISHED_TOKENS;
        let head = self.decode(tok, self.prefix_offset, cut)?;
        let text = match head.strip_prefix(prefix.as_str()) {
            Some(text) => text.to_string(),
            None => self.decode(tok, self.read_offset, cut)?,
        };
        self.prefix_offset = cut;
        self.read_offset = cut;
        Ok(text)
    }

    /// Text still pending at the end of generation (an incomplete character
    /// is emitted as U+FFFD rather than dropped).
    pub fn flush(&mut self, tok: &Tokenizer) -> Result<String> {
        let end = self.tokens.len();
        let prefix = self.decode(tok, self.prefix_offset, self.read_offset)?;
        let full = self.decode(tok, self.prefix_offset, end)?;
        let text = match full.strip_prefix(prefix.as_str()) {
            Some(text) => text.to_string(),
            None => self.decode(tok, self.read_offset, end)?,
        };
        self.prefix_offset = end;
        self.read_offset = end;
        Ok(text)
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

#[cfg(test)]
mod decoder_tests {
    use super::*;
    use serde_json::json;

    /// GPT-2 `bytes_to_unicode`: the character that stands for byte `b`.
    fn byte_char(b: u8) -> char {
        let printable = |c: u32| (33..=126).contains(&c) || (161..=172).contains(&c) || (174..=255).contains(&c);
        let b = u32::from(b);
        if printable(b) {
            return char::from_u32(b).unwrap();
        }
        let n = (0..b).filter(|&x| !printable(x)).count() as u32;
        char::from_u32(256 + n).unwrap()
    }

    /// A byte-level BPE tokenizer (Qwen, SmolLM, GPT-2 style) whose id `b` is byte `b`.
    fn byte_level() -> Tokenizer {
        let vocab: serde_json::Map<_, _> = (0..=255u8).map(|b| (byte_char(b).to_string(), json!(b))).collect();
        json!({
            "version": "1.0", "truncation": null, "padding": null, "added_tokens": [], "normalizer": null,
            "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": true},
            "post_processor": null,
            "decoder": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false},
            "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
                "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
                "vocab": vocab, "merges": []}
        })
        .to_string()
        .parse()
        .unwrap()
    }

    /// Streams `ids` through a decoder: the pieces, and the most tokens that were
    /// pushed in a row without any text coming out.
    fn stream(tok: &Tokenizer, ids: &[u32]) -> (Vec<String>, usize) {
        let mut d = IncrementalDecoder::new();
        let (mut pieces, mut silent, mut longest) = (Vec::new(), 0, 0);
        for &id in ids {
            let piece = d.push(tok, id).unwrap();
            silent = if piece.is_empty() { silent + 1 } else { 0 };
            longest = longest.max(silent);
            pieces.push(piece);
        }
        pieces.push(d.flush(tok).unwrap());
        (pieces, longest)
    }

    fn ids(bytes: &[u8]) -> Vec<u32> {
        bytes.iter().map(|&b| u32::from(b)).collect()
    }

    /// A SentencePiece-style tokenizer with byte fallback (Llama 2, Mistral):
    /// id `b` is the byte token `<0xbb>`, 256 is "▁a". Its decoder turns a whole
    /// run of byte tokens into U+FFFD per byte unless the run is valid UTF-8.
    fn byte_fallback() -> Tokenizer {
        let mut vocab: serde_json::Map<_, _> = (0..=255u8).map(|b| (format!("<0x{b:02X}>"), json!(b))).collect();
        vocab.insert("\u{2581}a".into(), json!(256));
        json!({
            "version": "1.0", "truncation": null, "padding": null, "added_tokens": [], "normalizer": null,
            "pre_tokenizer": null, "post_processor": null,
            "decoder": {"type": "Sequence", "decoders": [
                {"type": "Replace", "pattern": {"String": "\u{2581}"}, "content": " "},
                {"type": "ByteFallback"}, {"type": "Fuse"},
                {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
            "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
                "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": true, "ignore_merges": false,
                "vocab": vocab, "merges": []}
        })
        .to_string()
        .parse()
        .unwrap()
    }

    #[test]
    fn a_split_emoji_comes_out_whole() {
        let tok = byte_level();
        let text = "a 😀 b";
        let (pieces, longest_silence) = stream(&tok, &ids(text.as_bytes()));
        assert!(pieces.contains(&"😀".to_string()), "{pieces:?}");
        assert!(pieces.iter().all(|p| !p.contains('\u{FFFD}')), "{pieces:?}");
        assert_eq!(longest_silence, 3);
        assert_eq!(pieces.concat(), text);
    }

    #[test]
    fn valid_text_around_invalid_bytes_streams_as_a_full_decode_would() {
        let tok = byte_level();
        let mut bytes = Vec::new();
        // Characters of 1-4 bytes, stray continuation bytes, bytes never valid in
        // UTF-8, truncated sequences cut off by ASCII, by another lead byte and by
        // a valid character, and a run long enough to have to be released early.
        for part in [
            "héllo 世界 😀😀".as_bytes(), &[0x8E, 0x8E], b"x", &[0xF7, 0xFF, 0xC0], "é".as_bytes(),
            &[0xF0, 0x9F, 0x98], b"y", &[0xE4, 0xB8], &[0xF0, 0x9F], "😀".as_bytes(), &[0xF2, 0x8E, 0xF7].repeat(20),
            "界".as_bytes(), &[0xE4, 0xB8],
        ] {
            bytes.extend_from_slice(part);
        }
        let run = ids(&bytes);
        let (pieces, longest_silence) = stream(&tok, &run);
        assert!(longest_silence <= MAX_UNFINISHED_TOKENS, "held {longest_silence} tokens in a row");
        assert_eq!(pieces.concat(), tok.decode(&run, false).unwrap());
        // Every prefix of the stream, too: what was released is never taken back.
        for n in 1..run.len() {
            assert_eq!(stream(&tok, &run[..n]).0.concat(), tok.decode(&run[..n], false).unwrap(), "first {n} tokens");
        }
    }

    #[test]
    fn byte_fallback_tokenizers_stream_split_characters_whole_and_invalid_runs_bounded() {
        let tok = byte_fallback();
        let mut run = vec![256];
        run.extend(ids("😀é".as_bytes()));
        run.push(256);
        let (pieces, _) = stream(&tok, &run);
        assert_eq!(pieces.concat(), "a😀é a");
        assert!(pieces.contains(&"😀".to_string()), "{pieces:?}");

        let invalid = ids(&[0xF2, 0x8E, 0xF7].repeat(200));
        let (pieces, longest_silence) = stream(&tok, &invalid);
        assert!(longest_silence <= MAX_UNFINISHED_TOKENS, "held {longest_silence} tokens in a row");
        assert_eq!(pieces.concat(), tok.decode(&invalid, false).unwrap());

        // A run that starts valid: its decode all at once is all U+FFFD, which no
        // stream that showed the emoji early can match; the hold stays bounded.
        let mut run = ids("😀".as_bytes());
        run.extend(&invalid);
        let (pieces, longest_silence) = stream(&tok, &run);
        assert!(longest_silence < 16, "held {longest_silence} tokens in a row (MAX_HELD_TOKENS is 16)");
        assert_eq!(pieces.concat().chars().count(), 1 + invalid.len(), "the emoji, then one U+FFFD per byte");
    }

    #[test]
    fn a_long_run_of_invalid_bytes_streams_in_bounded_steps() {
        // The tiny-busy fixture's greedy output: bytes F2 8E F7 over and over.
        // No prefix of it ever becomes valid UTF-8 and every decode of it ends in U+FFFD.
        let tok = byte_level();
        let run = ids(&[0xF2, 0x8E, 0xF7].repeat(2724));
        let started = std::time::Instant::now();
        let (pieces, longest_silence) = stream(&tok, &run);
        let took = started.elapsed();
        eprintln!("{} invalid byte tokens streamed in {took:?}", run.len());
        assert!(longest_silence <= MAX_UNFINISHED_TOKENS, "text held back for {longest_silence} tokens in a row");
        assert_eq!(pieces.concat(), tok.decode(&run, false).unwrap(), "streamed == decoded at once");
    }
}

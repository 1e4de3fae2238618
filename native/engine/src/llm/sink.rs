//! Where a generation's events go. The scheduler never blocks on a consumer:
//! it pauses a sequence whose consumer has fallen behind (back-pressure) and
//! cancels one whose consumer is gone.

use super::types::GenerationEvent;
use crossbeam_channel::{Receiver, Sender};

/// A consumer of one generation's events.
pub trait EventSink: Send + 'static {
    /// Delivers an event. `false` means the consumer is gone: the scheduler
    /// cancels the generation.
    fn deliver(&mut self, event: GenerationEvent) -> bool;
    /// Events delivered but not consumed yet. Above [`HIGH_WATER`] the
    /// sequence is not stepped until the consumer catches up.
    fn backlog(&self) -> usize;
}

/// Backlog at which a generation pauses.
pub const HIGH_WATER: usize = 64;

/// A sink backed by a crossbeam channel (used by Rust callers and tests).
pub struct ChannelSink(pub Sender<GenerationEvent>);

impl EventSink for ChannelSink {
    fn deliver(&mut self, event: GenerationEvent) -> bool {
        self.0.send(event).is_ok()
    }
    fn backlog(&self) -> usize {
        self.0.len()
    }
}

/// A channel sink and its receiving end.
pub fn channel_sink() -> (ChannelSink, Receiver<GenerationEvent>) {
    let (tx, rx) = crossbeam_channel::unbounded();
    (ChannelSink(tx), rx)
}

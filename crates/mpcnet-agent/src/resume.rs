//! What each side keeps of one direction of an MPyC stream so that a new carrier (QUIC
//! connection) can take the stream up at the exact byte where the last one left it: the sender
//! holds what the receiver has not confirmed handing to MPyC, the receiver counts what it has
//! handed over. Sans-IO: the forwards drive it; ARCHITECTURE.md ("Links that heal") has the
//! protocol and why it loses and repeats nothing.

use std::collections::VecDeque;

use bytes::Bytes;

pub use crate::wire::Position;

/// Bytes a sender holds unconfirmed per stream direction. Past it the sender stops reading
/// MPyC's socket until confirmations come: MPyC feels back-pressure, never loss. 4 MiB keeps a
/// stream at 1 Gbit/s over 30 ms of confirmation delay (a round trip plus the report's wait).
pub const REPLAY_BOUND: usize = 4 * 1024 * 1024;

/// Why a peer's report of what it delivered cannot be true.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResumeError {
    #[error("the peer reported {reported} bytes delivered after it had confirmed {confirmed}")]
    Backwards { reported: u64, confirmed: u64 },
    #[error("the peer reported {reported} bytes delivered of the {sent} sent")]
    Ahead { reported: u64, sent: u64 },
    #[error("the peer reported the end delivered before this side ended")]
    EndAhead,
}

/// The sending side of one stream direction: what MPyC wrote, and what of it is unconfirmed.
#[derive(Debug)]
pub struct Outgoing {
    /// Bytes from `confirmed` to `sent`, in the pieces they came in.
    unconfirmed: VecDeque<Bytes>,
    /// How many bytes at the front of `unconfirmed[0]` are confirmed already.
    front_confirmed: usize,
    confirmed: Position,
    sent: Position,
    bound: usize,
}

impl Outgoing {
    /// A direction that holds at most `bound` unconfirmed bytes.
    pub fn new(bound: usize) -> Self {
        Self {
            unconfirmed: VecDeque::new(),
            front_confirmed: 0,
            confirmed: Position::default(),
            sent: Position::default(),
            bound,
        }
    }

    /// How many more bytes may be taken from MPyC now.
    pub fn room(&self) -> usize {
        self.bound.saturating_sub(self.held())
    }

    /// Bytes held unconfirmed.
    pub fn held(&self) -> usize {
        usize::try_from(self.sent.bytes - self.confirmed.bytes).unwrap_or(usize::MAX)
    }

    /// Takes `bytes` MPyC wrote, to be sent and held until confirmed. The caller takes no more
    /// than [`Self::room`]; past it the bound is broken, not refused.
    pub fn push(&mut self, bytes: Bytes) {
        debug_assert!(!self.sent.ended, "no bytes after the end");
        if bytes.is_empty() {
            return;
        }
        self.sent.bytes += bytes.len() as u64;
        self.unconfirmed.push_back(bytes);
    }

    /// MPyC closed its socket: the direction ends after what was pushed.
    pub fn end(&mut self) {
        self.sent.ended = true;
    }

    /// Everything taken from MPyC so far.
    pub fn sent(&self) -> Position {
        self.sent
    }

    /// Whether everything, the end included, is confirmed: the direction is done.
    pub fn is_done(&self) -> bool {
        self.sent.ended && self.confirmed == self.sent
    }

    /// The receiver says it has delivered up to `reported`: drops what that confirms.
    pub fn confirm(&mut self, reported: Position) -> Result<(), ResumeError> {
        self.check(reported)?;
        let mut release = usize::try_from(reported.bytes - self.confirmed.bytes)
            .expect("checked: at most what is held");
        while release > 0 {
            let front = self.unconfirmed.front().expect("held bytes are in pieces");
            let left = front.len() - self.front_confirmed;
            if release < left {
                self.front_confirmed += release;
                break;
            }
            release -= left;
            self.unconfirmed.pop_front();
            self.front_confirmed = 0;
        }
        self.confirmed = reported;
        Ok(())
    }

    /// A new carrier: the receiver has delivered up to `reported`. Confirms that, and returns
    /// the bytes to send again from there, in order (the end, if pushed, follows them).
    pub fn resume_from(&mut self, reported: Position) -> Result<Vec<Bytes>, ResumeError> {
        self.confirm(reported)?;
        let mut again: Vec<Bytes> = self.unconfirmed.iter().cloned().collect();
        if let Some(first) = again.first_mut() {
            *first = first.slice(self.front_confirmed..);
        }
        Ok(again)
    }

    fn check(&self, reported: Position) -> Result<(), ResumeError> {
        if reported.bytes < self.confirmed.bytes || (self.confirmed.ended && !reported.ended) {
            return Err(ResumeError::Backwards {
                reported: reported.bytes,
                confirmed: self.confirmed.bytes,
            });
        }
        if reported.bytes > self.sent.bytes {
            return Err(ResumeError::Ahead {
                reported: reported.bytes,
                sent: self.sent.bytes,
            });
        }
        if reported.ended && !(self.sent.ended && reported.bytes == self.sent.bytes) {
            return Err(ResumeError::EndAhead);
        }
        Ok(())
    }
}

/// The receiving side of one stream direction: what has been handed to MPyC.
#[derive(Debug, Default)]
pub struct Incoming {
    delivered: Position,
    reported: Position,
}

impl Incoming {
    /// `bytes` more were written to MPyC's socket.
    pub fn delivered(&mut self, bytes: usize) {
        debug_assert!(
            bytes == 0 || !self.delivered.ended,
            "no bytes after the end"
        );
        self.delivered.bytes += bytes as u64;
    }

    /// The sender's end was passed on to MPyC (its socket's write side shut down).
    pub fn ended(&mut self) {
        self.delivered.ended = true;
    }

    /// Everything handed to MPyC so far: what a resumption starts from.
    pub fn position(&self) -> Position {
        self.delivered
    }

    /// Whether the sender should hear what was delivered now (it would otherwise have to hold
    /// it): a quarter of its bound has grown since the last report, or the end came. A report
    /// that is not due goes out on the next timer (see ARCHITECTURE.md).
    pub fn report_due(&self, bound: usize) -> bool {
        let grown = self.delivered.bytes - self.reported.bytes;
        grown >= (bound / 4) as u64 || (self.delivered.ended && !self.reported.ended)
    }

    /// Whether anything was delivered since the last report.
    pub fn has_news(&self) -> bool {
        self.delivered != self.reported
    }

    /// Marks the current position reported and returns it.
    pub fn report(&mut self) -> Position {
        self.reported = self.delivered;
        self.delivered
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn position(bytes: u64) -> Position {
        Position {
            bytes,
            ended: false,
        }
    }

    fn joined(pieces: &[Bytes]) -> Vec<u8> {
        pieces
            .iter()
            .flat_map(|piece| piece.iter().copied())
            .collect()
    }

    #[test]
    fn confirmed_bytes_are_released_and_room_comes_back() {
        let mut out = Outgoing::new(10);
        out.push(Bytes::from_static(b"abcd"));
        out.push(Bytes::from_static(b"efgh"));
        assert_eq!((out.held(), out.room()), (8, 2));
        out.confirm(position(6)).expect("within what was sent");
        assert_eq!((out.held(), out.room()), (2, 8));
        assert_eq!(joined(&out.resume_from(position(6)).expect("same")), b"gh");
    }

    #[test]
    fn a_resumption_sends_again_exactly_what_was_not_delivered() {
        let mut out = Outgoing::new(100);
        for piece in [&b"one "[..], b"two ", b"three"] {
            out.push(Bytes::copy_from_slice(piece));
        }
        out.confirm(position(2)).expect("ok");
        let again = out.resume_from(position(5)).expect("ok");
        assert_eq!(joined(&again), b"wo three");
        assert!(!out.is_done());
    }

    #[test]
    fn the_end_is_a_position_confirmed_like_bytes() {
        let mut out = Outgoing::new(100);
        out.push(Bytes::from_static(b"xyz"));
        assert_eq!(
            out.confirm(Position {
                bytes: 3,
                ended: true
            }),
            Err(ResumeError::EndAhead),
            "the end cannot be delivered before it was sent"
        );
        out.end();
        out.confirm(position(3)).expect("bytes, not the end yet");
        assert!(!out.is_done());
        out.confirm(Position {
            bytes: 3,
            ended: true,
        })
        .expect("the end delivered");
        assert!(out.is_done());
    }

    #[test]
    fn impossible_reports_are_refused_and_change_nothing() {
        let mut out = Outgoing::new(100);
        out.push(Bytes::from_static(b"0123456789"));
        out.confirm(position(4)).expect("ok");
        assert_eq!(
            out.confirm(position(3)),
            Err(ResumeError::Backwards {
                reported: 3,
                confirmed: 4
            })
        );
        assert_eq!(
            out.resume_from(position(11)),
            Err(ResumeError::Ahead {
                reported: 11,
                sent: 10
            })
        );
        assert_eq!(
            joined(&out.resume_from(position(4)).expect("ok")),
            b"456789"
        );
    }

    #[test]
    fn reports_fall_due_at_a_quarter_of_the_bound_or_at_the_end() {
        let mut incoming = Incoming::default();
        incoming.delivered(24);
        assert!(!incoming.report_due(100));
        assert!(incoming.has_news());
        incoming.delivered(1);
        assert!(incoming.report_due(100));
        assert_eq!(incoming.report(), position(25));
        assert!(!incoming.has_news());
        incoming.ended();
        assert!(incoming.report_due(100));
        assert_eq!(
            incoming.report(),
            Position {
                bytes: 25,
                ended: true
            }
        );
    }
}

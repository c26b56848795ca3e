//! What agents say to each other on a peer link, byte by byte (besides MPyC's own bytes).
//!
//! **MPyC stream** (bidirectional; one per MPyC TCP connection, opened by the agent of the
//! party whose MPyC connects, i.e. the lower-numbered one):
//!
//! ```text
//! opener → receiver:  01 | p0 p1 | MPyC's bytes ...
//!                     kind  MPyC's own first two bytes: the connecting party's id, u16 LE
//! receiver → opener:  MPyC's bytes ...
//! ```
//!
//! The opener writes the kind byte itself; `p0 p1` are the first bytes MPyC sends, forwarded
//! as they are. The receiver reads the 3-byte header ([`MpycHeader`]), checks that the id names
//! the peer of the link, and hands `p0 p1` and the rest to its MPyC. A direction ends with FIN
//! when MPyC's connection ends cleanly, or with RESET_STREAM [`RESET_LOCAL_BROKE`] when it
//! broke. A receiver that refuses a stream (no header in time, wrong kind, another party's id)
//! sends STOP_SENDING [`STOP_REFUSED`].
//!
//! **Finished message** (one-way stream, once per run, from each party to every peer):
//!
//! ```text
//! 02 | c0 c1 c2 c3 | b0 b1 | FIN
//! kind  the party's MPyC exit code, i32 LE (-1: it stopped its run early)
//!                    the party whose failure or loss made it stop, u16 LE (ffff: none)
//! ```
//!
//! The cause lets a party that hears first from a party that only followed name the party
//! that really failed.
//!
//! **Connection close codes**: [`CLOSE_NOT_A_PARTY`] for a key outside the sealed manifest,
//! [`CLOSE_ALREADY_LINKED`] for a second connection from a party that is linked.
//!
//! This module depends on `std` only, so the fuzz target includes it as it is.

use std::fmt;

/// QUIC close code for a connection from a key that is not a party of the session.
pub const CLOSE_NOT_A_PARTY: u32 = 0x4d01;
/// QUIC close code for a second connection from a party that is already linked.
pub const CLOSE_ALREADY_LINKED: u32 = 0x4d02;
/// Stream reset code: the local MPyC connection broke (as opposed to ending cleanly).
pub const RESET_LOCAL_BROKE: u32 = 1;
/// Stop-sending code: the receiving agent refused the stream (no valid header in time).
pub const STOP_REFUSED: u32 = 2;

/// The first byte of every stream an agent opens to a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum StreamKind {
    /// A bidirectional stream carrying one MPyC connection.
    Mpyc = 1,
    /// A one-way stream carrying the [`FinishedMessage`].
    Finished = 2,
}

impl StreamKind {
    /// The kind `byte` names.
    pub fn from_byte(byte: u8) -> Result<Self, WireError> {
        match byte {
            1 => Ok(Self::Mpyc),
            2 => Ok(Self::Finished),
            other => Err(WireError::UnknownKind(other)),
        }
    }
}

/// Why bytes from a peer are not a valid header or message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireError {
    /// Not the length the header or message has.
    Length { expected: usize, got: usize },
    /// A first byte that names no stream kind.
    UnknownKind(u8),
    /// A known kind, but not the one this stream must carry.
    WrongKind {
        expected: StreamKind,
        got: StreamKind,
    },
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Length { expected, got } => write!(f, "{got} bytes where {expected} belong"),
            Self::UnknownKind(byte) => write!(f, "unknown stream kind {byte}"),
            Self::WrongKind { expected, got } => {
                write!(f, "a {got:?} stream where a {expected:?} stream belongs")
            }
        }
    }
}

impl std::error::Error for WireError {}

/// Checks that `bytes` are exactly `N` long and start with `kind`.
fn expect_kind<const N: usize>(bytes: &[u8], kind: StreamKind) -> Result<[u8; N], WireError> {
    let exact: [u8; N] = bytes.try_into().map_err(|_| WireError::Length {
        expected: N,
        got: bytes.len(),
    })?;
    let got = StreamKind::from_byte(exact[0])?;
    if got != kind {
        return Err(WireError::WrongKind {
            expected: kind,
            got,
        });
    }
    Ok(exact)
}

/// What the opener of an MPyC stream writes before MPyC's own bytes.
pub const MPYC_STREAM_OPENING: [u8; 1] = [StreamKind::Mpyc as u8];

/// The start of an MPyC stream: its kind, then the party id MPyC sent first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MpycHeader {
    /// The party id the connecting MPyC claims (u16 LE on the wire).
    pub claimed_party: u16,
}

impl MpycHeader {
    /// Bytes of the header on the wire.
    pub const LEN: usize = 3;

    /// The header in `bytes`, which must be exactly [`Self::LEN`] long.
    pub fn parse(bytes: &[u8]) -> Result<Self, WireError> {
        let [_, low, high] = expect_kind::<{ Self::LEN }>(bytes, StreamKind::Mpyc)?;
        Ok(Self {
            claimed_party: u16::from_le_bytes([low, high]),
        })
    }

    /// The header as it travels.
    pub fn to_bytes(self) -> [u8; Self::LEN] {
        let [low, high] = self.claimed_party.to_le_bytes();
        [StreamKind::Mpyc as u8, low, high]
    }

    /// MPyC's own bytes in the header, to hand on to the local MPyC.
    pub fn mpyc_bytes(self) -> [u8; 2] {
        self.claimed_party.to_le_bytes()
    }
}

/// "My MPyC has exited with this code", and which party's failure made it stop (if one did):
/// the whole content of a finished stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FinishedMessage {
    pub exit_code: i32,
    /// The party whose failure or loss made this party stop its run.
    pub cause: Option<u16>,
}

/// The cause on the wire when there is none.
const NO_CAUSE: u16 = u16::MAX;

impl FinishedMessage {
    /// Bytes of the message on the wire.
    pub const LEN: usize = 7;

    /// The message in `bytes`, which must be exactly [`Self::LEN`] long.
    pub fn parse(bytes: &[u8]) -> Result<Self, WireError> {
        let [_, c0, c1, c2, c3, b0, b1] =
            expect_kind::<{ Self::LEN }>(bytes, StreamKind::Finished)?;
        let cause = u16::from_le_bytes([b0, b1]);
        Ok(Self {
            exit_code: i32::from_le_bytes([c0, c1, c2, c3]),
            cause: (cause != NO_CAUSE).then_some(cause),
        })
    }

    /// The message as it travels.
    pub fn to_bytes(self) -> [u8; Self::LEN] {
        let [c0, c1, c2, c3] = self.exit_code.to_le_bytes();
        let [b0, b1] = self.cause.unwrap_or(NO_CAUSE).to_le_bytes();
        [StreamKind::Finished as u8, c0, c1, c2, c3, b0, b1]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_mpyc_header_reads_the_claimed_party_little_endian() {
        let header = MpycHeader::parse(&[1, 2, 1]).expect("valid");
        assert_eq!(header.claimed_party, 0x0102);
        assert_eq!(header.to_bytes(), [1, 2, 1]);
        assert_eq!(header.mpyc_bytes(), [2, 1]);
    }

    #[test]
    fn malformed_headers_are_refused_with_their_reason() {
        assert_eq!(
            MpycHeader::parse(&[1, 0]),
            Err(WireError::Length {
                expected: 3,
                got: 2
            })
        );
        assert_eq!(
            MpycHeader::parse(&[9, 0, 0]),
            Err(WireError::UnknownKind(9))
        );
        assert_eq!(
            MpycHeader::parse(&[2, 0, 0]),
            Err(WireError::WrongKind {
                expected: StreamKind::Mpyc,
                got: StreamKind::Finished
            })
        );
    }

    #[test]
    fn a_finished_message_round_trips_and_refuses_other_kinds() {
        for exit_code in [0, 3, -1, i32::MIN, i32::MAX] {
            for cause in [None, Some(0), Some(7), Some(u16::MAX - 1)] {
                let message = FinishedMessage { exit_code, cause };
                assert_eq!(FinishedMessage::parse(&message.to_bytes()), Ok(message));
            }
        }
        let aborted_for_party_2 = FinishedMessage {
            exit_code: -1,
            cause: Some(2),
        };
        assert_eq!(
            aborted_for_party_2.to_bytes(),
            [2, 0xff, 0xff, 0xff, 0xff, 2, 0]
        );
        let failed_alone = FinishedMessage {
            exit_code: 3,
            cause: None,
        };
        assert_eq!(failed_alone.to_bytes(), [2, 3, 0, 0, 0, 0xff, 0xff]);
        assert!(FinishedMessage::parse(&[1, 0, 0, 0, 0, 0, 0]).is_err());
        assert!(FinishedMessage::parse(&[2, 0, 0, 0, 0]).is_err());
        assert!(FinishedMessage::parse(&[2, 0, 0, 0, 0, 0, 0, 0]).is_err());
    }
}

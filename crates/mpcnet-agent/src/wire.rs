//! What agents say to each other on a peer link, byte by byte (besides MPyC's own bytes).
//!
//! A *link* to a peer lives for the whole run; one QUIC connection at a time (its *carrier*)
//! carries it, and a carrier that ends while both agents live is replaced by a new one (see
//! ARCHITECTURE.md, "Links that heal"). Every MPyC TCP connection is a *stream* of the link,
//! numbered by the agent whose MPyC connected (the lower-numbered party, which also dials the
//! carriers); on each carrier a stream rides one QUIC bidirectional stream.
//!
//! **MPyC stream** (bidirectional; opened by the numbering side on every carrier the stream
//! rides):
//!
//! ```text
//! opener → receiver:  01 | s0..s3 | d0..d7 | e | MPyC's bytes from the receiver's position ...
//!                     kind stream   what the opener has delivered of the receiver's bytes
//!                          u32 LE   (u64 LE, then 1 if their end too, else 0)
//! receiver → opener:  d0..d7 | e | MPyC's bytes from the opener's position ...
//!                     what the receiver has delivered of the opener's bytes
//! ```
//!
//! A stream's bytes are MPyC's, counted from its first: the first two, which the opener's MPyC
//! sends first, are the connecting party's id (u16 LE); a receiver takes a new stream only if
//! they name the peer of the link. The opener waits for the answer before it sends. A
//! direction ends with FIN when MPyC's connection ended cleanly, or with RESET_STREAM
//! [`RESET_LOCAL_BROKE`] when it broke (also the answer to resuming a stream that broke); a
//! leg given up while its carrier may live is reset with [`RESET_LEG_ABANDONED`]. A receiver
//! that refuses a stream (no opening in time, another party's id, a stream number it never
//! gave out) sends STOP_SENDING [`STOP_REFUSED`].
//!
//! **Control stream** (one-way, one per carrier from each side, for the carrier's life):
//!
//! ```text
//! 03 | then messages of 14 bytes: t | s0..s3 | d0..d7 | e
//!      t = 1: "I have delivered this much of stream s" (the direction towards the sender);
//!      t = 0: a heartbeat (the rest zero), at least every second
//! ```
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
//! [`CLOSE_REPLACED`] for a carrier that a newer one replaced, [`CLOSE_RELAY_GONE`] for a
//! carrier relayed through a relay this party gave up on, [`CLOSE_RUN_OVER`] for the carriers
//! of a party whose run is over.
//!
//! This module depends on `std` only, so the fuzz target includes it as it is.

use std::fmt;

/// QUIC close code for a connection from a key that is not a party of the session.
pub const CLOSE_NOT_A_PARTY: u32 = 0x4d01;
/// QUIC close code for a carrier that a newer carrier of the same link replaced.
pub const CLOSE_REPLACED: u32 = 0x4d02;
/// QUIC close code for a carrier whose relay this party gave up on (it stayed unreachable): the
/// link dials again through the relays that remain.
pub const CLOSE_RELAY_GONE: u32 = 0x4d04;
/// QUIC close code for a carrier closed because this party's run is over: the link ends. (A
/// carrier closed with any other code, e.g. a connection handle dropped, is dialed again.)
pub const CLOSE_RUN_OVER: u32 = 0x4d03;
/// Stream reset code: the local MPyC connection broke (as opposed to ending cleanly).
pub const RESET_LOCAL_BROKE: u32 = 1;
/// Stream reset code: this leg of the stream is abandoned (its carrier is going); the stream
/// goes on on the next carrier. A QUIC stream dropped unreset would end cleanly instead.
pub const RESET_LEG_ABANDONED: u32 = 3;
/// Stop-sending code: the receiving agent refused the stream (no valid opening in time).
pub const STOP_REFUSED: u32 = 2;

/// The first byte of every stream an agent opens to a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum StreamKind {
    /// A bidirectional stream carrying one MPyC connection.
    Mpyc = 1,
    /// A one-way stream carrying the [`FinishedMessage`].
    Finished = 2,
    /// A one-way stream carrying [`ControlMessage`]s for a carrier's life.
    Control = 3,
}

impl StreamKind {
    /// The kind `byte` names.
    pub fn from_byte(byte: u8) -> Result<Self, WireError> {
        match byte {
            1 => Ok(Self::Mpyc),
            2 => Ok(Self::Finished),
            3 => Ok(Self::Control),
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
    /// A byte that must be 0 or 1 (an end flag) or name a control message, and does not.
    BadFlag(u8),
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Length { expected, got } => write!(f, "{got} bytes where {expected} belong"),
            Self::UnknownKind(byte) => write!(f, "unknown stream kind {byte}"),
            Self::WrongKind { expected, got } => {
                write!(f, "a {got:?} stream where a {expected:?} stream belongs")
            }
            Self::BadFlag(byte) => write!(f, "{byte} where a flag (0 or 1) belongs"),
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

/// How far one direction of a stream has come: bytes, and whether its end (MPyC closed its
/// socket) is included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Position {
    pub bytes: u64,
    pub ended: bool,
}

impl Position {
    /// Bytes of a position on the wire.
    pub const LEN: usize = 9;

    fn parse(bytes: [u8; Self::LEN]) -> Result<Self, WireError> {
        let [b0, b1, b2, b3, b4, b5, b6, b7, ended] = bytes;
        let ended = match ended {
            0 => false,
            1 => true,
            other => return Err(WireError::BadFlag(other)),
        };
        Ok(Self {
            bytes: u64::from_le_bytes([b0, b1, b2, b3, b4, b5, b6, b7]),
            ended,
        })
    }

    fn to_bytes(self) -> [u8; Self::LEN] {
        let mut out = [0u8; Self::LEN];
        out[..8].copy_from_slice(&self.bytes.to_le_bytes());
        out[8] = u8::from(self.ended);
        out
    }
}

/// The `N` bytes of `bytes` from `at` on, as an array (the caller checked the length).
fn array<const N: usize>(bytes: &[u8], at: usize) -> [u8; N] {
    bytes[at..at + N]
        .try_into()
        .expect("caller checked the length")
}

/// What the opener writes first on every QUIC stream an MPyC stream rides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamOpening {
    /// The stream's number on the link (given by the opener, counting up from 0).
    pub stream: u32,
    /// What the opener has handed to its MPyC of the receiver's direction.
    pub delivered: Position,
}

impl StreamOpening {
    /// Bytes of the opening on the wire.
    pub const LEN: usize = 5 + Position::LEN;

    /// The opening in `bytes`, which must be exactly [`Self::LEN`] long.
    pub fn parse(bytes: &[u8]) -> Result<Self, WireError> {
        let exact = expect_kind::<{ Self::LEN }>(bytes, StreamKind::Mpyc)?;
        Ok(Self {
            stream: u32::from_le_bytes(array(&exact, 1)),
            delivered: Position::parse(array(&exact, 5))?,
        })
    }

    /// The opening as it travels.
    pub fn to_bytes(self) -> [u8; Self::LEN] {
        let mut out = [0u8; Self::LEN];
        out[0] = StreamKind::Mpyc as u8;
        out[1..5].copy_from_slice(&self.stream.to_le_bytes());
        out[5..].copy_from_slice(&self.delivered.to_bytes());
        out
    }
}

/// What the receiver of a stream opening answers first: what it has handed to its MPyC of the
/// opener's direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamAnswer {
    pub delivered: Position,
}

impl StreamAnswer {
    /// Bytes of the answer on the wire.
    pub const LEN: usize = Position::LEN;

    /// The answer in `bytes`, which must be exactly [`Self::LEN`] long.
    pub fn parse(bytes: &[u8]) -> Result<Self, WireError> {
        let exact: [u8; Self::LEN] = bytes.try_into().map_err(|_| WireError::Length {
            expected: Self::LEN,
            got: bytes.len(),
        })?;
        Ok(Self {
            delivered: Position::parse(exact)?,
        })
    }

    /// The answer as it travels.
    pub fn to_bytes(self) -> [u8; Self::LEN] {
        self.delivered.to_bytes()
    }
}

/// The first byte of a control stream.
pub const CONTROL_STREAM_OPENING: [u8; 1] = [StreamKind::Control as u8];

/// One message on a control stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlMessage {
    /// "I am here": sent at least every second, so a carrier that carries nothing is noticed.
    Heartbeat,
    /// "I have handed this much of stream `stream` to my MPyC": the sender may drop it.
    Delivered { stream: u32, delivered: Position },
}

impl ControlMessage {
    /// Bytes of a message on the wire.
    pub const LEN: usize = 5 + Position::LEN;

    /// The message in `bytes`, which must be exactly [`Self::LEN`] long.
    pub fn parse(bytes: &[u8]) -> Result<Self, WireError> {
        let exact: [u8; Self::LEN] = bytes.try_into().map_err(|_| WireError::Length {
            expected: Self::LEN,
            got: bytes.len(),
        })?;
        match exact[0] {
            0 if exact[1..].iter().all(|byte| *byte == 0) => Ok(Self::Heartbeat),
            1 => Ok(Self::Delivered {
                stream: u32::from_le_bytes(array(&exact, 1)),
                delivered: Position::parse(array(&exact, 5))?,
            }),
            other => Err(WireError::BadFlag(other)),
        }
    }

    /// The message as it travels.
    pub fn to_bytes(self) -> [u8; Self::LEN] {
        let mut out = [0u8; Self::LEN];
        if let Self::Delivered { stream, delivered } = self {
            out[0] = 1;
            out[1..5].copy_from_slice(&stream.to_le_bytes());
            out[5..].copy_from_slice(&delivered.to_bytes());
        }
        out
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
    fn a_stream_opening_reads_number_and_position_little_endian() {
        let bytes = [1, 2, 1, 0, 0, 7, 0, 0, 0, 0, 0, 0, 1, 1];
        let opening = StreamOpening::parse(&bytes).expect("valid");
        assert_eq!(opening.stream, 0x0102);
        assert_eq!(
            opening.delivered,
            Position {
                bytes: 0x0100_0000_0000_0007,
                ended: true
            }
        );
        assert_eq!(opening.to_bytes(), bytes);
        let answer = StreamAnswer::parse(&bytes[5..]).expect("valid");
        assert_eq!(answer.delivered, opening.delivered);
        assert_eq!(answer.to_bytes(), bytes[5..]);
    }

    #[test]
    fn malformed_openings_are_refused_with_their_reason() {
        let mut bytes = StreamOpening {
            stream: 3,
            delivered: Position::default(),
        }
        .to_bytes();
        assert_eq!(
            StreamOpening::parse(&bytes[..13]),
            Err(WireError::Length {
                expected: 14,
                got: 13
            })
        );
        bytes[13] = 2;
        assert_eq!(StreamOpening::parse(&bytes), Err(WireError::BadFlag(2)));
        bytes[13] = 0;
        bytes[0] = 9;
        assert_eq!(StreamOpening::parse(&bytes), Err(WireError::UnknownKind(9)));
        bytes[0] = 2;
        assert_eq!(
            StreamOpening::parse(&bytes),
            Err(WireError::WrongKind {
                expected: StreamKind::Mpyc,
                got: StreamKind::Finished
            })
        );
    }

    #[test]
    fn control_messages_round_trip_and_refuse_unknown_tags() {
        let delivered = ControlMessage::Delivered {
            stream: 5,
            delivered: Position {
                bytes: 1 << 40,
                ended: false,
            },
        };
        for message in [ControlMessage::Heartbeat, delivered] {
            assert_eq!(ControlMessage::parse(&message.to_bytes()), Ok(message));
        }
        assert_eq!(ControlMessage::Heartbeat.to_bytes(), [0; 14]);
        let mut bytes = delivered.to_bytes();
        bytes[0] = 7;
        assert_eq!(ControlMessage::parse(&bytes), Err(WireError::BadFlag(7)));
        let mut heartbeat = [0; 14];
        heartbeat[3] = 1;
        assert!(
            ControlMessage::parse(&heartbeat).is_err(),
            "a heartbeat carries zeros only"
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

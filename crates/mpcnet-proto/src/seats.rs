//! Named seats: the parties a creator lists in advance, by key, so that only they can join
//! (a leaked invite admits no stranger), each in the seat of its place in the list.
//!
//! The list travels in the signed offer ([`LobbyOffer::seats`](crate::LobbyOffer)): seat 0 is
//! the creator, seat `i` is MPyC's party `i`. People write it as lines, one party each:
//!
//! ```text
//! # the salary survey
//! did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK  bob
//! did:key:z6MktwupdmLXVVqTzCw4i46r4uGyosGXRnR3XjN4Zq7oMMsw  carol   # from carol's `mpcnet id`
//! ```
//!
//! A line is a `did:key`, then optionally the party's name (the rest of the line); a `#` at the
//! start of a line or after a space begins a comment; blank lines are skipped. The web page's
//! create form reads the same lines (`web/protocol.js`, `parseSeatList`).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::did_key::DidKeyError;
use crate::identity::PublicKey;
use crate::label::{Label, LabelError};
use crate::signed::VerifyError;

/// One seat of a named session: who may take it, and what the creator calls them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Seat {
    pub key: PublicKey,
    /// The creator's name for the party, if the list gave one (the party still joins under its
    /// own name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<Label>,
}

impl fmt::Display for Seat {
    /// The seat as a line of a list: `did:key:z6Mk… name`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.key.did_key())?;
        match &self.name {
            Some(name) => write!(f, " {name}"),
            None => Ok(()),
        }
    }
}

/// Why one line of a list is not a seat.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SeatLineError {
    #[error(transparent)]
    Key(#[from] DidKeyError),
    #[error(transparent)]
    Name(#[from] LabelError),
    #[error("an empty entry: give a did:key, then optionally a name")]
    Empty,
}

/// Why a list of parties was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SeatListError {
    #[error("line {line}: {error}")]
    Line { line: usize, error: SeatLineError },
    #[error("{did} is listed twice")]
    Duplicate { did: String },
    #[error(
        "your own key {did} is listed after other parties: list it first, or leave it out (you are party 0)"
    )]
    CreatorNotFirst { did: String },
    #[error("no party is listed besides you")]
    NoOtherParty,
    #[error("{count} parties are listed, you included; a session has at most {max}", max = crate::offer::MAX_PARTIES)]
    TooMany { count: usize },
}

impl std::str::FromStr for Seat {
    type Err = SeatLineError;

    /// One entry (`did:key:z6Mk… [name]`, comments allowed): the value of a `--party` flag.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        parse_line(text)?.ok_or(SeatLineError::Empty)
    }
}

/// The seat a line names, or `None` for a blank or comment line.
pub fn parse_line(line: &str) -> Result<Option<Seat>, SeatLineError> {
    let content = without_comment(line).trim();
    if content.is_empty() {
        return Ok(None);
    }
    let (did, name) = content
        .split_once(char::is_whitespace)
        .unwrap_or((content, ""));
    let key = PublicKey::from_did_key(did)?;
    let name = match name.trim() {
        "" => None,
        name => Some(Label::new("a party's name", name)?),
    };
    Ok(Some(Seat { key, name }))
}

/// `line` up to its comment: a `#` at its start or after whitespace.
fn without_comment(line: &str) -> &str {
    let mut previous_is_space = true;
    for (at, c) in line.char_indices() {
        if c == '#' && previous_is_space {
            return &line[..at];
        }
        previous_is_space = c.is_whitespace();
    }
    line
}

/// The seats listed in `text`, one per line, in order; a malformed line is named by its number
/// (from 1), and so is a key listed twice.
pub fn parse_list(text: &str) -> Result<Vec<Seat>, SeatListError> {
    let mut seats = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let parsed = parse_line(line).map_err(|error| SeatListError::Line {
            line: index + 1,
            error,
        })?;
        seats.extend(parsed);
    }
    check_unique(&seats)?;
    Ok(seats)
}

fn check_unique(seats: &[Seat]) -> Result<(), SeatListError> {
    for (index, seat) in seats.iter().enumerate() {
        if seats[..index].iter().any(|earlier| earlier.key == seat.key) {
            return Err(SeatListError::Duplicate {
                did: seat.key.did_key(),
            });
        }
    }
    Ok(())
}

/// The seats of a session `creator` makes for the parties `listed`: the creator in seat 0, the
/// others in the list's order. The creator's own key may be listed first (its name then names
/// seat 0) or be left out.
pub fn with_creator(creator: &PublicKey, listed: Vec<Seat>) -> Result<Vec<Seat>, SeatListError> {
    check_unique(&listed)?;
    let mut seats = listed;
    match seats.iter().position(|seat| seat.key == *creator) {
        Some(0) => {}
        Some(_) => {
            return Err(SeatListError::CreatorNotFirst {
                did: creator.did_key(),
            });
        }
        None => seats.insert(
            0,
            Seat {
                key: *creator,
                name: None,
            },
        ),
    }
    if seats.len() < 2 {
        return Err(SeatListError::NoOtherParty);
    }
    if seats.len() > usize::from(crate::offer::MAX_PARTIES) {
        return Err(SeatListError::TooMany { count: seats.len() });
    }
    Ok(seats)
}

/// Checks an offer's seats: none (an open session), or one per party, the creator's first, no
/// key twice.
pub(crate) fn check(seats: &[Seat], parties: u16, creator: &PublicKey) -> Result<(), VerifyError> {
    if seats.is_empty() {
        return Ok(());
    }
    if seats.len() != usize::from(parties) {
        return Err(VerifyError::SeatsDisagreeWithCount {
            seats: seats.len(),
            parties,
        });
    }
    if seats[0].key != *creator {
        return Err(VerifyError::FirstSeatNotCreator);
    }
    check_unique(seats).map_err(|_| VerifyError::SeatListedTwice)
}

/// The seat of `key` among `seats`, if it is listed.
pub fn seat_of(seats: &[Seat], key: &PublicKey) -> Option<u16> {
    let index = seats.iter().position(|seat| seat.key == *key)?;
    Some(u16::try_from(index).expect("an offer holds at most MAX_PARTIES seats"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Identity;

    fn seat(key: &PublicKey, name: Option<&str>) -> Seat {
        Seat {
            key: *key,
            name: name.map(|name| Label::new("name", name).expect("label")),
        }
    }

    #[test]
    fn a_list_reads_keys_names_comments_and_blank_lines() {
        let [bob, carol, dave] = [(); 3].map(|()| Identity::generate().public());
        let text = format!(
            "# the survey\n\n{}  bob\n   {}\tCarol Smith  # met at the conference\n{}#not-a-comment\n",
            bob.did_key(),
            carol.did_key(),
            dave.did_key(),
        );
        let parsed = parse_list(&text);
        // "did:key:…#not-a-comment" is one token: a did:key with a fragment, which is refused.
        assert!(
            matches!(
                parsed,
                Err(SeatListError::Line {
                    line: 5,
                    error: SeatLineError::Key(_)
                })
            ),
            "{parsed:?}"
        );
        let text = text.replace("#not-a-comment", " # dave, unnamed");
        let seats = parse_list(&text).expect("parses");
        assert_eq!(
            seats,
            [
                seat(&bob, Some("bob")),
                seat(&carol, Some("Carol Smith")),
                seat(&dave, None)
            ]
        );
        let printed: Vec<String> = seats.iter().map(ToString::to_string).collect();
        let again = parse_list(&printed.join("\n")).expect("printed lines parse");
        assert_eq!(again, seats);
    }

    #[test]
    fn malformed_lines_are_named_by_number() {
        let bob = Identity::generate().public();
        let cases = [
            (format!("{}\nbob", bob.did_key()), 2),
            (format!("\n\n{}", bob.fingerprint()), 3),
            (format!("{} evil\u{1b}[2J", bob.did_key()), 1),
            (format!("{} {}", bob.did_key(), "x".repeat(65)), 1),
        ];
        for (text, line) in cases {
            match parse_list(&text) {
                Err(SeatListError::Line { line: got, .. }) => assert_eq!(got, line, "{text:?}"),
                other => panic!("{text:?}: {other:?}"),
            }
        }
        let twice = format!("{} bob\n{} robert", bob.did_key(), bob.did_key());
        assert_eq!(
            parse_list(&twice),
            Err(SeatListError::Duplicate { did: bob.did_key() })
        );
        assert_eq!(
            "  # only a comment".parse::<Seat>(),
            Err(SeatLineError::Empty)
        );
    }

    #[test]
    fn the_creator_takes_seat_0_whether_listed_first_or_left_out() {
        let [alice, bob, carol] = [(); 3].map(|()| Identity::generate().public());
        let others = vec![seat(&bob, Some("bob")), seat(&carol, None)];
        let seats = with_creator(&alice, others.clone()).expect("seats");
        assert_eq!(seats[0], seat(&alice, None));
        assert_eq!(seats[1..], others[..]);

        let listed_first = [vec![seat(&alice, Some("me"))], others.clone()].concat();
        assert_eq!(
            with_creator(&alice, listed_first.clone()).expect("seats"),
            listed_first
        );
        let listed_later = vec![seat(&bob, None), seat(&alice, None)];
        assert_eq!(
            with_creator(&alice, listed_later),
            Err(SeatListError::CreatorNotFirst {
                did: alice.did_key()
            })
        );
        assert_eq!(
            with_creator(&alice, vec![seat(&alice, None)]),
            Err(SeatListError::NoOtherParty)
        );
        let crowd: Vec<Seat> = (0..64)
            .map(|_| seat(&Identity::generate().public(), None))
            .collect();
        assert_eq!(
            with_creator(&alice, crowd),
            Err(SeatListError::TooMany { count: 65 })
        );
    }

    #[test]
    fn an_offers_seats_must_match_its_count_and_creator() {
        let [alice, bob] = [(); 2].map(|()| Identity::generate().public());
        let seats = [seat(&alice, None), seat(&bob, None)];
        assert_eq!(check(&[], 3, &alice), Ok(()));
        assert_eq!(check(&seats, 2, &alice), Ok(()));
        assert_eq!(
            check(&seats, 3, &alice),
            Err(VerifyError::SeatsDisagreeWithCount {
                seats: 2,
                parties: 3
            })
        );
        assert_eq!(
            check(&seats, 2, &bob),
            Err(VerifyError::FirstSeatNotCreator)
        );
        assert_eq!(
            check(&[seat(&alice, None), seat(&alice, None)], 2, &alice),
            Err(VerifyError::SeatListedTwice)
        );
        assert_eq!(seat_of(&seats, &bob), Some(1));
        assert_eq!(seat_of(&seats, &Identity::generate().public()), None);
    }
}

//! Roles: an asymmetric program's seats, each running its own entry point of the bundle with
//! its own public arguments. Parsed from `SEATS=VALUE` (seats as `0`, `1,2` or `1-3`), checked
//! with the offer, and resolved per seat when a party runs.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::bundle::{Bundle, BundleError, BundlePath};
use crate::label::check_printable;
use crate::offer::{LobbyOffer, MAX_ARG_CHARS, MAX_ARGS, MAX_PARTIES};
use crate::signed::VerifyError;

/// Seats that run `main` of the bundle, with `args` in place of the session's when given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Role {
    /// The seats (MPyC's `-I`) of this role, ascending.
    pub seats: Vec<u16>,
    /// The entry point these seats run, a path inside the bundle.
    pub main: BundlePath,
    /// The role's public arguments, replacing the session's; absent: the session's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<String>>,
}

/// Why a `--role` or `--role-arg` value cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoleSyntaxError {
    #[error("{0:?} is not SEATS=VALUE (e.g. 0=auctioneer.py or 1-2=bidder.py)")]
    NoEquals(String),
    #[error("{0:?} is not a seat list: seats are numbers, commas and ranges (0, 1,2, 1-3)")]
    BadSeats(String),
    #[error("the seat list {0:?} names seat {1} twice")]
    SeatTwice(String, u16),
}

impl Role {
    /// Whether `seat` has this role.
    pub fn has(&self, seat: u16) -> bool {
        self.seats.contains(&seat)
    }
}

/// Reads `SEATS=VALUE`: the seats, ascending, and the text after the first `=`.
pub fn parse_assignment(text: &str) -> Result<(Vec<u16>, String), RoleSyntaxError> {
    let (seats, value) = text
        .split_once('=')
        .filter(|(_, value)| !value.is_empty())
        .ok_or_else(|| RoleSyntaxError::NoEquals(text.to_owned()))?;
    Ok((parse_seats(seats)?, value.to_owned()))
}

/// Reads a seat list: comma-separated seats and `FIRST-LAST` ranges, each seat once.
pub fn parse_seats(text: &str) -> Result<Vec<u16>, RoleSyntaxError> {
    let bad = || RoleSyntaxError::BadSeats(text.to_owned());
    let mut seats = BTreeSet::new();
    for item in text.split(',') {
        let (first, last) = item.split_once('-').unwrap_or((item, item));
        let seat = |s: &str| {
            let s = s.trim();
            let digits = !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
            digits
                .then(|| s.parse::<u16>().ok())
                .flatten()
                .filter(|n| *n < MAX_PARTIES)
        };
        let (first, last) = (seat(first).ok_or_else(bad)?, seat(last).ok_or_else(bad)?);
        if first > last {
            return Err(bad());
        }
        for seat in first..=last {
            if !seats.insert(seat) {
                return Err(RoleSyntaxError::SeatTwice(text.to_owned(), seat));
            }
        }
    }
    Ok(seats.into_iter().collect())
}

/// `seats` (ascending) written back as the shortest list of seats and ranges.
pub fn seats_text(seats: &[u16]) -> String {
    let mut runs: Vec<(u16, u16)> = Vec::new();
    for &seat in seats {
        match runs.last_mut() {
            Some((_, last)) if *last + 1 == seat => *last = seat,
            _ => runs.push((seat, seat)),
        }
    }
    let run = |(first, last): &(u16, u16)| match first == last {
        true => first.to_string(),
        false => format!("{first}-{last}"),
    };
    runs.iter().map(run).collect::<Vec<_>>().join(",")
}

/// Checks an offer's roles: a bundle's only, each seat a party's and in one role at most,
/// the role's arguments as bounded as the session's.
pub fn check(offer: &LobbyOffer) -> Result<(), VerifyError> {
    if offer.roles.is_empty() {
        return Ok(());
    }
    if offer.program.main.is_none() {
        return Err(VerifyError::RolesNeedBundle);
    }
    let mut taken = BTreeSet::new();
    for role in &offer.roles {
        if role.seats.is_empty() {
            return Err(VerifyError::RoleWithoutSeats);
        }
        for &seat in &role.seats {
            if seat >= offer.parties {
                let parties = offer.parties;
                return Err(VerifyError::RoleSeatBeyondParties { seat, parties });
            }
            if !taken.insert(seat) {
                return Err(VerifyError::SeatInTwoRoles { seat });
            }
        }
        check_args(role.args.as_deref().unwrap_or_default())?;
    }
    Ok(())
}

/// Checks public arguments: at most [`MAX_ARGS`], each printable and bounded.
pub fn check_args(args: &[String]) -> Result<(), VerifyError> {
    if args.len() > MAX_ARGS {
        return Err(VerifyError::TooManyArgs { count: args.len() });
    }
    for arg in args {
        check_printable("a program argument", arg, MAX_ARG_CHARS)
            .map_err(VerifyError::UnsafeArg)?;
    }
    Ok(())
}

/// The entry point and public arguments of `seat`: its role's, else the program's `main` (none
/// for a single file) with the session's arguments.
pub fn entry_for(offer: &LobbyOffer, seat: u16) -> (Option<&BundlePath>, &[String]) {
    match offer.roles.iter().find(|role| role.has(seat)) {
        Some(role) => (
            Some(&role.main),
            role.args.as_deref().unwrap_or(&offer.args),
        ),
        None => (offer.program.main.as_ref(), &offer.args),
    }
}

/// The seats no role names, which run the program's `main`.
pub fn seats_without_role(offer: &LobbyOffer) -> Vec<u16> {
    (0..offer.parties)
        .filter(|seat| !offer.roles.iter().any(|role| role.has(*seat)))
        .collect()
}

/// Parses `bytes` as the bundle `offer` names (see [`Bundle::verified`]), refusing it unless
/// every role's entry point is one of its files.
pub fn verified_bundle(bytes: &[u8], offer: &LobbyOffer) -> Result<Bundle, BundleError> {
    let bundle = Bundle::verified(bytes, &offer.program)?;
    for role in &offer.roles {
        bundle.entry_point(Some(role.main.as_str()))?;
    }
    Ok(bundle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::offer::tests::{role, signed_offer};
    use crate::{Identity, JoinSecret};

    /// A bundle is refused unless it holds every role's entry point, besides `main`.
    #[test]
    fn a_bundle_without_a_roles_entry_point_is_refused() {
        let path = |text: &str| BundlePath::new(text).expect("path");
        let bundle = Bundle::from_files([
            (path("auctioneer.py"), b"a".to_vec()),
            (path("bidder.py"), b"b".to_vec()),
        ])
        .expect("bundle")
        .to_bytes();
        let (creator, secret) = (Identity::generate(), JoinSecret::generate());
        let mut offer = signed_offer(&creator, &secret, 3, b"x")
            .decode_unverified()
            .expect("decodes");
        offer.program = crate::ProgramInfo::describe_bundle(
            offer.program.file_name,
            &bundle,
            path("bidder.py"),
        );
        offer.roles = vec![role(&[0], "auctioneer.py")];
        assert!(verified_bundle(&bundle, &offer).is_ok());
        offer.roles = vec![role(&[0], "auctioneer.py"), role(&[1], "clerk.py")];
        assert_eq!(
            verified_bundle(&bundle, &offer),
            Err(BundleError::NoEntryPoint {
                main: "clerk.py".into()
            })
        );
    }

    #[test]
    fn seat_lists_read_numbers_commas_and_ranges() {
        assert_eq!(parse_seats("0"), Ok(vec![0]));
        assert_eq!(parse_seats("2,1"), Ok(vec![1, 2]));
        assert_eq!(parse_seats("1-3"), Ok(vec![1, 2, 3]));
        assert_eq!(parse_seats("0, 4-5,2"), Ok(vec![0, 2, 4, 5]));
        assert_eq!(seats_text(&[0, 2, 4, 5, 6]), "0,2,4-6");
        for bad in ["", "a", "1-", "-1", "3-1", "1,,2", "64", "1.5", "+1"] {
            assert_eq!(
                parse_seats(bad),
                Err(RoleSyntaxError::BadSeats(bad.into())),
                "{bad:?}"
            );
        }
        assert_eq!(
            parse_seats("1-3,2"),
            Err(RoleSyntaxError::SeatTwice("1-3,2".into(), 2))
        );
    }

    #[test]
    fn an_assignment_is_seats_equals_value() {
        assert_eq!(
            parse_assignment("1-2=bidder.py"),
            Ok((vec![1, 2], "bidder.py".into()))
        );
        assert_eq!(parse_assignment("0=--x=1"), Ok((vec![0], "--x=1".into())));
        for bad in ["bidder.py", "1=", "=x"] {
            assert!(parse_assignment(bad).is_err(), "{bad:?}");
        }
    }
}

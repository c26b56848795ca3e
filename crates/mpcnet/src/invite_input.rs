//! Reading an invite from where the user put it: the argument itself, stdin (`-`), a file,
//! or `MPCNET_INVITE` (command lines are visible to every local user; files and variables are not).
//! A creator link (the web page's link for the session's creator) reads as its invite plus the
//! creator's key.

use std::io::Read as _;
use std::path::Path;

use anyhow::Context as _;
use mpcnet_proto::{CreatorLink, Identity, Invite, InviteError};

use crate::BadInput;
use crate::cli::InviteArg;

/// The invite `arg` designates; for a creator link (made by the lobby's web page) also the
/// creator's key it carries, which this party then acts with.
pub fn read_invite(arg: &InviteArg) -> anyhow::Result<(Invite, Option<Identity>)> {
    let Some(given) = arg.invite.as_deref() else {
        return Err(BadInput(
            "no invite: give it as an argument, `-` to read stdin, a file path, or MPCNET_INVITE"
                .into(),
        )
        .into());
    };
    let text = if given == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("reading the invite from stdin")?;
        text
    } else if given.contains("://") || !Path::new(given).is_file() {
        given.to_owned()
    } else {
        std::fs::read_to_string(given)
            .map_err(|e| BadInput(format!("reading the invite from {given}: {e}")))?
    };
    if text.contains(CreatorLink::FRAGMENT_PREFIX) {
        let link: CreatorLink = text.parse().map_err(anyhow::Error::new::<InviteError>)?;
        return Ok((link.invite, Some(link.creator_key)));
    }
    let invite: Invite = text.parse().map_err(anyhow::Error::new::<InviteError>)?;
    Ok((invite, None))
}

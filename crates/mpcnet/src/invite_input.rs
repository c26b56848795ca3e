//! Reading an invite from where the user put it: the argument itself, stdin (`-`), a file,
//! or `MPCNET_INVITE` (command lines are visible to every local user; files and variables are not).

use std::io::Read as _;
use std::path::Path;

use anyhow::Context as _;
use mpcnet_proto::{Invite, InviteError};

use crate::BadInput;
use crate::cli::InviteArg;

/// The invite `arg` designates.
pub fn read_invite(arg: &InviteArg) -> anyhow::Result<Invite> {
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
    text.parse::<Invite>()
        .map_err(|error: InviteError| anyhow::Error::new(error))
}

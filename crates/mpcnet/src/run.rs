//! `mpcnet run`: from an invite to an executed MPyC program. Joins if needed, waits for the
//! seal, verifies, shows the program, links with every peer and runs MPyC over the links.

use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use mpcnet_agent::launcher;
use mpcnet_agent::python::ChosenPython;
use mpcnet_agent::{Peer, RelayPlan, RunPlan, SessionRelay};
use mpcnet_client::session::{self, SessionReport};
use mpcnet_client::{Home, LobbyClient};
use mpcnet_proto::Invite;

use crate::BadInput;
use crate::cli::RunArgs;

pub async fn run(home: &Home, args: RunArgs) -> anyhow::Result<ExitCode> {
    let (invite, creator_key) = crate::invite_input::read_invite(&args.invite)?;
    let private_args = private_args(&args)?;
    let identity = crate::party_identity(home, creator_key)?;
    let chosen = ChosenPython::choose(args.python.as_deref())?;
    let mpyc_version = launcher::check_mpyc(&chosen.path).await?;
    let say = |line: &str| eprintln!("mpcnet: {line}");
    say(&format!("Python {chosen}, MPyC {mpyc_version}"));
    let python = chosen.path;

    // Review before joining: a seat taken is a seat the creator will seal.
    let reviewed = session::status(home, &identity, &invite, args.program.as_deref())
        .await
        .context("reviewing the session")?;
    show_program(&reviewed, &private_args);
    if !args.yes {
        confirm(reviewed.program.to_review())?;
    }
    let approved: mpcnet_proto::Sha256Digest = reviewed.offer_sha256.parse()?;
    let name = crate::party_name(args.name.clone());
    let prove = crate::prove_with(&args.prove)?;
    session::join(
        home,
        &identity,
        &invite,
        &name,
        args.program.as_deref(),
        Some(&approved),
        prove.as_ref(),
    )
    .await
    .context("joining the session")?;
    let report = session::wait_until_sealed(
        home,
        &identity,
        &invite,
        args.program.as_deref(),
        args.timeout,
        |lobby| {
            let names: Vec<&str> = lobby
                .parties
                .iter()
                .map(|party| party.name.as_str())
                .collect();
            say(&format!(
                "waiting for the session to fill: {} of {} joined ({})",
                lobby.parties.len(),
                lobby.offer.parties,
                names.join(", ")
            ));
        },
    )
    .await
    .context("waiting for the session")?;
    let me = report
        .you
        .context("this party is not in the sealed manifest")?;
    say(&format!(
        "session sealed, fingerprint {} (compare it with the other parties); you are party {me} of {}",
        report.session_fingerprint.as_deref().unwrap_or("?"),
        report.parties_expected
    ));
    for party in &report.parties {
        if let Some(identity) = &party.identity {
            say(&format!(
                "party {} ({}): {identity}",
                party.index, party.name
            ));
        }
    }

    let mut plan = plan(home, &invite, identity, &report, me, python, &args).await?;
    plan.args.extend(private_args);
    let progress: mpcnet_agent::Progress = Arc::new(|line| eprintln!("mpcnet: {line}"));
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let outcome = mpcnet_agent::run(plan, interrupt, progress)
        .await
        .context("running the session")?;
    for link in &outcome.links {
        say(&format!(
            "party {} ({}): {}{}, {} bytes sent, {} received{}",
            link.index,
            link.name,
            link.route,
            link.rtt_ms
                .map(|rtt| format!(", rtt {rtt:.1} ms"))
                .unwrap_or_default(),
            link.bytes_sent,
            link.bytes_received,
            match link.reconnections {
                0 => String::new(),
                1 => ", reconnected once".into(),
                many => format!(", reconnected {many} times"),
            }
        ));
    }
    if !outcome.unfinished.is_empty() {
        say(&format!(
            "did not hear that these finished: {}",
            outcome.unfinished.join(", ")
        ));
    }
    say(&format!(
        "{} exited with code {}",
        report.program.file_name, outcome.exit_code
    ));
    Ok(ExitCode::from(u8::try_from(outcome.exit_code).unwrap_or(1)))
}

async fn plan(
    home: &Home,
    invite: &Invite,
    identity: mpcnet_proto::Identity,
    report: &SessionReport,
    me: u16,
    python: std::path::PathBuf,
    args: &RunArgs,
) -> anyhow::Result<RunPlan> {
    let lobby = LobbyClient::new(&invite.server)?;
    let info = lobby
        .info()
        .await
        .context("asking the lobby server about its relay")?;
    let relay = relay_plan(invite, report, info.relay_quic_port)?;
    let (program, public_args) = report.entry_for(me);
    let peers = report
        .parties
        .iter()
        .filter(|party| party.index != me)
        .map(|party| {
            let key: mpcnet_proto::PublicKey = party.key.parse()?;
            Ok(Peer {
                index: party.index,
                name: party.name.clone(),
                key: iroh::PublicKey::from_bytes(&key.to_bytes())?,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(RunPlan {
        identity,
        me,
        peers,
        relay,
        policy: args.path,
        bind: args.bind,
        lobby,
        lobby_id: invite.lobby_id(),
        python,
        // This seat's entry point and public arguments (its role's, if it has one); the
        // caller adds the private ones.
        program: program.to_path_buf(),
        args: public_args.to_vec(),
        link_timeout: args.timeout,
        finish_timeout: args.finish_timeout,
        patience: args.patience,
        status_file: Some(home.run_status_file(&invite.lobby_id())),
    })
}

/// The session's relays: the lobby server's (trusted as the invite pins the server), then the
/// creator's others, each with the pin the creator signed; every URL names the session.
fn relay_plan(
    invite: &Invite,
    report: &SessionReport,
    lobby_quic_port: Option<u16>,
) -> anyhow::Result<RelayPlan> {
    let lobby_relay: url::Url = report
        .relay_url
        .parse()
        .context("the manifest's relay URL")?;
    let session_relay = |url: &url::Url, quic_port, pin| SessionRelay {
        url: mpcnet_proto::api::session_relay_url(url, &invite.lobby_id()).into(),
        quic_port,
        pin,
    };
    let mut relays = vec![session_relay(
        &lobby_relay,
        lobby_quic_port,
        invite.server.pin(),
    )];
    for extra in &report.extra_relays {
        let extra: mpcnet_proto::ServerAddress =
            extra.parse().context("an extra relay of the manifest")?;
        relays.push(session_relay(extra.origin(), None, extra.pin()));
    }
    Ok(RelayPlan { relays })
}

/// This party's private arguments: the lines of `--private-args-file`, then those after `--`.
fn private_args(args: &RunArgs) -> anyhow::Result<Vec<String>> {
    let mut private = match &args.private_args_file {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| {
                BadInput(format!(
                    "reading private arguments from {}: {e}",
                    path.display()
                ))
            })?
            .lines()
            .map(str::to_owned)
            .collect(),
        None => Vec::new(),
    };
    private.extend(args.private_args.iter().cloned());
    Ok(private)
}

fn show_program(report: &SessionReport, private_args: &[String]) {
    let shown = |args: &[String]| {
        if args.is_empty() {
            "(none)".to_string()
        } else {
            args.join(" ")
        }
    };
    eprintln!(
        "mpcnet: session \"{}\" of {} parties; program {} ({} bytes, sha256 {})\n\
         mpcnet: arguments every party passes: {}\n\
         mpcnet: your own arguments: {}\n\
         mpcnet: the program, verified against the creator's signature, is at {}",
        report.name,
        report.parties_expected,
        report.program_name(),
        report.program.size,
        report.program.sha256,
        shown(&report.args),
        shown(private_args),
        report.program.to_review().display(),
    );
    for line in crate::report::roles(&report.roles).lines() {
        eprintln!("mpcnet: {line}");
    }
}

/// Asks before running a program, or refuses when nobody can be asked.
fn confirm(program: &Path) -> anyhow::Result<()> {
    if !std::io::stdin().is_terminal() {
        return Err(BadInput(format!(
            "not running {} without confirmation: read it, then pass --yes",
            program.display()
        ))
        .into());
    }
    eprint!("mpcnet: run it? [y/N] ");
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    if matches!(answer.trim(), "y" | "Y" | "yes") {
        Ok(())
    } else {
        Err(BadInput("not confirmed".into()).into())
    }
}

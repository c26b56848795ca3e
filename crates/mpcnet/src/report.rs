//! What the CLI shows a person: identities, sessions and invites (as text and QR code).

use std::fmt::Write as _;

use mpcnet_client::SessionReport;
use mpcnet_client::oidc::Prompt;
use mpcnet_client::session::{LocalRunStatus, RoleReport};
use mpcnet_proto::api::SeatView;
use mpcnet_proto::label::printable;
use mpcnet_proto::{Identity, Label, Seat};
use qrcode::QrCode;
use qrcode::render::unicode::Dense1x2;

/// The line `mpcnet id` prints for a creator to list: a line of a parties file (the did:key
/// and the name), the fingerprint in its comment.
pub fn identity_line(identity: &Identity, name: &Label) -> String {
    let key = identity.public();
    let seat = Seat {
        key,
        name: Some(name.clone()),
    };
    format!("{seat}  # fingerprint {}", key.fingerprint())
}

/// The identity's details, as `mpcnet id` shows them below its line.
pub fn identity(identity: &Identity) -> String {
    let key = identity.public();
    format!(
        "fingerprint  {}\ndid          {}\npublic key   {}\n",
        key.fingerprint(),
        key.did_key(),
        key
    )
}

/// The identity as `mpcnet id --json` prints it.
pub fn identity_json(identity: &Identity, name: &Label, line: &str) -> serde_json::Value {
    let key = identity.public();
    serde_json::json!({
        "line": line,
        "name": name.as_str(),
        "fingerprint": key.fingerprint().to_string(),
        "did": key.did_key(),
        "public_key": key.to_string(),
    })
}

/// A session as `mpcnet status` shows it.
pub fn session(report: &SessionReport) -> String {
    let mut text = String::new();
    let state = match report.state {
        "sealed" => format!(
            "sealed   fingerprint {}",
            report.session_fingerprint.as_deref().unwrap_or("?")
        ),
        "full" => {
            "full, waiting for the creator to seal it (the creator runs `mpcnet status`)".into()
        }
        _ => format!(
            "open, waiting for {} more part{}",
            usize::from(report.parties_expected) - report.parties.len(),
            if usize::from(report.parties_expected) - report.parties.len() == 1 {
                "y"
            } else {
                "ies"
            }
        ),
    };
    let _ = writeln!(
        text,
        "session  {}  (lobby {})",
        report.name, report.lobby_id
    );
    let _ = writeln!(text, "state    {state}");
    let _ = writeln!(
        text,
        "program  {}  {} bytes  sha256 {}",
        report.program_name(),
        report.program.size,
        report.program.sha256
    );
    let _ = writeln!(
        text,
        "         verified copy: {}",
        report.program.to_review().display()
    );
    if !report.args.is_empty() {
        let _ = writeln!(text, "args     {}", report.args.join(" "));
    }
    text.push_str(&roles(&report.roles));
    let _ = writeln!(text, "relay    {}", report.relay_url);
    for relay in &report.extra_relays {
        let _ = writeln!(text, "relay    {relay}");
    }
    if let Some(required) = &report.require_identity {
        let email = required.email.as_deref().map(printable);
        let _ = writeln!(
            text,
            "identity required from {}{}",
            printable(&required.issuer),
            email
                .map(|email| format!(", email {email}"))
                .unwrap_or_default()
        );
    }
    let _ = writeln!(
        text,
        "parties  {} of {}",
        report.parties.len(),
        report.parties_expected
    );
    let width = report
        .parties
        .iter()
        .map(|p| p.name.chars().count())
        .max()
        .unwrap_or(0);
    for party in &report.parties {
        let mut notes = Vec::new();
        if party.creator {
            notes.push("creator");
        }
        if report.you == Some(party.index) {
            notes.push("you");
        }
        let mut notes = if notes.is_empty() {
            String::new()
        } else {
            format!("  ({})", notes.join(", "))
        };
        if let Some(run) = &party.run {
            let _ = write!(notes, "  run {run}");
        }
        let _ = writeln!(
            text,
            "  {:>2}  {:<width$}  {}{notes}",
            party.index, party.name, party.fingerprint
        );
        if let Some(identity) = &party.identity {
            let _ = writeln!(text, "      {:<width$}  {identity}", "");
        }
    }
    text.push_str(&seats(&report.seats));
    if let Some(last_run) = &report.run {
        text.push_str(&run(last_run));
    }
    text
}

/// A named session's seats, one line each (nothing for an open session).
fn seats(seats: &[SeatView]) -> String {
    if seats.is_empty() {
        return String::new();
    }
    let mut text = String::from("seats    named: only these keys may join\n");
    let width = seats
        .iter()
        .map(|seat| seat.name.as_deref().map_or(1, |name| name.chars().count()))
        .max()
        .unwrap_or(0);
    for seat in seats {
        let _ = writeln!(
            text,
            "  {:>2}  {:<width$}  {}  {:<7}  {}",
            seat.index,
            seat.name.as_deref().unwrap_or("-"),
            seat.fingerprint,
            if seat.taken { "joined" } else { "waiting" },
            seat.did
        );
    }
    text
}

/// How a login asks the user to approve it (on stderr: stdout is for results).
pub fn login_prompt(prompt: Prompt<'_>) {
    match prompt {
        Prompt::Device(device) => {
            let url = device
                .verification_uri_complete
                .as_deref()
                .unwrap_or(&device.verification_uri);
            eprintln!(
                "mpcnet: to prove your identity, open {} and enter the code {} (waiting for the approval)",
                printable(url),
                printable(&device.user_code)
            );
        }
        Prompt::Browser(url) => eprintln!(
            "mpcnet: to prove your identity, open {} in a browser on this machine (waiting for the approval)",
            printable(url)
        ),
    }
}

/// An asymmetric program's role table, one line per role: its seats, entry point, the SHA-256
/// of that file inside the verified bundle, and its public arguments.
pub fn roles(roles: &[RoleReport]) -> String {
    if roles.is_empty() {
        return String::new();
    }
    let mut text = String::from("roles    seats run different entry points of the bundle:\n");
    let seats_width = roles.iter().map(|r| r.seats_text.len()).max().unwrap_or(0);
    let main_width = roles
        .iter()
        .map(|r| r.main.chars().count())
        .max()
        .unwrap_or(0);
    for role in roles {
        let seats = format!("{}{}", role.seats_text, if role.default { "*" } else { "" });
        let args = match role.args.is_empty() {
            true => "(no args)".to_string(),
            false => format!("args {}", role.args.join(" ")),
        };
        let _ = writeln!(
            text,
            "  seats {seats:<w$}  {:<main_width$}  sha256 {}  {args}",
            role.main,
            role.sha256,
            w = seats_width + 1
        );
    }
    if roles.iter().any(|role| role.default) {
        text.push_str("  (* the seats in no role: the bundle's entry point, the session's args)\n");
    }
    text
}

/// The latest run's links, one line per peer, as `mpcnet status` shows them.
fn run(run: &LocalRunStatus) -> String {
    let mut text = format!(
        "run      {} (as party {}, updated {:.1} s ago)\n",
        run.state,
        run.me,
        run.age_ms.unwrap_or_default() as f64 / 1000.0
    );
    for link in &run.links {
        let rtt = link
            .rtt_ms
            .map(|rtt| format!("rtt {rtt:.1} ms"))
            .unwrap_or_default();
        let state = match link.unreachable_s {
            Some(silent) => format!("unreachable for {silent} s"),
            None => link.state.clone(),
        };
        let _ = writeln!(
            text,
            "  {:>2}  {:<12} {:<10} {:<36} {:<14} sent {} B, received {} B",
            link.index,
            link.name,
            state,
            link.route.to_string(),
            rtt,
            link.bytes_sent,
            link.bytes_received,
        );
    }
    text
}

/// `text` (an invite, an identity line) as a QR code drawn with Unicode half blocks, for a terminal.
pub fn qr_code(text: &str) -> String {
    match QrCode::with_error_correction_level(text, qrcode::EcLevel::L) {
        Ok(code) => code
            .render::<Dense1x2>()
            .dark_color(Dense1x2::Light)
            .light_color(Dense1x2::Dark)
            .quiet_zone(true)
            .build(),
        Err(error) => format!("(no QR code: {error})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mpcnet_proto::link_report::{LinkReport, Route};

    fn link(index: u16, name: &str, unreachable_s: Option<u64>) -> LinkReport {
        LinkReport {
            index,
            name: name.into(),
            state: if unreachable_s.is_some() {
                "unreachable"
            } else {
                "connected"
            }
            .into(),
            route: Route::Direct("198.18.1.2:4433".into()),
            rtt_ms: Some(1.5),
            bytes_sent: 10,
            bytes_received: 20,
            unreachable_s,
            reconnections: 0,
        }
    }

    #[test]
    fn status_says_how_long_a_peer_has_been_unreachable() {
        let status = LocalRunStatus {
            state: "running".into(),
            pid: 1,
            me: 0,
            updated_unix_ms: 0,
            age_ms: Some(300),
            links: vec![link(1, "bob", None), link(2, "carol", Some(14))],
        };
        let text = run(&status);
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[1].contains("bob") && lines[1].contains("connected"),
            "{text}"
        );
        assert!(
            lines[2].contains("carol") && lines[2].contains("unreachable for 14 s"),
            "{text}"
        );
    }
}

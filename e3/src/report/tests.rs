//! Tests of the whole report over synthetic records, and of the number helpers.

use std::collections::BTreeMap;
use std::path::Path;

use super::*;
use crate::record::{PairPath, PathKind, Record};

/// A successful two-party record with a direct path and no prediction.
fn record(scenario: &str, network: &str, candidate: &str, workload: &str, run: u32) -> Record {
    Record {
        scenario: scenario.into(),
        network: network.into(),
        matrix_cell: None,
        party_profiles: vec!["none".into(), "none".into()],
        candidate: candidate.into(),
        workload: workload.into(),
        run,
        parties: 2,
        success: true,
        paths: vec![PairPath {
            a: 0,
            b: 1,
            path: PathKind::Direct,
            expected: None,
            configured_rtt_ms: 0.0,
            measured_rtt_ms: Some(0.1),
            mpc_rtt_ms: None,
        }],
        setup_seconds: Some(0.5),
        wall_seconds: 1.0,
        mpc_seconds: Some(1.0),
        throughput_mbit_s: None,
        wire_bytes: vec![],
        manual_steps: if candidate == "plain" { 4 } else { 1 },
        config_lines: if candidate == "plain" { 3 } else { 0 },
        errors: vec![],
        faults: vec![],
    }
}

/// A matrix record of `row × column` that saw `path` where `expected` was predicted.
fn cell(
    candidate: &str,
    (row, column): (&str, &str),
    run: u32,
    path: PathKind,
    expected: PathKind,
) -> Record {
    let mut record = record(
        "nat-matrix",
        &format!("{row} x {column}"),
        candidate,
        "secret_mean",
        run,
    );
    record.matrix_cell = Some((row.into(), column.into()));
    record.party_profiles = vec![row.into(), column.into()];
    record.paths[0].path = path;
    record.paths[0].expected = Some(expected);
    record
}

/// A record on the `rtt-20ms` network with the given MPC and wall seconds.
fn wan(candidate: &str, workload: &str, run: u32, mpc: f64, wall: f64) -> Record {
    let mut record = record("wan", "rtt-20ms", candidate, workload, run);
    record.mpc_seconds = Some(mpc);
    record.wall_seconds = wall;
    record.paths[0].configured_rtt_ms = 20.0;
    record.paths[0].measured_rtt_ms = Some(20.0 + f64::from(run) / 4.0);
    record.paths[0].mpc_rtt_ms = Some(21.0 + f64::from(run));
    if workload == "bulk" {
        record.throughput_mbit_s = Some(if candidate == "plain" {
            80.0
        } else {
            60.0 + f64::from(run)
        });
    }
    record
}

/// A 2x2 matrix for mpcnet (one mismatch, one cell with two runs) and plain (one failure),
/// and a WAN network with two workloads, two runs each, for both candidates.
fn synthetic() -> Vec<Record> {
    use PathKind::{Direct, Failed, Relay};
    let mut failed = cell("plain", ("home", "home"), 1, Failed, Failed);
    failed.success = false;
    failed.errors = vec!["party 1: connection refused".into(), "timeout".into()];
    vec![
        cell("mpcnet", ("none", "none"), 1, Direct, Direct),
        cell("mpcnet", ("none", "home"), 1, Direct, Direct),
        cell("mpcnet", ("home", "none"), 1, Direct, Direct),
        cell("mpcnet", ("home", "none"), 2, Direct, Direct),
        cell("mpcnet", ("home", "home"), 1, Relay, Direct),
        cell("plain", ("none", "none"), 1, Direct, Direct),
        cell("plain", ("none", "home"), 1, Direct, Direct),
        cell("plain", ("home", "none"), 1, Direct, Direct),
        failed,
        wan("plain", "secret_mean", 1, 1.0, 2.0),
        wan("plain", "secret_mean", 2, 1.0, 2.0),
        wan("mpcnet", "secret_mean", 1, 2.0, 3.0),
        wan("mpcnet", "secret_mean", 2, 2.0, 3.0),
        wan("plain", "bulk", 1, 4.0, 10.0),
        wan("plain", "bulk", 2, 6.0, 10.0),
        wan("mpcnet", "bulk", 1, 5.0, 14.0),
        wan("mpcnet", "bulk", 2, 7.0, 16.0),
    ]
}

/// Every file in `dir` by name, with its contents.
fn contents(dir: &Path) -> BTreeMap<String, String> {
    std::fs::read_dir(dir)
        .expect("reads the dir")
        .map(|entry| {
            let path = entry.expect("lists a file").path();
            let name = path
                .file_name()
                .expect("has a name")
                .to_string_lossy()
                .into_owned();
            (name, std::fs::read_to_string(&path).expect("reads a file"))
        })
        .collect()
}

#[test]
fn report_shows_grid_times_overhead_and_failures() {
    let dir = tempfile::TempDir::new().expect("temp dir");
    let written = write_report(&synthetic(), dir.path()).expect("writes the report");
    let names: Vec<String> = written
        .iter()
        .map(|path| {
            path.strip_prefix(dir.path())
                .expect("in dir")
                .display()
                .to_string()
        })
        .collect();
    let expected = [
        "nat-grid-mpcnet.svg",
        "nat-grid-plain.svg",
        "time-rtt-20ms.svg",
        "overhead.svg",
        "report.md",
        "report.html",
    ];
    assert_eq!(names, expected);
    let files = contents(dir.path());
    assert_eq!(files.keys().count(), expected.len());
    let markdown = &files["report.md"];
    for line in [
        "| party 0 \\ party 1 | none | home |",
        "| none | direct | direct |",
        "| home | direct, 2/2 runs | relay (expected direct) |",
        "| home | direct | FAILED |",
        "- home × home, secret_mean run 1: relay (expected direct)",
        "- home × home, secret_mean run 1: FAILED: party 1: connection refused",
        "![NAT-pair grid for mpcnet](nat-grid-mpcnet.svg)",
        "| rtt-20ms | secret_mean | mpcnet | 2/2 | 0.500 | 3.00 | 2.00 | – | 22.5 |",
        "| rtt-20ms | bulk | mpcnet | 2/2 | 0.500 | 15.0 | 6.00 | 61.5 | 22.5 |",
        "| rtt-20ms | secret_mean | mpcnet | 2.00 | 1.00 | 2.00 | 1.50 |",
        "| rtt-20ms | bulk | mpcnet | 6.00 | 5.00 | 1.20 | 1.50 |",
        "| rtt-20ms | 0–1 | 20.0 | 20.4 | 8 |",
        "| plain | 2 | 4 | 3 |",
        "| home x home | plain | secret_mean | 1 | party 1: connection refused; timeout |",
    ] {
        assert!(
            markdown.lines().any(|l| l == line),
            "missing {line:?} in\n{markdown}"
        );
    }
    for (name, cells) in [
        (
            "nat-grid-mpcnet.svg",
            &[
                "none",
                "home",
                "direct",
                "relay",
                "expected direct",
                "2/2 runs",
            ][..],
        ),
        ("nat-grid-plain.svg", &["FAILED", "direct"][..]),
        (
            "time-rtt-20ms.svg",
            &["secret_mean", "bulk", "mpcnet", "plain", "2.00", "6.00"][..],
        ),
        (
            "overhead.svg",
            &["rtt-20ms / bulk / mpcnet", "1.20", "black line: plain"][..],
        ),
    ] {
        let svg = &files[name];
        assert!(
            svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"),
            "{name}"
        );
        for text in cells {
            assert!(svg.contains(text), "{name} lacks {text:?}");
        }
        assert!(
            markdown.contains(&format!("]({name})")),
            "{name} not linked"
        );
        assert!(
            files["report.html"].contains(&format!("<img src=\"{name}\"")),
            "{name}"
        );
    }
    let rerun = write_report(&synthetic(), dir.path()).expect("writes again");
    assert_eq!(rerun, written);
    assert_eq!(files, contents(dir.path()), "a re-run changed the files");
}

#[test]
fn html_escapes_record_strings() {
    let network = "<script>alert(1)</script>";
    let mut records = vec![
        record("s", network, "plain", "w", 1),
        record("s", network, "plain", "w", 2),
    ];
    records[0].success = false;
    records[0].errors = vec!["<b>bold</b> & \"quoted\"".into()];
    let dir = tempfile::TempDir::new().expect("temp dir");
    write_report(&records, dir.path()).expect("writes the report");
    let files = contents(dir.path());
    let html = &files["report.html"];
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{html}"
    );
    assert!(
        html.contains("&lt;b&gt;bold&lt;/b&gt; &amp; &quot;quoted&quot;"),
        "{html}"
    );
    assert!(!html.contains("http") && !html.contains("<b>"), "{html}");
    for (name, text) in &files {
        assert!(!text.contains("<script"), "{name} has a script tag");
    }
    assert!(
        files.contains_key("time-script-alert-1-script.svg"),
        "{:?}",
        files.keys()
    );
}

#[test]
fn no_records_still_give_a_header() {
    let dir = tempfile::TempDir::new().expect("temp dir");
    let written = write_report(&[], dir.path()).expect("writes the report");
    assert_eq!(written.len(), 2);
    let markdown = std::fs::read_to_string(dir.path().join("report.md")).expect("reads");
    assert!(
        markdown.contains("Records: 0 (0 succeeded, 0 failed)"),
        "{markdown}"
    );
}

#[test]
fn medians_numbers_and_file_names() {
    assert_eq!(median(&mut []), None);
    assert_eq!(median(&mut [3.0, 1.0, 2.0]), Some(2.0));
    assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), Some(2.5));
    let printed: Vec<String> = [2.0, 0.012345, 1234.5, 9.996, 0.0, f64::NAN]
        .map(number)
        .into();
    assert_eq!(printed, ["2.00", "0.0123", "1230", "10.0", "0", MISSING]);
    let mut files = Files::new(Path::new("."));
    assert_eq!(files.svg_name("time-RTT 20 ms"), "time-rtt-20-ms.svg");
    assert_eq!(files.svg_name("time-rtt/20/ms"), "time-rtt-20-ms-2.svg");
    assert_eq!(files.svg_name("!!"), "unnamed.svg");
}

#[test]
fn mpcnet_is_set_against_every_other_overlay() {
    let mut records = synthetic();
    for run in [1, 2] {
        let mut rival = wan("wireguard", "bulk", run, 10.0, 20.0);
        rival.throughput_mbit_s = Some(30.0);
        rival.paths[0].mpc_rtt_ms = Some(45.0);
        records.push(rival);
    }
    let dir = tempfile::TempDir::new().expect("temp dir");
    write_report(&records, dir.path()).expect("writes the report");
    let markdown = std::fs::read_to_string(dir.path().join("report.md")).expect("reads");
    assert!(
        markdown.contains("## mpcnet against the other overlays"),
        "{markdown}"
    );
    // RTT 22.5 / 45, throughput 61.5 / 30, MPC time 6 / 10; plain is no rival.
    let row = "| rtt-20ms | bulk | wireguard | 22.5 | 45.0 | 0.500 | 61.5 | 30.0 | 2.05 | 0.600 |";
    assert!(
        markdown.lines().any(|l| l == row),
        "missing {row:?} in\n{markdown}"
    );
    assert!(
        !markdown
            .lines()
            .any(|l| l.starts_with("| rtt-20ms | bulk | plain | 22.5"))
    );
}

#[test]
fn a_written_analysis_opens_the_report() {
    let dir = tempfile::TempDir::new().expect("temp dir");
    std::fs::write(
        dir.path().join(ANALYSIS_FILE),
        "Nebula relays\nwhat it could punch.\n\n- first <b>point</b>\n- second point\n",
    )
    .expect("writes the analysis");
    write_report(&synthetic(), dir.path()).expect("writes the report");
    let markdown = std::fs::read_to_string(dir.path().join("report.md")).expect("reads");
    let analysis = markdown.find("## Analysis").expect("an analysis section");
    assert!(
        analysis < markdown.find("## NAT").expect("the grid"),
        "{markdown}"
    );
    assert!(
        markdown.contains("\nNebula relays what it could punch.\n"),
        "{markdown}"
    );
    assert!(markdown.contains("\n- second point\n"), "{markdown}");
    let html = std::fs::read_to_string(dir.path().join("report.html")).expect("reads");
    assert!(
        html.contains("<li>first &lt;b&gt;point&lt;/b&gt;</li>"),
        "{html}"
    );
}

#[test]
fn faults_survived_tells_survived_lost_not_proven_and_not_applicable_apart() {
    use crate::fault::FaultOutcome;
    let fault = |took_effect: bool| FaultOutcome {
        fault: "site 0: blackout for 30 s at 8 s".into(),
        applied_at_s: Some(8.0),
        took_effect,
        evidence: if took_effect {
            "31 packets dropped"
        } else {
            "0 packets dropped"
        }
        .into(),
        not_applicable: None,
    };
    let mut survived = record("faults", "blackout", "mpcnet", "many_rounds", 1);
    survived.faults = vec![fault(true)];
    survived.wall_seconds = 64.5;
    let mut lost = record("faults", "blackout", "plain", "many_rounds", 1);
    lost.faults = vec![fault(true)];
    lost.success = false;
    lost.errors = vec!["party 0: timed out after 240 s".into()];
    let mut unproven = record("faults", "blackout", "n2n", "many_rounds", 1);
    unproven.faults = vec![fault(false)];
    let mut mediatorless = record("faults", "blackout", "wireguard", "many_rounds", 1);
    mediatorless.faults = vec![FaultOutcome {
        took_effect: false,
        evidence: "not applicable: wireguard has no mediator".into(),
        not_applicable: Some("wireguard has no mediator".into()),
        ..fault(false)
    }];
    let quiet = record("faults", "no faults", "tinc", "many_rounds", 1);
    let dir = tempfile::TempDir::new().expect("temp dir");
    let records = [survived, lost, unproven, mediatorless, quiet];
    write_report(&records, dir.path()).expect("writes");
    let report = std::fs::read_to_string(dir.path().join("report.md")).expect("report");
    let section = report
        .split("## Faults survived")
        .nth(1)
        .expect("the section is there");
    assert!(
        section.contains("| mpcnet | survived (64.5 s) |"),
        "{section}"
    );
    assert!(
        section.contains("| plain | lost: party 0: timed out after 240 s |"),
        "{section}"
    );
    assert!(section.contains("| n2n | not proven |"), "{section}");
    assert!(
        section.contains("| wireguard | not applicable: wireguard has no mediator |"),
        "{section}"
    );
    assert!(section.contains("31 packets dropped"), "{section}");
    let header = section
        .lines()
        .find(|line| line.starts_with("| candidate |"))
        .expect("the table's header");
    assert_eq!(
        header, "| candidate | blackout |",
        "only networks with faults"
    );
}

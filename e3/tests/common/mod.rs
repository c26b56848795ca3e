//! What E3's root-only integration tests share: the binary under test and the check that the
//! lab can run here (root, and the tools it drives).

/// The E3 binary under test.
pub const E3: &str = env!("CARGO_BIN_EXE_e3");

/// The programs every lab test drives: namespaces and veth, NAT and firewalls, the delay
/// line's NFQUEUE hook, NAT state flushing (`scripts/install-lab-packages.sh` installs them).
const LAB_TOOLS: [&str; 4] = ["ip", "nft", "iptables", "conntrack"];

/// False (with a line saying why) when the lab cannot run here: not root (namespaces cannot be
/// made) or a lab tool is missing. With E3_REQUIRE_ROOT set (CI) either fails the test instead.
pub fn root() -> bool {
    let why = if e3::netns::require_root().is_err() {
        Some("E3 needs root for network namespaces".to_string())
    } else {
        let missing: Vec<&str> = LAB_TOOLS
            .into_iter()
            .filter(|tool| !on_path(tool))
            .collect();
        (!missing.is_empty()).then(|| {
            format!(
                "E3's lab needs {} (scripts/install-lab-packages.sh installs them)",
                missing.join(", ")
            )
        })
    };
    let Some(why) = why else {
        return true;
    };
    assert!(
        std::env::var_os("E3_REQUIRE_ROOT").is_none(),
        "E3_REQUIRE_ROOT is set but the lab cannot run: {why}"
    );
    eprintln!("skipped: {why}");
    false
}

fn on_path(tool: &str) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .any(|dir| dir.join(tool).is_file())
}

/// A lab of two sites with one party each.
#[allow(dead_code)] // used by the lab tests that need no candidate
pub async fn two_party_lab(
    name: &str,
    sites: [e3::scenario::Site; 2],
    logs: &std::path::Path,
) -> e3::topology::Lab {
    let network = e3::scenario::Network {
        name: name.into(),
        sites: sites.into(),
        party_sites: vec![0, 1],
        matrix_cell: None,
        faults: Vec::new(),
    };
    e3::topology::Lab::build(&network, std::path::Path::new(E3), logs)
        .await
        .expect("lab")
}

//! The project's example programs, built into the server: the catalog the create page and
//! `mpcnet create --example NAME` pick from (`GET /v1/examples`), and `mpcnet demo`'s programs.

use std::sync::LazyLock;

use mpcnet_proto::api::ExampleInfo;
use mpcnet_proto::{Bundle, BundlePath, Role, Sha256Digest};

/// One example program: a single file, or a bundle of files (perhaps with roles).
#[derive(Debug)]
pub struct Example {
    /// Its name in the catalog (`--example NAME`).
    pub name: &'static str,
    /// The file name a session gives it: a bundle's folder name.
    pub file_name: &'static str,
    /// The program's bytes: the file's text, or the bundle packed (`mpcnet_proto::bundle`).
    pub program: Vec<u8>,
    /// A bundle's entry point (for the seats in no role); `None` for a single file.
    pub main: Option<BundlePath>,
    /// An asymmetric bundle's roles.
    pub roles: Vec<Role>,
    summary: &'static str,
}

/// A single-file example.
fn single(name: &'static str, file_name: &'static str, source: &'static str) -> Example {
    Example {
        name,
        file_name,
        program: source.as_bytes().to_vec(),
        main: None,
        roles: Vec::new(),
        summary: summary_of(source),
    }
}

/// A bundle example of `files` (relative path, contents), run from `main`, with `roles`
/// (seats, entry point).
fn bundle(
    name: &'static str,
    summary: &'static str,
    files: &[(&str, &'static str)],
    main: &str,
    roles: &[(&[u16], &str)],
) -> Example {
    let path = |text: &str| BundlePath::new(text).expect("the catalog's paths are plain");
    let packed = Bundle::from_files(
        files
            .iter()
            .map(|(p, text)| (path(p), text.as_bytes().to_vec())),
    )
    .expect("the catalog's bundles are within the limits");
    Example {
        name,
        // A bundle is named after its folder, as `mpcnet pack` names it.
        file_name: name,
        program: packed.to_bytes(),
        main: Some(path(main)),
        roles: roles
            .iter()
            .map(|(seats, entry)| Role {
                seats: seats.to_vec(),
                main: path(entry),
                args: None,
            })
            .collect(),
        summary,
    }
}

/// Every example, in the order the catalog lists them; bundles packed once.
pub static EXAMPLES: LazyLock<Vec<Example>> = LazyLock::new(|| {
    vec![
        single(
            "secret-mean",
            "secret_mean.py",
            include_str!("../../../examples/secret_mean.py"),
        ),
        single(
            "many-rounds",
            "many_rounds.py",
            include_str!("../../../examples/many_rounds.py"),
        ),
        single(
            "bulk-transfer",
            "bulk_transfer.py",
            include_str!("../../../examples/bulk_transfer.py"),
        ),
        single(
            "two-sessions",
            "two_sessions.py",
            include_str!("../../../examples/two_sessions.py"),
        ),
        single(
            "ping-pong",
            "ping_pong.py",
            include_str!("../../../examples/ping_pong.py"),
        ),
        bundle(
            "survey",
            "Weighted survey, a bundle: a module and a shared data file; all learn the weighted total",
            &[
                (
                    "survey.py",
                    include_str!("../../../examples/survey/survey.py"),
                ),
                (
                    "scoring.py",
                    include_str!("../../../examples/survey/scoring.py"),
                ),
                (
                    "data/weights.csv",
                    include_str!("../../../examples/survey/data/weights.csv"),
                ),
            ],
            "survey.py",
            &[],
        ),
        // Party 0 is the auctioneer; every other seat, however many, a bidder.
        bundle(
            "auction",
            "Sealed-bid auction, with roles: party 0 the auctioneer learns the winner, each bidder whether it won",
            &[
                (
                    "auctioneer.py",
                    include_str!("../../../examples/auction/auctioneer.py"),
                ),
                (
                    "bidder.py",
                    include_str!("../../../examples/auction/bidder.py"),
                ),
                (
                    "sealed_bid.py",
                    include_str!("../../../examples/auction/sealed_bid.py"),
                ),
            ],
            "bidder.py",
            &[(&[0], "auctioneer.py")],
        ),
    ]
});

/// The example called `name`.
pub fn find(name: &str) -> Option<&'static Example> {
    EXAMPLES.iter().find(|example| example.name == name)
}

/// The first line of a program's docstring.
fn summary_of(source: &'static str) -> &'static str {
    let first = source.lines().next().unwrap_or_default();
    first
        .trim_start_matches("\"\"\"")
        .trim_end_matches("\"\"\"")
}

impl Example {
    /// What the catalog says of it: a single file's summary is its docstring's first line.
    pub fn info(&self) -> ExampleInfo {
        ExampleInfo {
            name: self.name.into(),
            file_name: self.file_name.into(),
            summary: self.summary.into(),
            sha256: Sha256Digest::of(&self.program),
            size: self.program.len() as u64,
            main: self.main.clone(),
            roles: self.roles.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_example_has_a_summary_and_a_unique_name() {
        for example in EXAMPLES.iter() {
            let info = example.info();
            assert!(
                info.summary.len() > 10,
                "{}: {:?}",
                example.name,
                info.summary
            );
            assert!(!info.summary.contains('"'), "{}", info.summary);
            assert_eq!(
                find(example.name).map(|e| e.file_name),
                Some(example.file_name)
            );
            if let Some(main) = &example.main {
                let bundle = Bundle::parse(&example.program).expect("a canonical bundle");
                for entry in std::iter::once(main).chain(example.roles.iter().map(|r| &r.main)) {
                    bundle
                        .entry_point(Some(entry.as_str()))
                        .expect("an entry point of the bundle");
                }
            }
        }
        let mut names: Vec<_> = EXAMPLES.iter().map(|e| e.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), EXAMPLES.len());
    }

    /// A bundle of the catalog is exactly what `mpcnet pack` makes of its folder in
    /// `examples/` (no file left out, the same SHA-256).
    #[test]
    fn every_catalog_bundle_is_its_folders_bundle() {
        for example in EXAMPLES.iter().filter(|example| example.main.is_some()) {
            let folder = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../examples")
                .join(example.name);
            let packed = Bundle::pack_dir(&folder).expect("the example's folder packs");
            assert!(packed.to_bytes() == example.program, "{}", example.name);
        }
    }
}

//! The project's example programs, built into the server: the catalog the create page and
//! `mpcnet create --example NAME` pick from (`GET /v1/examples`), and `mpcnet demo`'s programs.

use mpcnet_proto::Sha256Digest;
use mpcnet_proto::api::ExampleInfo;

/// One example program.
#[derive(Debug)]
pub struct Example {
    /// Its name in the catalog (`--example NAME`).
    pub name: &'static str,
    /// The file name a session gives it.
    pub file_name: &'static str,
    /// The program's text.
    pub source: &'static str,
}

/// Every example, in the order the catalog lists them.
pub const EXAMPLES: &[Example] = &[
    Example {
        name: "secret-mean",
        file_name: "secret_mean.py",
        source: include_str!("../../../examples/secret_mean.py"),
    },
    Example {
        name: "many-rounds",
        file_name: "many_rounds.py",
        source: include_str!("../../../examples/many_rounds.py"),
    },
    Example {
        name: "bulk-transfer",
        file_name: "bulk_transfer.py",
        source: include_str!("../../../examples/bulk_transfer.py"),
    },
    Example {
        name: "two-sessions",
        file_name: "two_sessions.py",
        source: include_str!("../../../examples/two_sessions.py"),
    },
    Example {
        name: "ping-pong",
        file_name: "ping_pong.py",
        source: include_str!("../../../examples/ping_pong.py"),
    },
];

/// The example called `name`.
pub fn find(name: &str) -> Option<&'static Example> {
    EXAMPLES.iter().find(|example| example.name == name)
}

impl Example {
    /// What the catalog says of it: the first line of its docstring is its summary.
    pub fn info(&self) -> ExampleInfo {
        ExampleInfo {
            name: self.name.into(),
            file_name: self.file_name.into(),
            summary: self.summary().into(),
            sha256: Sha256Digest::of(self.source.as_bytes()),
            size: self.source.len() as u64,
        }
    }

    fn summary(&self) -> &'static str {
        let first = self.source.lines().next().unwrap_or_default();
        first
            .trim_start_matches("\"\"\"")
            .trim_end_matches("\"\"\"")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_example_has_a_summary_and_a_unique_name() {
        for example in EXAMPLES {
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
        }
        let mut names: Vec<_> = EXAMPLES.iter().map(|e| e.name).collect();
        names.dedup();
        assert_eq!(names.len(), EXAMPLES.len());
    }
}

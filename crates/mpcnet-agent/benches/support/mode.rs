//! Full or tiny, for every benchmark of the workspace (each includes this file with `#[path]`):
//! `cargo bench` passes `--bench` and gets the full sizes; `cargo test` runs the same code at a
//! tiny size (the `[[bench]]` entries say `test = true`), so a benchmark that breaks fails CI.

use std::fmt;

/// How big a benchmark's run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Under `cargo bench`: the sizes the figures are measured at.
    Full,
    /// Under `cargo test`: a few rounds of the same path, to show it still works.
    Tiny,
}

impl Mode {
    /// Full if cargo passed `--bench`, tiny otherwise.
    pub fn from_args() -> Self {
        if std::env::args().any(|arg| arg == "--bench") {
            Self::Full
        } else {
            Self::Tiny
        }
    }

    /// `full` or `tiny`, by mode.
    pub fn pick<T>(self, full: T, tiny: T) -> T {
        match self {
            Self::Full => full,
            Self::Tiny => tiny,
        }
    }

    /// The size the environment variable `name` sets, else `full` or `tiny` by mode.
    pub fn size(self, name: &str, full: usize, tiny: usize) -> usize {
        std::env::var(name)
            .ok()
            .and_then(|value| value.parse().ok())
            .unwrap_or(self.pick(full, tiny))
    }
}

/// For a benchmark's first line: a tiny run's figures (of a debug build, under `cargo test`)
/// are no measurement, whatever targets they are printed next to.
impl fmt::Display for Mode {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.pick("full", "tiny: checks it works, measures nothing"))
    }
}

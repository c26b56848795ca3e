//! Reports from records (stub: being written).

use std::path::{Path, PathBuf};

use crate::record::Record;

pub fn write_report(_records: &[Record], _dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    anyhow::bail!("not written yet")
}

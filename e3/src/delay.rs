//! The userspace delay line (stub: being written).

use std::time::Duration;

pub fn run(_queue: u16, _one_way: Duration) -> anyhow::Result<()> {
    anyhow::bail!("not written yet")
}

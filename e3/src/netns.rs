//! Named network namespaces owned by one E3 process: create, run commands inside, tear down
//! (killing every process inside first), and find the leftovers of E3 runs that died.
//!
//! A namespace is named `e3-<pid>-<name>` after the E3 process that made it, so a later run
//! can tell a crashed run's namespaces (pid gone) from a live run's.

use std::path::Path;
use std::process::Stdio;

use anyhow::{Context, bail};

/// Where `ip netns` keeps its named namespaces.
const NETNS_DIR: &str = "/run/netns";
/// Every namespace E3 makes starts with this.
pub const PREFIX: &str = "e3-";

/// Runs a command to completion and fails with its stderr when it fails.
pub fn run(program: &str, args: &[&str]) -> anyhow::Result<String> {
    run_with_input(program, args, None)
}

/// Runs a command, feeding `input` (e.g. an nft ruleset) on stdin; fails with its stderr.
pub fn run_with_input(program: &str, args: &[&str], input: Option<&str>) -> anyhow::Result<String> {
    use std::io::Write;
    let mut child = std::process::Command::new(program)
        .args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run {program} (is it installed?)"))?;
    if let (Some(mut stdin), Some(input)) = (child.stdin.take(), input) {
        stdin.write_all(input.as_bytes())?;
    }
    let output = child.wait_with_output()?;
    if !output.status.success() {
        bail!(
            "`{program} {}` failed: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim(),
            input
                .map(|input| format!("\ninput:\n{input}"))
                .unwrap_or_default()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// One named namespace; deleted (with everything running in it) when dropped.
#[derive(Debug)]
pub struct Namespace {
    name: String,
}

impl Namespace {
    /// Makes `e3-<our pid>-<name>` with its loopback up and IPv6 off (the lab is IPv4 only, so
    /// no candidate can slip past the NAT over un-NATed IPv6).
    pub fn create(name: &str) -> anyhow::Result<Self> {
        let name = format!("{PREFIX}{}-{name}", std::process::id());
        run("ip", &["netns", "add", &name])?;
        let namespace = Self { name };
        namespace.ip(&["link", "set", "lo", "up"])?;
        namespace.sysctl("net.ipv6.conf.all.disable_ipv6", "1")?;
        namespace.sysctl("net.ipv6.conf.default.disable_ipv6", "1")?;
        Ok(namespace)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `ip -n NAME ARGS…`
    pub fn ip(&self, args: &[&str]) -> anyhow::Result<String> {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend_from_slice(args);
        run("ip", &all)
    }

    /// Runs a program inside the namespace to completion.
    pub fn exec(&self, program: &str, args: &[&str]) -> anyhow::Result<String> {
        let mut all = vec!["netns", "exec", self.name.as_str(), program];
        all.extend_from_slice(args);
        run("ip", &all)
    }

    /// Loads an nft ruleset into the namespace.
    pub fn nft(&self, ruleset: &str) -> anyhow::Result<()> {
        run_with_input(
            "ip",
            &["netns", "exec", &self.name, "nft", "-f", "-"],
            Some(ruleset),
        )
        .map(drop)
    }

    pub fn sysctl(&self, key: &str, value: &str) -> anyhow::Result<()> {
        self.exec("sysctl", &["-qw", &format!("{key}={value}")])
            .map(drop)
    }

    /// A command that runs `program` inside this namespace (via `ip netns exec`), killed when
    /// its handle is dropped.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> tokio::process::Command {
        let mut command = tokio::process::Command::new("ip");
        command
            .args(["netns", "exec", &self.name])
            .arg(program)
            .stdin(Stdio::null())
            .kill_on_drop(true);
        command
    }

    /// Kills every process running inside (daemons that detached included) and waits until
    /// they are gone.
    pub fn kill_all(&self) {
        kill_all(&self.name);
    }

    /// Sent and received bytes of an interface, from the kernel's counters.
    pub fn interface_bytes(&self, interface: &str) -> anyhow::Result<(u64, u64)> {
        let read = |counter: &str| -> anyhow::Result<u64> {
            let path = format!("/sys/class/net/{interface}/statistics/{counter}");
            let text = self.exec("cat", &[&path])?;
            text.trim()
                .parse()
                .with_context(|| format!("{path} in {} holds {text:?}", self.name))
        };
        Ok((read("tx_bytes")?, read("rx_bytes")?))
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        if let Err(error) = remove(&self.name) {
            eprintln!("e3: tearing down {}: {error:#}", self.name);
        }
    }
}

/// Kills every process inside a namespace and waits (2 s at most) until they are gone, so
/// what they held (ports, TUN devices) is free again.
fn kill_all(name: &str) {
    // A process may fork while we kill, and a killed one takes a moment to die: look again
    // until none is left.
    for _ in 0..100 {
        let pids = run("ip", &["netns", "pids", name]).unwrap_or_default();
        if pids.trim().is_empty() {
            return;
        }
        for pid in pids.split_whitespace() {
            // It may have exited meanwhile; what matters is that nothing runs in there.
            let _ = run("kill", &["-KILL", pid]);
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Kills every process inside a namespace, then deletes it (its interfaces go with it).
fn remove(name: &str) -> anyhow::Result<()> {
    kill_all(name);
    match run("ip", &["netns", "del", name]) {
        // Someone else (another E3 run cleaning up) was quicker: it is gone all the same.
        Err(_) if !Path::new(NETNS_DIR).join(name).exists() => Ok(()),
        result => result.map(drop),
    }
}

/// E3's namespaces on this machine: (name, pid of the E3 process that made it).
pub fn existing() -> anyhow::Result<Vec<(String, u32)>> {
    let entries = match std::fs::read_dir(NETNS_DIR) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(error).context(NETNS_DIR),
    };
    let mut found = Vec::new();
    for entry in entries {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if let Some(pid) = owner_pid(&name) {
            found.push((name, pid));
        }
    }
    found.sort();
    Ok(found)
}

/// The pid in `e3-<pid>-<node>`.
fn owner_pid(name: &str) -> Option<u32> {
    name.strip_prefix(PREFIX)?.split('-').next()?.parse().ok()
}

/// Removes the namespaces of E3 runs that are no longer alive; returns their names.
pub fn remove_leftovers() -> anyhow::Result<Vec<String>> {
    let mut removed = Vec::new();
    for (name, pid) in existing()? {
        let alive = Path::new(&format!("/proc/{pid}")).exists();
        if !alive {
            remove(&name)?;
            removed.push(name);
        }
    }
    Ok(removed)
}

/// Fails unless this process runs as root (namespaces, nftables and tc need it).
pub fn require_root() -> anyhow::Result<()> {
    let status = std::fs::read_to_string("/proc/self/status").context("/proc/self/status")?;
    let effective_uid = status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1));
    if effective_uid != Some("0") {
        bail!("e3 run needs root (network namespaces, nftables, tc): try sudo");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_pid_comes_from_the_name() {
        assert_eq!(owner_pid("e3-1234-r1"), Some(1234));
        assert_eq!(owner_pid("e3-1234-inet"), Some(1234));
        assert_eq!(owner_pid("e3-x-r1"), None);
        assert_eq!(owner_pid("other-1234-r1"), None);
    }
}

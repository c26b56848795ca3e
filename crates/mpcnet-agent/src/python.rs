//! Which Python runs MPyC: the one the user names (`--python` / `MPCNET_PYTHON`), else the
//! Python of the environment mpcnet is installed in (a wheel puts the `mpcnet` binary in that
//! environment's `bin/`, beside its `python`, and brings `mpyc` with it), else `python3` on
//! `PATH`. `mpcnet run` and `mpcnet demo` say which one they use, and why.

use std::ffi::OsStr;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::launcher::LauncherError;

/// Why a Python was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PythonOrigin {
    /// `--python` or `MPCNET_PYTHON`.
    Named,
    /// The virtual (or conda) environment whose `bin/` holds the running `mpcnet` binary.
    InstalledEnvironment,
    /// The first `python3` on `PATH`.
    SearchPath,
}

/// A Python interpreter and why it is the one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChosenPython {
    pub path: PathBuf,
    pub origin: PythonOrigin,
}

impl ChosenPython {
    /// The Python for this process: named, else the installed environment's, else `python3`.
    pub fn choose(named: Option<&Path>) -> Result<Self, LauncherError> {
        let executable = std::env::current_exe().ok();
        let search_path = std::env::var_os("PATH");
        Self::choose_from(named, executable.as_deref(), search_path.as_deref())
            .ok_or(LauncherError::NoPython)
    }

    /// The choice, from the named path, the running binary's path and `PATH`'s value.
    pub fn choose_from(
        named: Option<&Path>,
        executable: Option<&Path>,
        search_path: Option<&OsStr>,
    ) -> Option<Self> {
        let pick = |path, origin| Some(Self { path, origin });
        if let Some(path) = named {
            return pick(path.to_path_buf(), PythonOrigin::Named);
        }
        if let Some(path) = executable.and_then(environment_python) {
            return pick(path, PythonOrigin::InstalledEnvironment);
        }
        let path = std::env::split_paths(search_path?)
            .map(|dir| dir.join("python3"))
            .find(|candidate| candidate.is_file())?;
        pick(path, PythonOrigin::SearchPath)
    }
}

impl fmt::Display for ChosenPython {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let why = match self.origin {
            PythonOrigin::Named => "named by --python / MPCNET_PYTHON",
            PythonOrigin::InstalledEnvironment => "the environment mpcnet is installed in",
            PythonOrigin::SearchPath => "python3 on PATH",
        };
        write!(f, "{} ({why})", self.path.display())
    }
}

/// The `python` beside `executable` when `executable` lies in the `bin/` of a virtual
/// environment (`pyvenv.cfg` above it: venv, virtualenv, pipx, uv) or a conda environment
/// (`conda-meta/`). On Linux `current_exe` has resolved symlinks, so the `~/.local/bin/mpcnet`
/// link that pipx and `uv tool` make leads to the environment itself.
pub fn environment_python(executable: &Path) -> Option<PathBuf> {
    let bin = executable.parent()?;
    let environment = bin.parent()?;
    let is_environment =
        environment.join("pyvenv.cfg").is_file() || environment.join("conda-meta").is_dir();
    let python = bin.join("python");
    (is_environment && python.is_file()).then_some(python)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A directory tree `root/bin/{mpcnet,python}`, with `marker` made in `root`.
    fn environment(marker: Option<&str>) -> tempfile::TempDir {
        let root = tempfile::tempdir().expect("tempdir");
        let bin = root.path().join("bin");
        std::fs::create_dir(&bin).expect("bin");
        std::fs::write(bin.join("mpcnet"), "").expect("binary");
        std::fs::write(bin.join("python"), "").expect("python");
        match marker {
            Some("conda-meta") => std::fs::create_dir(root.path().join("conda-meta")),
            Some(file) => std::fs::write(root.path().join(file), "home = /usr/bin\n"),
            None => Ok(()),
        }
        .expect("marker");
        root
    }

    fn choose(named: Option<&Path>, root: &Path, search_path: &Path) -> Option<ChosenPython> {
        let executable = root.join("bin/mpcnet");
        ChosenPython::choose_from(named, Some(&executable), Some(search_path.as_os_str()))
    }

    #[test]
    fn a_named_python_wins_over_the_environment() {
        let root = environment(Some("pyvenv.cfg"));
        let named = Path::new("/opt/python/bin/python3");
        let chosen = choose(Some(named), root.path(), Path::new("/nowhere")).expect("chosen");
        assert_eq!(chosen.path, named);
        assert_eq!(chosen.origin, PythonOrigin::Named);
    }

    #[test]
    fn the_virtual_or_conda_environment_beside_the_binary_comes_next() {
        for marker in ["pyvenv.cfg", "conda-meta"] {
            let root = environment(Some(marker));
            let chosen = choose(None, root.path(), Path::new("/nowhere")).expect("chosen");
            assert_eq!(chosen.path, root.path().join("bin/python"), "{marker}");
            assert_eq!(chosen.origin, PythonOrigin::InstalledEnvironment);
            assert!(chosen.to_string().contains("installed in"), "{chosen}");
        }
    }

    #[test]
    fn a_binary_outside_any_environment_takes_python3_from_path() {
        let root = environment(None);
        let path_dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(path_dir.path().join("python3"), "").expect("python3");
        let chosen = choose(None, root.path(), path_dir.path()).expect("chosen");
        assert_eq!(chosen.path, path_dir.path().join("python3"));
        assert_eq!(chosen.origin, PythonOrigin::SearchPath);
        assert!(choose(None, root.path(), Path::new("/nowhere")).is_none());
    }
}

//! Program bundles: a folder (an MPyC program, its own modules, its data files) as one archive
//! that the offer names by SHA-256. This module alone owns the format: packing a folder,
//! parsing a bundle with every check, and unpacking it.
//!
//! A bundle is a ustar archive of regular files only, sorted by path (byte order), every
//! header fixed (mode 0644, uid and gid 0, no owner names, mtime 0), ended by tar's two zero
//! blocks. A bundle is accepted only if packing its files again gives exactly its bytes, so a
//! set of files has one bundle and one SHA-256 on every machine, whatever the file system's
//! order, times, owners or umask. Paths are relative, made of plain names: no `..`, `.` or
//! empty component, nothing absolute, no backslash or control character. Packing leaves out
//! hidden names (starting with `.`), `__pycache__` folders and `.pyc` files; a bundle holding
//! one is refused (byte code could run code no party reviewed). Symbolic links, hard links,
//! devices, pipes and sockets are refused when packing and when unpacking. Unpacking writes
//! only into a folder it creates, so nothing lands outside it.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read as _, Write as _};
use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _, OpenOptionsExt as _};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::digest::Sha256Digest;
use crate::label::{is_unsafe_to_show, printable};
use crate::offer::ProgramInfo;

/// The largest bundle, in packed bytes: the lobby server's default upload limit.
pub const MAX_BUNDLE_BYTES: usize = 8 << 20;
/// The most files a bundle holds.
pub const MAX_BUNDLE_FILES: usize = 1024;
/// The longest path inside a bundle, in bytes (ustar's 155-byte prefix and 100-byte name).
pub const MAX_PATH_BYTES: usize = 255;
/// Every file's mode in the archive and on disk once unpacked.
const FILE_MODE: u32 = 0o644;
/// A tar block: every header, and the unit file contents are padded to.
const BLOCK: usize = 512;

/// Why a folder cannot be packed or a bundle cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    #[error("{path}: {message}")]
    Io { path: String, message: String },
    #[error("{path} is a symbolic link: a bundle holds regular files only (copy the file in)")]
    SymbolicLink { path: String },
    #[error("{path} is a hard link (it has other names): a bundle holds plain files only")]
    HardLink { path: String },
    #[error("{path} is {kind}: a bundle holds regular files only")]
    NotAFile { path: String, kind: &'static str },
    #[error("{path:?} cannot be in a bundle: {reason}")]
    BadPath { path: String, reason: &'static str },
    #[error("the bundle has {path} twice")]
    Duplicate { path: String },
    #[error("the bundle has {path} both as a file and as a folder")]
    FileAndFolder { path: String },
    #[error("a bundle holds at most {MAX_BUNDLE_FILES} files")]
    TooManyFiles,
    #[error("a bundle is at most {MAX_BUNDLE_BYTES} bytes packed")]
    TooLarge,
    #[error("the folder {path} holds no file to bundle")]
    Empty { path: String },
    #[error("the bundle holds no file")]
    NoFiles,
    #[error("not a bundle: {0}")]
    Malformed(String),
    #[error(
        "the bundle is not in mpcnet's canonical form (a header, the order or the padding differs from what `mpcnet pack` makes)"
    )]
    NotCanonical,
    #[error("the bundle's SHA-256 is {actual}, not the {expected} the creator signed")]
    HashMismatch { expected: String, actual: String },
    #[error("the bundle has no {main}, its entry point")]
    NoEntryPoint { main: String },
    #[error(
        "name the program's entry point with --main: the folder has {} .py files at its top{}",
        found.len(), if found.is_empty() { String::new() } else { format!(" ({})", found.join(", ")) }
    )]
    AmbiguousEntryPoint { found: Vec<String> },
    #[error("{path} exists already: a bundle is unpacked only into a new folder")]
    Exists { path: String },
}

/// A path inside a bundle: relative, plain names joined by `/` (see the module's rules).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct BundlePath(String);

impl BundlePath {
    /// Checks `text` against the rules of bundle paths.
    pub fn new(text: &str) -> Result<Self, BundleError> {
        let refuse = |reason| {
            Err(BundleError::BadPath {
                path: printable(text),
                reason,
            })
        };
        if text.is_empty() {
            return refuse("it is empty");
        }
        if text.starts_with('/') {
            return refuse("it is absolute");
        }
        if text.len() > MAX_PATH_BYTES {
            return refuse("it is longer than 255 bytes");
        }
        if text.contains('\\') || text.chars().any(is_unsafe_to_show) {
            return refuse("it has a backslash or a control character");
        }
        for name in text.split('/') {
            if let Some(reason) = name_refusal(name) {
                return refuse(reason);
            }
        }
        if tar::Header::new_ustar().set_path(text).is_err() {
            return refuse("it does not fit a tar header (a name over 100 bytes?)");
        }
        Ok(Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The path's folder inside the bundle ("" at the top).
    fn folder(&self) -> &str {
        self.0.rsplit_once('/').map_or("", |(folder, _)| folder)
    }
}

impl std::fmt::Display for BundlePath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for BundlePath {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::new(&text).map_err(serde::de::Error::custom)
    }
}

/// Why one name of a path is refused, if it is.
fn name_refusal(name: &str) -> Option<&'static str> {
    match name {
        "" => Some("it has an empty component"),
        "." | ".." => Some("it has a `.` or `..` component"),
        _ if name.starts_with('.') => Some("it has a hidden name (packing leaves those out)"),
        _ if is_byte_code(name) => {
            Some("it is Python byte code, which could run code no party reviewed")
        }
        _ => None,
    }
}

/// Whether `name` is Python's byte-code cache folder or a compiled module.
fn is_byte_code(name: &str) -> bool {
    name == "__pycache__" || name.ends_with(".pyc")
}

/// Whether packing leaves the file or folder `name` out (hidden names and byte code).
fn is_left_out(name: &str) -> bool {
    name.starts_with('.') || is_byte_code(name)
}

/// The files of a bundle, sorted by path, within the limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bundle {
    files: BTreeMap<BundlePath, Vec<u8>>,
}

impl Bundle {
    /// A bundle of `files`, refused if there is none, a path comes twice, a path is both a
    /// file and a folder, or the limits are passed.
    pub fn from_files(
        files: impl IntoIterator<Item = (BundlePath, Vec<u8>)>,
    ) -> Result<Self, BundleError> {
        let mut map = BTreeMap::new();
        for (path, contents) in files {
            if map.len() == MAX_BUNDLE_FILES {
                return Err(BundleError::TooManyFiles);
            }
            if map.contains_key(&path) {
                return Err(BundleError::Duplicate {
                    path: path.to_string(),
                });
            }
            map.insert(path, contents);
        }
        if map.is_empty() {
            return Err(BundleError::NoFiles);
        }
        let bundle = Self { files: map };
        bundle.check_folders()?;
        if bundle.packed_len() > MAX_BUNDLE_BYTES {
            return Err(BundleError::TooLarge);
        }
        Ok(bundle)
    }

    /// Packs the folder `dir`: its regular files, all the way down, less those left out.
    pub fn pack_dir(dir: &Path) -> Result<Self, BundleError> {
        let mut walk = Walk::default();
        walk.folder(dir, "")?;
        if walk.files.is_empty() {
            return Err(BundleError::Empty {
                path: dir.display().to_string(),
            });
        }
        Self::from_files(walk.files)
    }

    /// The bundle's bytes: the same for the same files, every time.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::with_capacity(self.packed_len()));
        for (path, contents) in &self.files {
            builder
                .append(&header(path, contents.len()), contents.as_slice())
                .expect("writing to memory cannot fail");
        }
        builder.into_inner().expect("writing to memory cannot fail")
    }

    /// Parses `bytes` as a bundle, refusing anything packing would not have made.
    pub fn parse(bytes: &[u8]) -> Result<Self, BundleError> {
        if bytes.len() > MAX_BUNDLE_BYTES {
            return Err(BundleError::TooLarge);
        }
        let mut archive = tar::Archive::new(bytes);
        let entries = archive.entries().map_err(malformed)?.raw(true);
        let mut files = Vec::new();
        for entry in entries {
            let mut entry = entry.map_err(malformed)?;
            check_entry_kind(entry.header())?;
            let path = entry_path(entry.header())?;
            if files.len() == MAX_BUNDLE_FILES {
                return Err(BundleError::TooManyFiles);
            }
            let size = entry.header().size().map_err(malformed)?;
            if size > bytes.len() as u64 {
                return Err(BundleError::Malformed(format!("{path} is cut short")));
            }
            let mut contents = Vec::with_capacity(size as usize);
            entry.read_to_end(&mut contents).map_err(malformed)?;
            files.push((path, contents));
        }
        let bundle = Self::from_files(files)?;
        if bundle.to_bytes() != bytes {
            return Err(BundleError::NotCanonical);
        }
        Ok(bundle)
    }

    /// Parses `bytes` as the bundle `program` names: its SHA-256 checked first, then the
    /// format, then its entry point.
    pub fn verified(bytes: &[u8], program: &ProgramInfo) -> Result<Self, BundleError> {
        let actual = Sha256Digest::of(bytes);
        if actual != program.sha256 || bytes.len() as u64 != program.size {
            return Err(BundleError::HashMismatch {
                expected: program.sha256.to_string(),
                actual: actual.to_string(),
            });
        }
        let bundle = Self::parse(bytes)?;
        if let Some(main) = &program.main {
            bundle.entry_point(Some(main.as_str()))?;
        }
        Ok(bundle)
    }

    /// The entry point: `main` if given (it must be a file of the bundle), else the one `.py`
    /// file at the bundle's top.
    pub fn entry_point(&self, main: Option<&str>) -> Result<BundlePath, BundleError> {
        if let Some(main) = main {
            let main = BundlePath::new(main)?;
            return match self.files.contains_key(&main) {
                true => Ok(main),
                false => Err(BundleError::NoEntryPoint {
                    main: main.to_string(),
                }),
            };
        }
        let found: Vec<&BundlePath> = self.top_level_programs().collect();
        match found.as_slice() {
            [only] => Ok((*only).clone()),
            _ => Err(BundleError::AmbiguousEntryPoint {
                found: found.iter().map(ToString::to_string).collect(),
            }),
        }
    }

    /// Writes the bundle's files into `dir`, which must not exist yet (its parent must). On an
    /// error, what was written is removed again.
    pub fn unpack(&self, dir: &Path) -> Result<(), BundleError> {
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(dir)
            .map_err(|error| match error.kind() {
                std::io::ErrorKind::AlreadyExists => BundleError::Exists {
                    path: dir.display().to_string(),
                },
                _ => io_error(dir)(error),
            })?;
        let written = self.files.iter().try_for_each(|(path, contents)| {
            // Every name is plain (no `..`, nothing absolute), so the path stays inside `dir`.
            write_new_file(&dir.join(path.as_str()), contents)
        });
        if written.is_err() {
            let _ = std::fs::remove_dir_all(dir);
        }
        written
    }

    /// The files, sorted by path.
    pub fn files(&self) -> impl Iterator<Item = (&BundlePath, &[u8])> {
        self.files
            .iter()
            .map(|(path, contents)| (path, contents.as_slice()))
    }

    /// How many bytes [`Self::to_bytes`] gives.
    fn packed_len(&self) -> usize {
        let padded = |len: usize| len.div_ceil(BLOCK) * BLOCK;
        let entries: usize = self
            .files
            .values()
            .map(|contents| BLOCK + padded(contents.len()))
            .sum();
        entries + 2 * BLOCK // tar's two zero blocks
    }

    /// Refuses a path that is also another path's folder.
    fn check_folders(&self) -> Result<(), BundleError> {
        let mut folders = BTreeSet::new();
        for path in self.files.keys() {
            let mut folder = path.folder();
            while !folder.is_empty() && folders.insert(folder) {
                folder = folder.rsplit_once('/').map_or("", |(parent, _)| parent);
            }
        }
        match self
            .files
            .keys()
            .find(|path| folders.contains(path.as_str()))
        {
            Some(path) => Err(BundleError::FileAndFolder {
                path: path.to_string(),
            }),
            None => Ok(()),
        }
    }

    /// The `.py` files at the bundle's top.
    fn top_level_programs(&self) -> impl Iterator<Item = &BundlePath> {
        self.files
            .keys()
            .filter(|path| path.folder().is_empty() && path.as_str().ends_with(".py"))
    }
}

/// The fixed header of the file `path` of `len` bytes.
fn header(path: &BundlePath, len: usize) -> tar::Header {
    let mut header = tar::Header::new_ustar();
    header
        .set_path(path.as_str())
        .expect("a bundle path fits a ustar header");
    header.set_size(len as u64);
    header.set_mode(FILE_MODE);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_cksum();
    header
}

/// The path an archive's header names, checked.
fn entry_path(header: &tar::Header) -> Result<BundlePath, BundleError> {
    let bytes = header.path_bytes();
    let text = std::str::from_utf8(&bytes).map_err(|_| BundleError::BadPath {
        path: String::from_utf8_lossy(&bytes).into_owned(),
        reason: "it is not UTF-8",
    })?;
    BundlePath::new(text)
}

/// Refuses every kind of entry but a regular file, naming it by the path its header gives.
fn check_entry_kind(header: &tar::Header) -> Result<(), BundleError> {
    let kind = header.entry_type();
    let path = printable(&String::from_utf8_lossy(&header.path_bytes()));
    let not_a_file = |kind| {
        Err(BundleError::NotAFile {
            path: path.clone(),
            kind,
        })
    };
    match kind {
        tar::EntryType::Regular => Ok(()),
        tar::EntryType::Symlink => Err(BundleError::SymbolicLink { path }),
        tar::EntryType::Link => Err(BundleError::HardLink { path }),
        tar::EntryType::Directory => not_a_file("a folder entry"),
        tar::EntryType::Char | tar::EntryType::Block => not_a_file("a device"),
        tar::EntryType::Fifo => not_a_file("a named pipe"),
        _ => not_a_file("a special tar entry (long name, extended header or other)"),
    }
}

/// The files found walking a folder, counted against the limits as they are read.
#[derive(Default)]
struct Walk {
    files: Vec<(BundlePath, Vec<u8>)>,
    bytes: usize,
}

impl Walk {
    /// Reads the folder `dir`, which is `prefix` inside the bundle.
    fn folder(&mut self, dir: &Path, prefix: &str) -> Result<(), BundleError> {
        let listing = std::fs::read_dir(dir).map_err(io_error(dir))?;
        for entry in listing {
            let entry = entry.map_err(io_error(dir))?;
            let full = entry.path();
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                return Err(BundleError::BadPath {
                    path: full.display().to_string(),
                    reason: "it is not UTF-8",
                });
            };
            if is_left_out(&name) {
                continue;
            }
            let inside = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}/{name}")
            };
            self.entry(&full, &inside)?;
        }
        Ok(())
    }

    /// Takes in the file or folder `full`, which is `inside` in the bundle.
    fn entry(&mut self, full: &Path, inside: &str) -> Result<(), BundleError> {
        let path = BundlePath::new(inside)?; // a folder's path too: no walk deeper than a path
        let metadata = std::fs::symlink_metadata(full).map_err(io_error(full))?;
        let shown = || full.display().to_string();
        let kind = metadata.file_type();
        if kind.is_symlink() {
            return Err(BundleError::SymbolicLink { path: shown() });
        }
        if kind.is_dir() {
            return self.folder(full, inside);
        }
        if !kind.is_file() {
            return Err(BundleError::NotAFile {
                path: shown(),
                kind: "a device, pipe or socket",
            });
        }
        if metadata.nlink() > 1 {
            return Err(BundleError::HardLink { path: shown() });
        }
        self.file(full, path, metadata.len())
    }

    /// Reads one regular file, within the limits.
    fn file(&mut self, full: &Path, path: BundlePath, len: u64) -> Result<(), BundleError> {
        if self.files.len() == MAX_BUNDLE_FILES {
            return Err(BundleError::TooManyFiles);
        }
        self.bytes = self
            .bytes
            .saturating_add(BLOCK)
            .saturating_add(len as usize);
        if self.bytes > MAX_BUNDLE_BYTES {
            return Err(BundleError::TooLarge);
        }
        let contents = std::fs::read(full).map_err(io_error(full))?;
        self.files.push((path, contents));
        Ok(())
    }
}

/// Creates `path` (and the folders to it) and writes `contents`; fails if it exists.
fn write_new_file(path: &Path, contents: &[u8]) -> Result<(), BundleError> {
    if let Some(folder) = path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(folder)
            .map_err(io_error(folder))?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .open(path)
        .map_err(io_error(path))?;
    file.write_all(contents).map_err(io_error(path))
}

fn malformed(error: std::io::Error) -> BundleError {
    BundleError::Malformed(printable(&error.to_string()))
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> BundleError + '_ {
    move |error| BundleError::Io {
        path: path.display().to_string(),
        message: error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    fn path(text: &str) -> BundlePath {
        BundlePath::new(text).expect("valid bundle path")
    }

    /// Writes `files` under `dir` in the order given, each with `mode`.
    fn write_tree(dir: &Path, files: &[(&str, &str)], mode: u32) {
        for (name, contents) in files {
            let file = dir.join(name);
            std::fs::create_dir_all(file.parent().expect("parent")).expect("folder");
            std::fs::write(&file, contents).expect("file");
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).expect("mode");
        }
    }

    const SURVEY: &[(&str, &str)] = &[
        ("survey.py", "import weights\n"),
        ("weights.py", "W = 3\n"),
        ("data/weights.csv", "a,3\n"),
        ("data/deep/more.csv", "b,4\n"),
    ];

    /// A bundle of the survey's files, packed.
    fn survey_bytes() -> Vec<u8> {
        let files = SURVEY
            .iter()
            .map(|(name, contents)| (path(name), contents.as_bytes().to_vec()));
        Bundle::from_files(files).expect("bundle").to_bytes()
    }

    #[test]
    fn packing_gives_the_same_bytes_whatever_the_order_times_and_modes() {
        let root = tempfile::tempdir().expect("tempdir");
        let (first, second) = (root.path().join("a"), root.path().join("b"));
        write_tree(&first, SURVEY, 0o600);
        let reversed: Vec<_> = SURVEY.iter().rev().copied().collect();
        write_tree(&second, &reversed, 0o755);
        // Left out when packing: byte code, hidden files and folders.
        write_tree(
            &second,
            &[
                ("__pycache__/weights.cpython-312.pyc", "x"),
                ("old.pyc", "x"),
                (".git/config", "x"),
                (".env", "SECRET=1"),
            ],
            0o644,
        );
        let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000);
        std::fs::File::open(second.join("survey.py"))
            .and_then(|file| file.set_modified(old))
            .expect("mtime");
        let packed = Bundle::pack_dir(&first).expect("packs").to_bytes();
        assert_eq!(packed, Bundle::pack_dir(&second).expect("packs").to_bytes());
        assert_eq!(packed, survey_bytes());
        assert_eq!(packed.len(), SURVEY.len() * 2 * BLOCK + 2 * BLOCK);
    }

    #[test]
    fn a_bundle_unpacks_to_its_files_and_parses_back_the_same() {
        let bytes = survey_bytes();
        let bundle = Bundle::parse(&bytes).expect("parses");
        let root = tempfile::tempdir().expect("tempdir");
        let dir = root.path().join("unpacked");
        bundle.unpack(&dir).expect("unpacks");
        for (name, contents) in SURVEY {
            assert_eq!(
                std::fs::read_to_string(dir.join(name)).expect("file"),
                *contents
            );
        }
        assert_eq!(Bundle::pack_dir(&dir).expect("packs").to_bytes(), bytes);
        assert!(matches!(
            bundle.unpack(&dir),
            Err(BundleError::Exists { .. })
        ));
    }

    #[test]
    fn the_limits_are_kept_when_building_packing_and_parsing() {
        let many = (0..=MAX_BUNDLE_FILES).map(|i| (path(&format!("f{i}.csv")), Vec::new()));
        assert_eq!(Bundle::from_files(many), Err(BundleError::TooManyFiles));
        let big = [(path("big.csv"), vec![0; MAX_BUNDLE_BYTES])];
        assert_eq!(Bundle::from_files(big), Err(BundleError::TooLarge));
        let largest = MAX_BUNDLE_BYTES - 3 * BLOCK;
        let fits = [(path("big.csv"), vec![0; largest])];
        assert_eq!(
            Bundle::from_files(fits).expect("fits").to_bytes().len(),
            MAX_BUNDLE_BYTES
        );
        assert_eq!(
            Bundle::parse(&vec![0; MAX_BUNDLE_BYTES + 1]),
            Err(BundleError::TooLarge)
        );

        let root = tempfile::tempdir().expect("tempdir");
        for i in 0..=MAX_BUNDLE_FILES {
            std::fs::write(root.path().join(format!("f{i}.csv")), "").expect("file");
        }
        assert_eq!(
            Bundle::pack_dir(root.path()),
            Err(BundleError::TooManyFiles)
        );
        let root = tempfile::tempdir().expect("tempdir");
        std::fs::write(root.path().join("big.csv"), vec![0; MAX_BUNDLE_BYTES]).expect("file");
        assert_eq!(Bundle::pack_dir(root.path()), Err(BundleError::TooLarge));
    }

    #[test]
    fn packing_refuses_links_and_special_files_naming_them() {
        type Make = fn(&Path);
        type Caught = fn(&BundleError) -> bool;
        let cases: &[(&str, Make, Caught)] = &[
            (
                "a symbolic link out of the folder",
                |dir| std::os::unix::fs::symlink("/etc/passwd", dir.join("passwd")).expect("link"),
                |e| matches!(e, BundleError::SymbolicLink { path } if path.ends_with("passwd")),
            ),
            (
                "a symbolic link to a folder",
                |dir| std::os::unix::fs::symlink("/etc", dir.join("etc")).expect("link"),
                |e| matches!(e, BundleError::SymbolicLink { .. }),
            ),
            (
                "a hard link",
                |dir| std::fs::hard_link(dir.join("main.py"), dir.join("again.py")).expect("link"),
                |e| matches!(e, BundleError::HardLink { .. }),
            ),
            (
                "a socket",
                |dir| drop(std::os::unix::net::UnixListener::bind(dir.join("sock")).expect("bind")),
                |e| matches!(e, BundleError::NotAFile { .. }),
            ),
        ];
        for (what, make, caught) in cases {
            let root = tempfile::tempdir().expect("tempdir");
            std::fs::write(root.path().join("main.py"), "print(1)\n").expect("file");
            make(root.path());
            let refused = Bundle::pack_dir(root.path()).expect_err(what);
            assert!(caught(&refused), "{what}: {refused}");
        }
        let empty = tempfile::tempdir().expect("tempdir");
        std::fs::write(empty.path().join(".hidden"), "").expect("file");
        assert!(matches!(
            Bundle::pack_dir(empty.path()),
            Err(BundleError::Empty { .. })
        ));
    }

    /// An archive of one entry whose header `edit` changed after the canonical header was made.
    fn archive_with(entries: &[(&[u8], tar::EntryType, &[u8])]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (name, kind, contents) in entries {
            let mut header = tar::Header::new_ustar();
            header.as_old_mut().name[..name.len()].copy_from_slice(name);
            header.set_size(contents.len() as u64);
            header.set_mode(FILE_MODE);
            header.set_uid(0);
            header.set_gid(0);
            header.set_mtime(0);
            header.set_entry_type(*kind);
            if !kind.is_file() {
                header.set_size(0);
                header.as_old_mut().linkname[..6].copy_from_slice(b"../../");
            }
            header.set_cksum();
            builder.append(&header, *contents).expect("append");
        }
        builder.into_inner().expect("archive")
    }

    #[test]
    fn hostile_bundles_are_refused_and_write_nothing() {
        use tar::EntryType::{Directory, Link, Regular, Symlink};
        let fine: &[u8] = b"main.py";
        type Caught = fn(&BundleError) -> bool;
        let cases: &[(&str, Vec<u8>, Caught)] = &[
            (
                "a `..` component",
                archive_with(&[(fine, Regular, b"x"), (b"../x", Regular, b"evil")]),
                |e| matches!(e, BundleError::BadPath { path, .. } if path == "../x"),
            ),
            (
                "`..` inside a path",
                archive_with(&[(b"data/../../x", Regular, b"evil")]),
                |e| matches!(e, BundleError::BadPath { .. }),
            ),
            (
                "an absolute path",
                archive_with(&[(b"/tmp/evil", Regular, b"evil")]),
                |e| {
                    matches!(
                        e,
                        BundleError::BadPath {
                            reason: "it is absolute",
                            ..
                        }
                    )
                },
            ),
            (
                "a symbolic link",
                archive_with(&[(fine, Regular, b"x"), (b"out", Symlink, b"")]),
                |e| matches!(e, BundleError::SymbolicLink { path } if path == "out"),
            ),
            ("a hard link", archive_with(&[(b"out", Link, b"")]), |e| {
                matches!(e, BundleError::HardLink { .. })
            }),
            (
                "a folder entry",
                archive_with(&[(b"data", Directory, b"")]),
                |e| matches!(e, BundleError::NotAFile { .. }),
            ),
            (
                "the same path twice",
                archive_with(&[(fine, Regular, b"x"), (fine, Regular, b"y")]),
                |e| matches!(e, BundleError::Duplicate { path } if path == "main.py"),
            ),
            (
                "a path that is a file and a folder",
                archive_with(&[(b"data", Regular, b"x"), (b"data/a.csv", Regular, b"y")]),
                |e| matches!(e, BundleError::FileAndFolder { path } if path == "data"),
            ),
            (
                "byte code",
                archive_with(&[(b"__pycache__/m.cpython-312.pyc", Regular, b"x")]),
                |e| matches!(e, BundleError::BadPath { .. }),
            ),
            (
                "an unsorted bundle",
                archive_with(&[(b"b.py", Regular, b"x"), (b"a.py", Regular, b"y")]),
                |e| *e == BundleError::NotCanonical,
            ),
            (
                "a header with other metadata",
                {
                    let mut bytes = survey_bytes();
                    bytes[136..148].copy_from_slice(b"00000000001\0"); // mtime 1
                    bytes
                },
                |e| matches!(e, BundleError::Malformed(_) | BundleError::NotCanonical),
            ),
            (
                "bytes after the end",
                [survey_bytes(), vec![1]].concat(),
                |e| *e == BundleError::NotCanonical,
            ),
            ("no file", vec![0; 2 * BLOCK], |e| {
                *e == BundleError::NoFiles
            }),
            ("garbage", b"#!/bin/sh\nrm -rf /\n".to_vec(), |e| {
                matches!(e, BundleError::Malformed(_) | BundleError::NotCanonical)
            }),
        ];
        let root = tempfile::tempdir().expect("tempdir");
        let sandbox = root.path().join("a/b");
        std::fs::create_dir_all(&sandbox).expect("sandbox");
        for (what, bytes, caught) in cases {
            let refused = Bundle::parse(bytes)
                .and_then(|bundle| bundle.unpack(&sandbox.join("unpacked")))
                .expect_err(what);
            assert!(caught(&refused), "{what}: {refused}");
            assert_eq!(
                std::fs::read_dir(&sandbox).expect("list").count(),
                0,
                "{what}"
            );
            assert_eq!(
                std::fs::read_dir(root.path()).expect("list").count(),
                1,
                "{what}"
            );
        }
    }

    #[test]
    fn a_bundle_is_used_only_with_the_signed_hash_and_its_entry_point() {
        let bytes = survey_bytes();
        let name = crate::Label::new("name", "survey").expect("label");
        let signed = ProgramInfo::describe_bundle(name.clone(), &bytes, path("survey.py"));
        assert!(Bundle::verified(&bytes, &signed).is_ok());
        let mut swapped = bytes.clone();
        swapped[BLOCK] ^= 1;
        assert!(matches!(
            Bundle::verified(&swapped, &signed),
            Err(BundleError::HashMismatch { .. })
        ));
        let elsewhere = ProgramInfo::describe_bundle(name, &bytes, path("missing.py"));
        assert_eq!(
            Bundle::verified(&bytes, &elsewhere),
            Err(BundleError::NoEntryPoint {
                main: "missing.py".into()
            })
        );
    }

    #[test]
    fn the_entry_point_is_named_or_the_only_python_file_at_the_top() {
        let bundle = |names: &[&str]| {
            Bundle::from_files(names.iter().map(|name| (path(name), Vec::new()))).expect("bundle")
        };
        let one = bundle(&["survey.py", "lib/helper.py", "data.csv"]);
        assert_eq!(one.entry_point(None), Ok(path("survey.py")));
        assert_eq!(
            one.entry_point(Some("lib/helper.py")),
            Ok(path("lib/helper.py"))
        );
        assert!(matches!(
            one.entry_point(Some("../x.py")),
            Err(BundleError::BadPath { .. })
        ));
        let two = bundle(&["a.py", "b.py"]);
        let refused = two.entry_point(None).expect_err("ambiguous");
        assert_eq!(
            refused.to_string(),
            "name the program's entry point with --main: the folder has 2 .py files at its top (a.py, b.py)"
        );
        assert!(bundle(&["data.csv"]).entry_point(None).is_err());
    }
}

//! `mpcnet create --role / --role-arg`: an asymmetric program's roles from the command line,
//! and the folder that standalone role files are gathered into, to be packed as one bundle.

use std::path::{Path, PathBuf};

use mpcnet_proto::roles::{parse_assignment, seats_text};
use mpcnet_proto::{BundlePath, Role};

use crate::BadInput;

/// The roles of the `--role` values, each with the path it was given as. With `standalone`
/// the path is a file of the creator's, run as its file name at the bundle's top; else it is
/// the entry point's path inside the bundle.
pub fn parse(values: &[String], standalone: bool) -> Result<Vec<(Role, PathBuf)>, BadInput> {
    let mut roles: Vec<(Role, PathBuf)> = Vec::new();
    for value in values {
        let refuse = |message: String| BadInput(format!("--role {value}: {message}"));
        let (seats, path) = parse_assignment(value).map_err(|e| refuse(e.to_string()))?;
        let entry = match standalone {
            true => Path::new(&path)
                .file_name()
                .map(|name| name.to_string_lossy().into_owned())
                .ok_or_else(|| refuse(format!("{path} is not a file")))?,
            false => path.clone(),
        };
        let main = BundlePath::new(&entry).map_err(|e| refuse(e.to_string()))?;
        if let Some(seat) = seats
            .iter()
            .find(|seat| roles.iter().any(|(r, _)| r.has(**seat)))
        {
            return Err(refuse(format!("seat {seat} has a role already")));
        }
        let role = Role {
            seats,
            main,
            args: None,
        };
        roles.push((role, PathBuf::from(path)));
    }
    Ok(roles)
}

/// Gives each `--role-arg SEATS=ARG` to the role of exactly those seats, in order.
pub fn add_args(roles: &mut [Role], values: &[String]) -> Result<(), BadInput> {
    for value in values {
        let refuse = |message: String| BadInput(format!("--role-arg {value}: {message}"));
        let (seats, arg) = parse_assignment(value).map_err(|e| refuse(e.to_string()))?;
        let role = roles
            .iter_mut()
            .find(|role| role.seats == seats)
            .ok_or_else(|| {
                refuse(format!(
                    "no role has exactly the seats {}",
                    seats_text(&seats)
                ))
            })?;
        role.args.get_or_insert_with(Vec::new).push(arg);
    }
    Ok(())
}

/// Copies the standalone role `files` into a new folder inside `parent`, named after the
/// first file, each under its file name; returns the folder (the program to pack).
pub fn gather(files: &[PathBuf], parent: &Path) -> Result<PathBuf, BadInput> {
    let stem = files[0].file_stem().unwrap_or_default().to_string_lossy();
    let folder = parent.join(&*stem);
    let io = |path: &Path, e: std::io::Error| BadInput(format!("{}: {e}", path.display()));
    std::fs::create_dir(&folder).map_err(|e| io(&folder, e))?;
    for file in files {
        let name = file.file_name().expect("checked by parse");
        let copy = folder.join(name);
        if copy.exists() {
            // The same file for two roles is one file; two files of one name cannot both be.
            if std::fs::read(file).ok() == std::fs::read(&copy).ok() {
                continue;
            }
            return Err(BadInput(format!(
                "two role files are named {}: rename one, or make a folder and use --program",
                name.to_string_lossy()
            )));
        }
        std::fs::copy(file, &copy).map_err(|e| io(file, e))?;
    }
    Ok(folder)
}

//! Fuzzes unpacking a program bundle from a hostile creator: any bytes are refused with an
//! error or parse into a bundle that packs back to exactly those bytes; an accepted bundle
//! unpacks into its new folder and nowhere else (the sandbox around it holds nothing more),
//! to exactly its files; nothing panics. Each input is tried as it is and as an archive of
//! well-formed headers (right checksums) whose names, kinds and contents come from the input,
//! so hostile paths and entry kinds reach the bundle's own checks.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mpcnet_proto::Bundle;

fuzz_target!(|data: &[u8]| {
    check(data);
    check(&archive_of(data));
});

fn check(bytes: &[u8]) {
    let Ok(bundle) = Bundle::parse(bytes) else {
        return;
    };
    assert_eq!(bundle.to_bytes(), bytes, "an accepted bundle is canonical");
    let sandbox = std::env::temp_dir().join(format!("mpcnet-fuzz-bundle-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&sandbox);
    std::fs::create_dir(&sandbox).expect("sandbox");
    let dir = sandbox.join("unpacked");
    bundle.unpack(&dir).expect("an accepted bundle unpacks");
    let beside: Vec<_> = std::fs::read_dir(&sandbox).expect("sandbox").collect();
    assert_eq!(beside.len(), 1, "nothing is written beside the bundle's folder");
    let again = Bundle::pack_dir(&dir).expect("the unpacked folder packs");
    assert_eq!(again.to_bytes(), bytes, "unpacked to exactly its files");
    std::fs::remove_dir_all(&sandbox).expect("sandbox removed");
}

/// Records split by 0xff, each `kind name \0 contents`, as tar entries with valid checksums.
fn archive_of(data: &[u8]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for record in data.split(|byte| *byte == 0xff).take(16) {
        let Some((kind, rest)) = record.split_first() else {
            continue;
        };
        let (name, contents) = match rest.iter().position(|byte| *byte == 0) {
            Some(end) => (&rest[..end], &rest[end + 1..]),
            None => (rest, &[][..]),
        };
        let name = &name[..name.len().min(100)];
        let mut header = tar::Header::new_ustar();
        header.as_old_mut().name[..name.len()].copy_from_slice(name);
        header.set_size(contents.len() as u64);
        header.set_mode(0o644);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        header.set_entry_type(tar::EntryType::new(match kind % 4 {
            0 | 1 => b'0',
            2 => b'2',
            _ => *kind,
        }));
        header.set_cksum();
        let _ = builder.append(&header, contents);
    }
    builder.into_inner().unwrap_or_default()
}

//! Which filesystem holds a path, from `/proc/self/mountinfo`: the lock
//! method depends on it (`store::lock::method_for`; docs/deployment.md,
//! "Shared home directories").

use std::path::{Component, Path, PathBuf};

/// One mounted filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// Where it is mounted.
    pub point: PathBuf,
    /// Filesystem type: `ext4`, `nfs4`, `lustre`, `gpfs`, ...
    pub fstype: String,
    /// What is mounted (`server:/export`, `/dev/sda1`).
    pub source: String,
    /// Per-mount and superblock options together.
    pub options: Vec<String>,
}

impl Mount {
    /// Whether the mount has option `name` (e.g. `localflock`).
    pub fn has_option(&self, name: &str) -> bool {
        self.options.iter().any(|o| o == name)
    }

    /// `nfs4 (server:/home on /home)`.
    pub fn describe(&self) -> String {
        format!(
            "{} ({} on {})",
            self.fstype,
            self.source,
            self.point.display()
        )
    }
}

/// The mount holding `path` (which should exist), when `/proc` tells.
pub fn mount_of(path: &Path) -> Option<Mount> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let path = std::fs::canonicalize(path).ok()?;
    containing(&parse(&text), &path).cloned()
}

/// The mount with the longest mount point that is a prefix of `path`
/// (the last one listed wins a tie: it is mounted over the others).
pub fn containing<'a>(mounts: &'a [Mount], path: &Path) -> Option<&'a Mount> {
    mounts
        .iter()
        .filter(|m| path.starts_with(&m.point))
        .max_by_key(|m| {
            m.point
                .components()
                .filter(|c| *c != Component::RootDir)
                .count()
        })
}

/// Parses mountinfo: `ID PARENT MAJ:MIN ROOT POINT OPTS [OPTIONAL...] - TYPE SOURCE SUPEROPTS`.
/// Lines that do not fit are skipped.
pub fn parse(text: &str) -> Vec<Mount> {
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<Mount> {
    let (left, right) = line.split_once(" - ")?;
    let left: Vec<&str> = left.split(' ').collect();
    let mut right = right.split(' ');
    let point = unescape(left.get(4)?);
    let fstype = right.next()?.to_owned();
    let source = unescape(right.next()?);
    let options = left
        .get(5)?
        .split(',')
        .chain(right.next().unwrap_or("").split(','))
        .filter(|o| !o.is_empty())
        .map(str::to_owned)
        .collect();
    Some(Mount {
        point: PathBuf::from(point),
        fstype,
        source,
        options,
    })
}

/// Undoes the kernel's octal escapes (`\040` for a space).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| bytes[i] == b'\\' && d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match octal {
            Some(d) => {
                let value = d.iter().fold(0u32, |acc, b| acc * 8 + u32::from(b - b'0'));
                out.push(u8::try_from(value).unwrap_or(b'?'));
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
22 1 253:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw
40 22 0:35 / /home rw,relatime shared:20 - nfs4 fs1:/export/home rw,vers=4.2,hard
41 22 0:36 / /scratch rw,relatime - lustre 10.0.0.1@o2ib:/scratch rw,localflock,lazystatfs
42 22 0:37 / /work\\040dir rw - gpfs work rw
bad line";

    #[test]
    fn finds_the_innermost_mount() {
        let mounts = parse(SAMPLE);
        assert_eq!(mounts.len(), 4);
        let home = containing(&mounts, Path::new("/home/jdoe/.local/state")).unwrap();
        assert_eq!(home.fstype, "nfs4");
        assert_eq!(
            home.describe(),
            "nfs4 (fs1:/export/home on /home)".to_owned()
        );
        let root = containing(&mounts, Path::new("/var/tmp")).unwrap();
        assert_eq!(root.fstype, "ext4");
        // A path that merely shares a prefix string is not inside the mount.
        let homer = containing(&mounts, Path::new("/homer")).unwrap();
        assert_eq!(homer.fstype, "ext4");
    }

    #[test]
    fn reads_superblock_options_and_escapes() {
        let mounts = parse(SAMPLE);
        let scratch = containing(&mounts, Path::new("/scratch/u")).unwrap();
        assert!(scratch.has_option("localflock"));
        assert!(!scratch.has_option("flock"));
        let work = containing(&mounts, Path::new("/work dir/x")).unwrap();
        assert_eq!(work.fstype, "gpfs");
    }

    #[test]
    fn this_machine_has_a_root_mount() {
        if let Some(m) = mount_of(Path::new("/")) {
            assert_eq!(m.point, PathBuf::from("/"));
        }
    }
}

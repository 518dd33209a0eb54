//! The binaries under test: where they are, building them, and their sizes
//! (figure 7).

use anyhow::{Context as _, ensure};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Paths of the measured binaries (same profile as the running bench).
#[derive(Debug, Clone)]
pub struct Bins {
    /// The profile directory, e.g. `target/release`.
    pub dir: PathBuf,
    /// `tapis-agent`.
    pub agent: PathBuf,
    /// `tapis-cred`.
    pub cred: PathBuf,
    /// The do-nothing binary.
    pub noop: PathBuf,
}

impl Bins {
    /// Next to the running executable (`target/<profile>/`, or its parent for
    /// test executables in `deps/`).
    pub fn beside_current_exe() -> anyhow::Result<Self> {
        let exe = std::env::current_exe().context("locating the running executable")?;
        let mut dir = exe
            .parent()
            .context("executable without a directory")?
            .to_path_buf();
        if dir.ends_with("deps") {
            dir.pop();
        }
        Ok(Self::in_dir(dir))
    }

    /// In `dir`.
    pub fn in_dir(dir: PathBuf) -> Self {
        Bins {
            agent: dir.join("tapis-agent"),
            cred: dir.join("tapis-cred"),
            noop: dir.join("noop"),
            dir,
        }
    }

    /// Builds the three binaries with cargo, into this profile directory.
    /// The agent and the client are built on their own, as users build
    /// them: built together with this crate, cargo would unify their
    /// dependencies' features with the test server's and change them.
    pub fn build(&self) -> anyhow::Result<()> {
        let target_dir = self.dir.parent().context("profile dir without a parent")?;
        let profile = if cfg!(debug_assertions) {
            "dev"
        } else {
            "release"
        };
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        for packages in [
            &["-p", "tapis-agent", "-p", "tapis-cred"][..],
            &["-p", "tapis-agent-tests", "--bin", "noop"][..],
        ] {
            let status = Command::new(&cargo)
                .args(["build", "--quiet", "--profile", profile, "--target-dir"])
                .arg(target_dir)
                .args(packages)
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .status()
                .context("running cargo build")?;
            ensure!(status.success(), "cargo build {packages:?} failed");
        }
        Ok(())
    }

    /// Fails with a hint when a binary is missing.
    pub fn check(&self) -> anyhow::Result<()> {
        for b in [&self.agent, &self.cred, &self.noop] {
            ensure!(
                b.exists(),
                "{} is missing: build it (cargo build --release --workspace) or drop --no-build",
                b.display()
            );
        }
        Ok(())
    }
}

/// Figure 7: one binary's size on disk.
#[derive(Debug, Clone, Serialize)]
pub struct BinSize {
    /// Binary name.
    pub name: String,
    /// Bytes on disk.
    pub bytes: u64,
    /// Whether the ELF file has no symbol table.
    pub stripped: bool,
}

/// Sizes of `tapis-cred`, `tapis-agent` and the do-nothing binary.
pub fn sizes(bins: &Bins) -> anyhow::Result<Vec<BinSize>> {
    [&bins.cred, &bins.agent, &bins.noop]
        .into_iter()
        .map(|p| size_of(p))
        .collect()
}

fn size_of(path: &Path) -> anyhow::Result<BinSize> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(BinSize {
        name: path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        bytes: bytes.len() as u64,
        stripped: !has_symtab(&bytes),
    })
}

/// Whether a 64-bit little-endian ELF file has a `.symtab` section.
fn has_symtab(elf: &[u8]) -> bool {
    const SHT_SYMTAB: u32 = 2;
    let u16_at = |o: usize| elf.get(o..o + 2).map(|b| u16::from_le_bytes([b[0], b[1]]));
    let u32_at = |o: usize| {
        elf.get(o..o + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let u64_at = |o: usize| {
        elf.get(o..o + 8)
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map(u64::from_le_bytes)
    };
    if elf.get(..5) != Some(b"\x7fELF\x02") {
        return false;
    }
    let (Some(shoff), Some(shentsize), Some(shnum)) = (u64_at(0x28), u16_at(0x3A), u16_at(0x3C))
    else {
        return false;
    };
    (0..usize::from(shnum)).any(|i| {
        let at = shoff as usize + i * usize::from(shentsize);
        u32_at(at + 4) == Some(SHT_SYMTAB)
    })
}

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
    /// `tapis-cred` linked statically (`-C target-feature=+crt-static`), in
    /// `static/` of the profile directory.
    pub cred_static: PathBuf,
    /// The do-nothing binary linked statically: the cheapest process the
    /// machine can start.
    pub noop_static: PathBuf,
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
            cred_static: dir.join("static").join("tapis-cred"),
            noop_static: dir.join("static").join("noop"),
            dir,
        }
    }

    /// Whether both static binaries are there (the bench measures them
    /// beside the dynamic ones when they are).
    pub fn has_static(&self) -> bool {
        self.cred_static.exists() && self.noop_static.exists()
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

    /// Builds the static `tapis-cred` and `noop` into `static/`.
    ///
    /// A static glibc build needs `--target` (with `+crt-static` for the
    /// host itself, proc-macro crates cannot be built), so the client is
    /// built for the host triple named explicitly, into
    /// `target/<triple>/<profile>/`, and copied. The do-nothing binary has no
    /// dependencies and no code: it is compiled by rustc directly, with the
    /// profile's optimization, `panic = "abort"` and stripping.
    pub fn build_static(&self) -> anyhow::Result<()> {
        let target_dir = self.dir.parent().context("profile dir without a parent")?;
        let host = host_triple()?;
        let (profile, profile_dir) = if cfg!(debug_assertions) {
            ("dev", "debug")
        } else {
            ("release", "release")
        };
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = Command::new(&cargo)
            .args(["build", "--quiet", "--profile", profile, "--target", &host])
            .arg("--config")
            .arg(format!(
                "target.{host}.rustflags=[\"-C\", \"target-feature=+crt-static\"]"
            ))
            .arg("--target-dir")
            .arg(target_dir)
            .args(["-p", "tapis-cred"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .context("running cargo build")?;
        ensure!(
            status.success(),
            "cargo build of the static tapis-cred failed"
        );
        let out = self.cred_static.parent().context("static dir")?;
        std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
        let built = target_dir.join(&host).join(profile_dir).join("tapis-cred");
        std::fs::copy(&built, &self.cred_static)
            .with_context(|| format!("copying {}", built.display()))?;
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/bin/noop.rs");
        let opt = if cfg!(debug_assertions) { "0" } else { "3" };
        let status = Command::new(rustc())
            .args(["--edition", "2024", "--crate-name", "noop", "-C"])
            .arg(format!("opt-level={opt}"))
            .args(["-C", "panic=abort", "-C", "strip=symbols"])
            .args(["-C", "target-feature=+crt-static", "-o"])
            .arg(&self.noop_static)
            .arg(&source)
            .status()
            .context("running rustc")?;
        ensure!(status.success(), "rustc of the static noop failed");
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

/// rustc next to the cargo that runs us (rustup puts both on `PATH`).
fn rustc() -> std::ffi::OsString {
    std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into())
}

/// The host's target triple, from `rustc -vV`.
fn host_triple() -> anyhow::Result<String> {
    let out = Command::new(rustc())
        .arg("-vV")
        .output()
        .context("running rustc -vV")?;
    ensure!(out.status.success(), "rustc -vV failed");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .map(str::to_owned)
        .context("rustc -vV names no host")
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

/// Sizes of `tapis-cred`, `tapis-agent` and the do-nothing binary, and of
/// the static builds when there are.
pub fn sizes(bins: &Bins) -> anyhow::Result<Vec<BinSize>> {
    let mut all = vec![
        (&bins.cred, false),
        (&bins.agent, false),
        (&bins.noop, false),
    ];
    if bins.has_static() {
        all.extend([(&bins.cred_static, true), (&bins.noop_static, true)]);
    }
    all.into_iter().map(|(p, s)| size_of(p, s)).collect()
}

fn size_of(path: &Path, linked_static: bool) -> anyhow::Result<BinSize> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(BinSize {
        name: if linked_static {
            format!("{name} (static)")
        } else {
            name
        },
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

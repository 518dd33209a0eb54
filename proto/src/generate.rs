//! Shell completions and man pages, generated from the clap definition of a
//! binary, so they can never drift from what it accepts: the one writer
//! both `tapis-cred` and `tapis-agent` use (feature `generate`).

use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Writes the completion script of `cmd` for `shell` to `out`.
pub fn completions(mut cmd: clap::Command, shell: clap_complete::Shell, out: &mut dyn Write) {
    let name = cmd.get_name().to_owned();
    clap_complete::generate(shell, &mut cmd, name, out);
}

/// Writes the man page of `cmd` (section 1) to `out`. Its SUBCOMMANDS section
/// lists every subcommand; [`man_pages_to`] writes one page each as well.
pub fn man_page(cmd: clap::Command, out: &mut dyn Write) -> io::Result<()> {
    clap_mangen::Man::new(cmd).render(out)
}

/// Writes `NAME.1` and `NAME-SUBCOMMAND.1` for every visible subcommand into
/// `dir` (created if needed) and returns the files written.
pub fn man_pages_to(cmd: clap::Command, dir: &Path) -> io::Result<Vec<PathBuf>> {
    fn walk(cmd: clap::Command, dir: &Path, written: &mut Vec<PathBuf>) -> io::Result<()> {
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()).cloned() {
            walk(sub, dir, written)?;
        }
        written.push(clap_mangen::Man::new(cmd).generate_to(dir)?);
        Ok(())
    }
    std::fs::create_dir_all(dir)?;
    let mut cmd = cmd.disable_help_subcommand(true);
    cmd.build();
    let mut written = Vec::new();
    walk(cmd, dir, &mut written)?;
    written.sort();
    Ok(written)
}

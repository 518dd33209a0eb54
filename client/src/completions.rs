//! `completions` and `man`: generated from the clap definition in
//! [`crate::cli`], so they always match what the client accepts.

use crate::cli::{Cli, CompletionsArgs, ManArgs};
use crate::exit::{self, Failure, SUCCESS};
use crate::render::{self, Rendered};
use crate::ui::Ui;
use clap::CommandFactory;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// `completions`: the script for one shell.
#[derive(Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub(crate) struct Script<'a> {
    #[cfg_attr(test, schemars(schema_with = "shells"))]
    shell: String,
    script: &'a str,
}

/// The shells clap_complete writes for.
#[cfg(test)]
fn shells(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    use clap::ValueEnum;
    let names: Vec<String> = clap_complete::Shell::value_variants()
        .iter()
        .map(ToString::to_string)
        .collect();
    schemars::json_schema!({ "enum": names })
}

/// `man`: the page, or the pages written.
#[derive(Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub(crate) struct Pages<'a> {
    /// The roff page, when no DIR was given.
    page: Option<&'a str>,
    /// Pages written into DIR.
    files: Vec<String>,
}

/// The completion script for one shell.
pub fn completions(ui: Ui, args: &CompletionsArgs) -> Rendered {
    let mut cmd = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "tapis-cred", &mut script);
    let script = String::from_utf8_lossy(&script).into_owned();
    let body = Script {
        shell: args.shell.to_string(),
        script: &script,
    };
    render::text(ui, "completions", SUCCESS, body, script.clone())
}

/// The man page on stdout, or one page per subcommand in a directory.
pub fn man(ui: Ui, args: &ManArgs) -> Result<Rendered, Failure> {
    match &args.dir {
        None => {
            let mut page = Vec::new();
            clap_mangen::Man::new(crate::cli::command())
                .render(&mut page)
                .map_err(|e| exit::other(format!("man: cannot render the page: {e}")))?;
            let page = String::from_utf8_lossy(&page).into_owned();
            let body = Pages {
                page: Some(&page),
                files: Vec::new(),
            };
            Ok(render::text(ui, "man", SUCCESS, body, page.clone()))
        }
        Some(dir) => {
            let files = write_pages(dir).map_err(|e| {
                exit::other(format!(
                    "man: cannot write pages into {}: {e}",
                    dir.display()
                ))
            })?;
            let files: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
            let text = if ui.quiet {
                String::new()
            } else {
                files.iter().map(|f| format!("wrote {f}\n")).collect()
            };
            let body = Pages { page: None, files };
            Ok(render::text(ui, "man", SUCCESS, body, text))
        }
    }
}

/// `tapis-cred.1` and `tapis-cred-SUBCOMMAND.1`, sorted.
fn write_pages(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    fn walk(cmd: clap::Command, dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()).cloned() {
            walk(sub, dir, out)?;
        }
        out.push(clap_mangen::Man::new(cmd).generate_to(dir)?);
        Ok(())
    }
    std::fs::create_dir_all(dir)?;
    let mut cmd = crate::cli::command().disable_help_subcommand(true);
    cmd.build();
    let mut files = Vec::new();
    walk(cmd, dir, &mut files)?;
    files.sort();
    Ok(files)
}

//! `completions` and `man`: generated from the clap definition in
//! [`crate::cli`], so they always match what the client accepts.

use crate::cli::{Cli, CompletionsArgs, ManArgs};
use crate::exit::{self, Failure, SUCCESS};
use crate::render::{self, Rendered};
use crate::ui::Ui;
use clap::CommandFactory;
use serde::Serialize;
use tapis_agent_proto::generate;

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
    let mut script = Vec::new();
    generate::completions(Cli::command(), args.shell, &mut script);
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
            generate::man_page(crate::cli::command(), &mut page)
                .map_err(|e| exit::other(format!("man: cannot render the page: {e}")))?;
            let page = String::from_utf8_lossy(&page).into_owned();
            let body = Pages {
                page: Some(&page),
                files: Vec::new(),
            };
            Ok(render::text(ui, "man", SUCCESS, body, page.clone()))
        }
        Some(dir) => {
            let files = generate::man_pages_to(crate::cli::command(), dir).map_err(|e| {
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

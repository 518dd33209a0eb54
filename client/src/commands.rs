//! One function per subcommand: build the request, ask the agent, render
//! the answer.

use crate::cli::{Cli, Command, ExportArgs, Targets};
use crate::conn::{Endpoint, unexpected};
use crate::exit::{self, Failure};
use crate::render::{self, Rendered};
use crate::ui::Ui;
use crate::{completions, doctor, login, socket, time, validate};
use std::time::Duration;
use tapis_agent_proto::{ErrorKind, Outcome, Request, Response, SystemOutcome, suggest};

/// Runs the parsed command line.
pub fn run(cli: &Cli, ui: Ui) -> Result<Rendered, Failure> {
    let profile = socket::profile(cli.global.profile.as_deref()).map_err(exit::usage)?;
    let path = socket::for_profile(
        socket::from_env(cli.global.socket.as_deref()),
        profile.as_deref(),
    );
    let endpoint = Endpoint {
        path,
        timeout: Duration::from_secs(cli.global.timeout),
        ui,
    };
    let name = cli.command.name();
    match &cli.command {
        Command::Establish(r) => systems(&endpoint, name, &r.targets, |systems, user| {
            Request::Establish {
                systems,
                user,
                fresh: r.fresh,
            }
        }),
        Command::Revoke(t) => systems(&endpoint, name, t, |systems, user| Request::Revoke {
            systems,
            user,
        }),
        Command::Check(r) => systems(&endpoint, name, &r.targets, |systems, user| {
            Request::Check {
                systems,
                user,
                fresh: r.fresh,
            }
        }),
        Command::Token(a) => token(&endpoint, name, a.min_valid),
        Command::Login(a) => login::run(a, &endpoint),
        Command::Logout(a) => logout(&endpoint, name, a.forget_client),
        Command::Status => match endpoint.ask(&Request::Status)? {
            Response::Status(info) => Ok(render::status(ui, &info, time::now())),
            other => Err(unexpected(name, &other)),
        },
        Command::ExportTokenFile(a) => export(&endpoint, a),
        Command::Doctor => Ok(doctor::run(&endpoint, profile.as_deref())),
        Command::Completions(a) => Ok(completions::completions(ui, a)),
        Command::Man(a) => completions::man(ui, a),
    }
}

/// The token. Alone on stdout it is one round trip; the JSON document also
/// names the Tapis the token is for, which a program needs beside it.
fn token(endpoint: &Endpoint, name: &str, min_valid_secs: u64) -> Result<Rendered, Failure> {
    let request = Request::Token { min_valid_secs };
    if !endpoint.ui.json {
        return match endpoint.ask(&request)? {
            Response::Token(grant) => Ok(render::token(endpoint.ui, &grant, "")),
            other => Err(unexpected(name, &other)),
        };
    }
    let mut agent = endpoint.connect()?;
    let grant = match agent.call(&request)? {
        Response::Token(grant) => grant,
        other => return Err(unexpected(name, &other)),
    };
    match agent.call(&Request::Settings)? {
        Response::Settings(s) => Ok(render::token(endpoint.ui, &grant, &s.base_url)),
        other => Err(unexpected(name, &other)),
    }
}

/// Logs out. The agent removes the token file it keeps fresh (its token
/// would work for hours): the user is told when one went.
fn logout(endpoint: &Endpoint, name: &str, forget_client: bool) -> Result<Rendered, Failure> {
    let mut agent = endpoint.connect()?;
    let token_file = match agent.call(&Request::Settings)? {
        Response::Settings(s) => s.export_token_file.map(std::path::PathBuf::from),
        other => return Err(unexpected(name, &other)),
    };
    let existed = token_file.as_ref().filter(|p| p.exists());
    match agent.call(&Request::Logout { forget_client })? {
        Response::LoggedOut => {
            let removed = existed.filter(|p| !p.exists());
            Ok(render::logged_out(
                endpoint.ui,
                removed.map(|p| p.as_path()),
            ))
        }
        other => Err(unexpected(name, &other)),
    }
}

/// Establish, revoke and check: validate, ask, render one line per system.
fn systems(
    endpoint: &Endpoint,
    command: &str,
    targets: &Targets,
    request: impl FnOnce(Vec<String>, Option<String>) -> Request,
) -> Result<Rendered, Failure> {
    let systems = validate::systems(command, &targets.systems)?;
    if let Some(user) = &targets.user {
        validate::user(command, user)?;
    }
    match endpoint.ask(&request(systems, targets.user.clone()))? {
        Response::Systems(mut outcomes) => {
            suggest_systems(endpoint, &mut outcomes);
            Ok(render::systems(endpoint.ui, command, &outcomes))
        }
        other => Err(unexpected(command, &other)),
    }
}

/// For each system Tapis does not know, "did you mean" one the agent has
/// seen (its cache, as `status` lists it): a typo, or the wrong case.
fn suggest_systems(endpoint: &Endpoint, outcomes: &mut [SystemOutcome]) {
    let not_found = |o: &SystemOutcome| matches!(&o.outcome, Outcome::Err(e) if e.kind == ErrorKind::SystemNotFound);
    if !outcomes.iter().any(not_found) {
        return;
    }
    // Only a hint: without an answer, the error stays as the agent said it.
    let Ok(Response::Status(status)) = endpoint.ask(&Request::Status) else {
        return;
    };
    let known: Vec<&str> = status.systems.iter().map(|s| s.system.as_str()).collect();
    for o in outcomes.iter_mut() {
        if let Outcome::Err(e) = &mut o.outcome
            && e.kind == ErrorKind::SystemNotFound
            && let Some(near) = suggest::closest(&o.system, known.iter().copied())
                .into_iter()
                .find(|&k| k != o.system)
        {
            e.hint = Some(format!("did you mean {near}?"));
        }
    }
}

/// The agent runs elsewhere (another working directory), so a relative path
/// is made absolute here.
fn export(endpoint: &Endpoint, args: &ExportArgs) -> Result<Rendered, Failure> {
    let path = match &args.path {
        None => None,
        Some(p) => {
            let abs = std::path::absolute(p).map_err(|e| {
                exit::usage(format!("export-token-file: bad path {}: {e}", p.display()))
            })?;
            let text = abs.into_os_string().into_string().map_err(|p| {
                exit::usage(format!(
                    "export-token-file: path {} is not valid UTF-8",
                    std::path::Path::new(&p).display()
                ))
            })?;
            Some(text)
        }
    };
    match endpoint.ask(&Request::ExportTokenFile { path })? {
        Response::Exported { path, expires_at } => {
            Ok(render::exported(endpoint.ui, &path, expires_at))
        }
        other => Err(unexpected("export-token-file", &other)),
    }
}

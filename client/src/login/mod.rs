//! `tapis-cred login`: pick the credential source, hand it to the agent once.

mod device;
mod password;
pub mod tokenfile;

use crate::cli::LoginArgs;
use crate::conn::{Endpoint, unexpected};
use crate::exit::{self, Failure};
use crate::render::{self, Rendered};
use crate::{ui, validate};
use std::io::{self, BufRead, IsTerminal};
use std::path::Path;
use tapis_agent_proto::{ErrorKind, LoginMethod, Request, Response};

/// Runs `login` and renders the agent's answer.
pub fn run(args: &LoginArgs, endpoint: &Endpoint) -> Result<Rendered, Failure> {
    let answer = if let Some(path) = &args.import_token_file {
        let path = match path {
            Some(path) => path.clone(),
            None => tokenfile::default_path()?,
        };
        // The agent reads and checks the file, as it writes its export.
        let path = std::path::absolute(&path)
            .map_err(|e| exit::usage(format!("login: token file {}: {e}", path.display())))?;
        endpoint.ask(&Request::Login(LoginMethod::ImportTokenFile {
            path: path.display().to_string(),
        }))?
    } else if args.device {
        device::login(endpoint)?
    } else {
        with_password(args, endpoint)?
    };
    match answer {
        Response::LoggedIn {
            username,
            tenant,
            expires_at,
            has_refresh_token,
            refresh_problem,
        } => Ok(render::logged_in(
            endpoint.ui,
            &render::Login {
                username: &username,
                tenant: &tenant,
                expires_at,
                has_refresh_token,
                refresh_problem: refresh_problem.as_deref(),
            },
        )),
        other => Err(unexpected("login", &other)),
    }
}

/// Password prompts at a terminal before a wrong password is final.
const PROMPTS: u32 = 3;

/// What to do when `login` cannot ask for a password: each way that works
/// without a terminal, the notebook's first (where `!tapis-cred login` is the
/// usual mistake).
const NO_TERMINAL_HINT: &str = "in Python or a notebook: tapis_agent.login(); in a script: \
     tapis-cred login --username U --password-stdin (or --password-file PATH); \
     in a browser: tapis-cred login --device";

/// Where the password comes from.
enum Source<'a> {
    Stdin,
    File(&'a Path),
    Prompt,
}

fn with_password(args: &LoginArgs, endpoint: &Endpoint) -> Result<Response, Failure> {
    let stdin_tty = io::stdin().is_terminal();
    let source = match (&args.password_file, args.password_stdin) {
        (_, true) => Source::Stdin,
        (Some(path), false) => Source::File(path),
        (None, false) if stdin_tty => Source::Prompt,
        (None, false) => {
            return Err(
                exit::login_required("login: no password source: stdin is not a terminal")
                    .with_hint(NO_TERMINAL_HINT),
            );
        }
    };
    // Stdin cannot carry both the password and a typed username.
    let can_ask_user = stdin_tty && !matches!(source, Source::Stdin);
    // Asking first also fails before the user types anything when the agent
    // is not there.
    let configured = match &args.username {
        Some(_) => None,
        None => configured_username(endpoint)?,
    };
    if args.username.is_none() && configured.is_none() && !can_ask_user {
        return Err(exit::usage(
            "login: no username: pass --username U (or set username in the agent's config)",
        ));
    }
    if matches!(source, Source::Prompt) && args.username.is_some() {
        drop(endpoint.connect()?);
    }
    let username = match (&args.username, configured) {
        (Some(name), _) => name.clone(),
        (None, Some(name)) => name,
        (None, None) => ask_username()?,
    };
    validate::user("login", &username)?;
    let ask = |password| {
        endpoint.ask(&Request::Login(LoginMethod::Password {
            username: username.clone(),
            password,
        }))
    };
    match source {
        Source::Stdin => ask(password::from_stdin()?),
        Source::File(path) => ask(password::from_file(path)?),
        Source::Prompt => {
            // As sudo and ssh do: a mistyped password is asked again, a few times.
            let mut tries = 1;
            loop {
                match ask(password::prompt(&username)?) {
                    Err(e) if e.kind == ErrorKind::WrongPassword && tries < PROMPTS => {
                        ui::stderr("Sorry, Tapis refused that username or password; try again.\n");
                        tries += 1;
                    }
                    other => return other,
                }
            }
        }
    }
}

/// The agent's configured default user (`username` in its config), if any.
/// An agent that predates the question answers with an error: no default.
fn configured_username(endpoint: &Endpoint) -> Result<Option<String>, Failure> {
    match endpoint.connect()?.call(&Request::Settings) {
        Ok(Response::Settings(s)) => Ok(s.username.filter(|u| !u.is_empty())),
        Ok(_) => Ok(None),
        Err(e) if e.kind == ErrorKind::AgentUnreachable => Err(e),
        Err(_) => Ok(None),
    }
}

fn ask_username() -> Result<String, Failure> {
    ui::stderr("Tapis username: ");
    let mut line = String::new();
    io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| exit::other(format!("login: cannot read the username: {e}")))?;
    Ok(line.trim().to_owned())
}

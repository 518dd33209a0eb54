//! Device-code login: show a code, poll the agent until it is approved.

use crate::conn::{Agent, Endpoint, unexpected};
use crate::exit::{self, Failure};
use crate::ui;
use std::io::IsTerminal;
use std::time::{Duration, Instant};
use tapis_agent_proto::{DeviceCode, ErrorKind, LoginMethod, Request, Response};

/// Longest wait for approval, whatever the code's stated lifetime.
const MAX_WAIT: Duration = Duration::from_secs(30 * 60);

/// Runs the flow and returns the agent's final answer (`LoggedIn`). The code is
/// shown on stderr even with `--json`: without it the login cannot happen.
pub fn login(endpoint: &Endpoint) -> Result<Response, Failure> {
    let mut agent = endpoint.connect()?;
    let code = match agent.call(&Request::Login(LoginMethod::DeviceStart))? {
        Response::DeviceCode(code) => code,
        other => return Err(unexpected("login", &other)),
    };
    ui::stderr(&format!(
        "Open {} and enter the code {}\n",
        code.verification_uri, code.user_code
    ));
    let progress = Progress {
        on: endpoint.ui.chatty() && std::io::stderr().is_terminal(),
    };
    let outcome = poll(endpoint, &mut agent, &code, &progress);
    progress.clear();
    outcome
}

fn poll(
    endpoint: &Endpoint,
    agent: &mut Agent,
    code: &DeviceCode,
    progress: &Progress,
) -> Result<Response, Failure> {
    let deadline = Instant::now() + Duration::from_secs(code.expires_in).min(MAX_WAIT);
    // At least a second apart however the server answers, at most a minute.
    let interval = Duration::from_secs(code.interval.clamp(1, 60));
    loop {
        progress.wait(interval, deadline);
        if Instant::now() >= deadline {
            return Err(exit::login_required(
                "login: the device code expired before it was approved",
            )
            .with_hint("start again: tapis-cred login --device"));
        }
        match agent.call(&Request::DevicePoll) {
            Ok(Response::DevicePending) => {}
            Ok(done @ Response::LoggedIn { .. }) => return Ok(done),
            Ok(other) => return Err(unexpected("login", &other)),
            // The agent may close a connection that idles between polls;
            // the login itself lives in the agent, so a new one carries on.
            Err(e) if e.kind == ErrorKind::AgentUnreachable => *agent = endpoint.connect()?,
            Err(e) => return Err(e),
        }
    }
}

/// The "waiting for approval" line, redrawn in place on a terminal.
struct Progress {
    on: bool,
}

impl Progress {
    /// Sleeps until the next poll is due (or the deadline), redrawing the
    /// countdown once a second.
    fn wait(&self, interval: Duration, deadline: Instant) {
        let until = (Instant::now() + interval).min(deadline);
        loop {
            let now = Instant::now();
            if self.on {
                let left = deadline.saturating_duration_since(now).as_secs();
                ui::stderr(&format!("\r\x1b[2Kwaiting for approval… {left} s left"));
            }
            if now >= until {
                return;
            }
            std::thread::sleep((until - now).min(Duration::from_secs(1)));
        }
    }

    fn clear(&self) {
        if self.on {
            ui::stderr("\r\x1b[2K");
        }
    }
}

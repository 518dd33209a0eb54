//! Turns one request into one response.

use crate::paths;
use crate::systems::{Ctx, Op, Registry};
use crate::token::LoggedIn;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tapis_agent_proto::{
    AgentSettings, ErrorKind, ErrorReply, LoginMethod, Outcome, Pong, Request, Response,
    StateDirStatus, StatusInfo, SystemOutcome,
};

pub use tapis_agent_proto::limits::MAX_SYSTEMS_PER_REQUEST;
use tapis_agent_proto::limits::{SYSTEM_ID_RULE, USER_RULE, check_system_id, check_user};
/// Longest `--min-valid` accepted (30 days).
const MAX_MIN_VALID: u64 = 30 * 24 * 3600;

/// Everything a request may touch: the per-system queues over the agent's
/// one state ([`Ctx`]), and when the agent started.
#[derive(Debug)]
pub struct Agent {
    /// Per-system queues; they hold the state.
    pub registry: Registry,
    /// When the agent started.
    pub started: Instant,
}

impl Agent {
    /// An agent over `state`.
    pub fn new(state: Arc<Ctx>) -> Self {
        Self {
            registry: Registry::new(state),
            started: Instant::now(),
        }
    }

    /// The agent's state: configuration, tokens, cache, locks, Tapis client.
    pub fn state(&self) -> &Ctx {
        self.registry.ctx()
    }

    /// Answers one request (never `Hello`, which the connection handles).
    pub async fn handle(&self, req: Request) -> Response {
        match req {
            Request::Hello { .. } => error(ErrorKind::Usage, "hello sent twice"),
            Request::Establish {
                systems,
                user,
                fresh,
            } => self.systems(Op::Establish(fresh), systems, user).await,
            Request::Check {
                systems,
                user,
                fresh,
            } => self.systems(Op::Check(fresh), systems, user).await,
            Request::Revoke { systems, user } => self.systems(Op::Revoke, systems, user).await,
            Request::Token { min_valid_secs } => {
                let secs = min_valid_secs.min(MAX_MIN_VALID);
                match self.state().tokens.token(Duration::from_secs(secs)).await {
                    Ok(grant) => Response::Token(grant),
                    Err(e) => Response::Error(e),
                }
            }
            Request::Login(method) => match method {
                LoginMethod::Password { username, password } => {
                    if username.trim().is_empty() {
                        error(ErrorKind::Usage, "login: empty username")
                    } else {
                        let tokens = &self.state().tokens;
                        answer(tokens.login_password(username.trim(), password).await)
                    }
                }
                LoginMethod::ImportTokenFile { path } => {
                    let path = PathBuf::from(path);
                    if !path.is_absolute() {
                        return error(
                            ErrorKind::Usage,
                            "login --import-token-file: the path must be absolute",
                        );
                    }
                    answer(self.state().tokens.login_import_file(&path).await)
                }
                LoginMethod::DeviceStart => match self.state().tokens.device_start().await {
                    Ok(code) => Response::DeviceCode(code),
                    Err(e) => Response::Error(e),
                },
            },
            Request::DevicePoll => match self.state().tokens.device_poll().await {
                Ok(Some(login)) => logged_in(login),
                Ok(None) => Response::DevicePending,
                Err(e) => Response::Error(e),
            },
            Request::Logout { forget_client } => {
                let done = self.state().tokens.logout(forget_client).await;
                self.state().cache.clear();
                match done {
                    Ok(()) => Response::LoggedOut,
                    Err(e) => Response::Error(e),
                }
            }
            Request::Status => Response::Status(self.status()),
            Request::Settings => Response::Settings(self.settings()),
            Request::Ping => Response::Pong(self.ping().await),
            Request::ExportTokenFile { path } => {
                let path = path
                    .map(PathBuf::from)
                    .or_else(|| self.state().config.export_token_file.clone())
                    .unwrap_or_else(|| paths::home().join(".tapis_tokens.json"));
                if !path.is_absolute() {
                    return error(
                        ErrorKind::Usage,
                        "export-token-file: the path must be absolute",
                    );
                }
                match self.state().tokens.export(&path) {
                    Ok(expires_at) => Response::Exported {
                        path: path.display().to_string(),
                        expires_at,
                    },
                    Err(e) => Response::Error(e),
                }
            }
        }
    }

    async fn systems(&self, op: Op, systems: Vec<String>, user: Option<String>) -> Response {
        if systems.is_empty() {
            return error(ErrorKind::Usage, "no system given");
        }
        if systems.len() > MAX_SYSTEMS_PER_REQUEST {
            return error(
                ErrorKind::Usage,
                format!("at most {MAX_SYSTEMS_PER_REQUEST} systems per request"),
            );
        }
        let user = match user
            .filter(|u| !u.is_empty())
            .or_else(|| self.state().tokens.username())
        {
            Some(u) if check_user(&u) => u,
            Some(u) => {
                return Response::Error(
                    ErrorReply::new(ErrorKind::Usage, format!("invalid user name {u:?}"))
                        .with_hint(USER_RULE),
                );
            }
            None => return Response::Error(self.state().tokens.not_logged_in()),
        };
        let run = |system: String| {
            let user = user.clone();
            async move {
                let outcome = if check_system_id(&system) {
                    match self.registry.run(op, &user, &system).await {
                        Ok((state, cached)) => (Outcome::Ok(state), cached),
                        Err(e) => (Outcome::Err(e), false),
                    }
                } else {
                    let e =
                        ErrorReply::new(ErrorKind::Usage, format!("invalid system id {system:?}"))
                            .with_hint(SYSTEM_ID_RULE);
                    (Outcome::Err(e), false)
                };
                SystemOutcome {
                    system,
                    user,
                    outcome: outcome.0,
                    cached: outcome.1,
                }
            }
        };
        // Systems run concurrently; the upstream slots bound the upstream work.
        let mut pending: Vec<_> = systems.into_iter().map(|s| Box::pin(run(s))).collect();
        let outcomes = if pending.len() == 1 {
            vec![pending.remove(0).await]
        } else {
            join_all(pending).await
        };
        Response::Systems(outcomes)
    }

    fn settings(&self) -> AgentSettings {
        let c = &self.state().config;
        let path = |p: &std::path::Path| p.display().to_string();
        AgentSettings {
            base_url: c.base_url.clone(),
            tenant: c.tenant.clone(),
            username: c.username.clone(),
            config_file: c.config_file.as_deref().map(path),
            state_dir: path(&c.state_dir),
            export_token_file: c.export_token_file.as_deref().map(path),
        }
    }

    async fn ping(&self) -> Pong {
        let tapis = &self.state().tapis;
        let (tapis_latency_ms, tapis_error) = match tapis.healthcheck().await {
            Ok(took) => (
                Some(u64::try_from(took.as_millis()).unwrap_or(u64::MAX)),
                None,
            ),
            Err(e) => (None, Some(e.to_string())),
        };
        Pong {
            url: tapis.healthcheck_url(),
            tapis_latency_ms,
            tapis_error,
        }
    }

    fn status(&self) -> StatusInfo {
        let (systems, systems_total) = self.state().cache.snapshot();
        StatusInfo {
            agent_version: env!("CARGO_PKG_VERSION").to_owned(),
            pid: std::process::id(),
            uptime_secs: self.started.elapsed().as_secs(),
            base_url: self.state().config.base_url.clone(),
            login: self.state().tokens.login_state(),
            systems,
            systems_total,
            state: self.state_status(),
        }
    }

    fn state_status(&self) -> StateDirStatus {
        let info = self.state().locks.info();
        StateDirStatus {
            dir: self.state().config.state_dir.display().to_string(),
            filesystem: info.filesystem,
            lock_method: info.method.as_str().to_owned(),
            lock_reason: info.reason,
        }
    }
}

/// Polls all futures concurrently and returns their outputs in order.
async fn join_all<F: Future + Unpin>(futures: Vec<F>) -> Vec<F::Output> {
    let mut slots: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    let mut futures: Vec<Option<F>> = futures.into_iter().map(Some).collect();
    std::future::poll_fn(|cx| {
        let mut done = true;
        for (slot, fut) in slots.iter_mut().zip(futures.iter_mut()) {
            if let Some(f) = fut {
                match std::pin::Pin::new(f).poll(cx) {
                    std::task::Poll::Ready(v) => {
                        *slot = Some(v);
                        *fut = None;
                    }
                    std::task::Poll::Pending => done = false,
                }
            }
        }
        if done {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    slots.into_iter().flatten().collect()
}

fn error(kind: ErrorKind, message: impl Into<String>) -> Response {
    Response::Error(ErrorReply::new(kind, message))
}

/// The answer to a login.
fn answer(login: Result<LoggedIn, ErrorReply>) -> Response {
    login.map_or_else(Response::Error, logged_in)
}

fn logged_in(l: LoggedIn) -> Response {
    Response::LoggedIn {
        username: l.username,
        tenant: l.tenant,
        expires_at: l.expires_at,
        has_refresh_token: l.has_refresh_token,
        refresh_problem: l.refresh_problem,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn join_all_keeps_order() {
        let futs: Vec<_> = (0..5u64)
            .map(|i| {
                Box::pin(async move {
                    tokio::time::sleep(Duration::from_millis(10 * (5 - i))).await;
                    i
                })
            })
            .collect();
        assert_eq!(join_all(futs).await, vec![0, 1, 2, 3, 4]);
    }
}

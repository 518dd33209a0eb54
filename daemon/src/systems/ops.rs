//! Establish, check and revoke for one (user, system), as DESIGN.md specifies.
//!
//! Within an agent, the system's queue runs them one at a time. Across the
//! agents sharing a state directory, the (user, system) lock of that
//! directory does: an agent that has to ask Tapis takes it, looks at the
//! shared cache again (a peer may just have answered), and writes what it
//! learns to the cache before letting go.

use super::Ctx;
use crate::errors::{self, login_required};
use crate::store::lock::Guard;
use crate::tapis::TapisError;
use std::future::Future;
use tapis_agent_proto::{CredState, ErrorKind, ErrorReply, Secret, TokenGrant};
use tokio::sync::SemaphorePermit;

/// The answer for one system: a state and whether it came from the cache.
pub type OpResult = Result<(CredState, bool), ErrorReply>;

/// One operation's turn upstream: the (user, system) lock shared with peer
/// agents, a slot of the bounded upstream work and the token, swapped once
/// if Tapis refuses it.
struct Session<'a> {
    ctx: &'a Ctx,
    _peers: Option<Guard>,
    _slot: SemaphorePermit<'a>,
    token: TokenGrant,
    renewed: bool,
}

/// Takes the state directory's lock of (user, system), waiting for a peer
/// agent's operation at most the request deadline; past that, goes on
/// without (the cost is a second check, never a wrong answer).
async fn peers_lock(ctx: &Ctx, user: &str, system: &str) -> Option<Guard> {
    let name = format!("cred-{}", crate::cache::key_id(user, system));
    match ctx.locks.acquire(&name, ctx.config.request_deadline).await {
        Ok(guard) => Some(guard),
        Err(e) => {
            tracing::warn!(error = %e, "going on without the state directory's lock");
            None
        }
    }
}

impl<'a> Session<'a> {
    async fn start(ctx: &'a Ctx, peers: Option<Guard>) -> Result<Self, ErrorReply> {
        let slot = ctx
            .upstream
            .acquire()
            .await
            .map_err(|_| errors::internal("upstream slots"))?;
        Ok(Self {
            ctx,
            _peers: peers,
            _slot: slot,
            token: ctx.tokens.token_for_call().await?,
            renewed: false,
        })
    }

    /// Runs `call` with the token; a `TokenRejected` answer means the token
    /// is bad (never "credentials missing"): refresh once and try again.
    async fn run<T, F, Fut>(&mut self, call: F) -> Result<Result<T, TapisError>, ErrorReply>
    where
        F: Fn(Secret) -> Fut,
        Fut: Future<Output = Result<T, TapisError>>,
    {
        loop {
            match call(self.token.access_token.clone()).await {
                Err(TapisError::TokenRejected(why)) if !self.renewed => {
                    tracing::info!(reason = %why, "Tapis refused the token; refreshing");
                    self.renewed = true;
                    self.token = self.ctx.tokens.token_after_rejection(&self.token).await?;
                }
                Err(TapisError::TokenRejected(why)) => {
                    return Err(login_required(format!(
                        "Tapis refused the access token ({why})"
                    )));
                }
                other => return Ok(other),
            }
        }
    }
}

/// What establish and check learn first: the cache's answer or Tapis's
/// `present`, else the session and how the check failed.
enum Look<'a> {
    Present { cached: bool },
    CheckFailed(Session<'a>, TapisError),
}

async fn look<'a>(
    ctx: &'a Ctx,
    user: &str,
    system: &str,
    fresh: bool,
) -> Result<Look<'a>, ErrorReply> {
    let cached = || !fresh && ctx.cache.present_shared(user, system, ctx.config.cache_ttl);
    if cached() {
        return Ok(Look::Present { cached: true });
    }
    let peers = peers_lock(ctx, user, system).await;
    // A peer agent may have answered while we waited for the lock.
    if cached() {
        return Ok(Look::Present { cached: true });
    }
    let mut s = Session::start(ctx, peers).await?;
    match s
        .run(|t| async move { ctx.tapis.check(&t, system, user).await })
        .await?
    {
        Ok(()) => {
            ctx.cache.set_present(user, system);
            Ok(Look::Present { cached: false })
        }
        Err(e) => Ok(Look::CheckFailed(s, e)),
    }
}

/// Ensures credentials exist: cache, check, and create when missing.
pub async fn establish(ctx: &Ctx, user: &str, system: &str, fresh: bool) -> OpResult {
    let (mut s, failure) = match look(ctx, user, system, fresh).await? {
        Look::Present { cached } => return Ok((CredState::Present, cached)),
        Look::CheckFailed(s, e) => (s, e),
    };
    let replacing = match failure {
        TapisError::CredNotFound => false,
        TapisError::CredRejected(why) => {
            tracing::warn!(%why, "stored credentials are rejected; creating new ones");
            true
        }
        // Anything else is reported as it is: CredUnverified (an incomplete
        // credential, a kind Tapis cannot validate) says nothing about the
        // keys being bad, so they are never replaced on it.
        e => {
            ctx.cache.remove(user, system);
            return Err(errors::from_tapis(&format!("establish {system}"), &e));
        }
    };
    ctx.cache.remove(user, system);
    let method = s
        .run(|t| async move { ctx.tapis.default_authn_method(&t, system).await })
        .await?
        .map_err(|e| errors::from_tapis(&format!("look up system {system}"), &e))?;
    if method != "TMS_KEYS" {
        let shown = if method.is_empty() {
            "no default method"
        } else {
            &method
        };
        return Err(ErrorReply::new(
            ErrorKind::NotTmsKeys,
            format!("system uses {shown}; TMS keys cannot be created"),
        )
        .with_hint(format!(
            "credentials for {system} must be registered by hand (e.g. an SSH key pair); ask the system's owner"
        )));
    }
    let created = s
        .run(|t| async move { ctx.tapis.create_tms(&t, system, user).await })
        .await?;
    match created {
        Ok(()) => {}
        Err(e) if e.outcome_unknown() => {
            // The create may have gone through: look before doing anything else.
            tracing::warn!(error = %e, "create gave no clear answer; checking again");
            let again = s
                .run(|t| async move { ctx.tapis.check(&t, system, user).await })
                .await?;
            if again.is_err() {
                return Err(errors::from_tapis(
                    &format!("create credentials on {system}"),
                    &e,
                ));
            }
        }
        Err(e) => {
            return Err(errors::from_tapis(
                &format!("create credentials on {system}"),
                &e,
            ));
        }
    }
    ctx.cache.set_present(user, system);
    tracing::info!(
        "credentials {}",
        if replacing { "re-created" } else { "created" }
    );
    Ok((
        if replacing {
            CredState::Recreated
        } else {
            CredState::Created
        },
        false,
    ))
}

/// Reports the state without changing anything at Tapis.
pub async fn check(ctx: &Ctx, user: &str, system: &str, fresh: bool) -> OpResult {
    let failure = match look(ctx, user, system, fresh).await? {
        Look::Present { cached } => return Ok((CredState::Present, cached)),
        Look::CheckFailed(_, e) => e,
    };
    let state = match failure {
        TapisError::CredNotFound => CredState::Missing,
        TapisError::CredRejected(_) => CredState::Rejected,
        TapisError::CredConnFail(_) => CredState::HostUnreachable,
        e => return Err(errors::from_tapis(&format!("check {system}"), &e)),
    };
    ctx.cache.remove(user, system);
    Ok((state, false))
}

/// Removes credentials (idempotent at Tapis) and forgets the cache entry.
pub async fn revoke(ctx: &Ctx, user: &str, system: &str) -> OpResult {
    let peers = peers_lock(ctx, user, system).await;
    let mut s = Session::start(ctx, peers).await?;
    ctx.cache.remove(user, system);
    s.run(|t| async move { ctx.tapis.remove(&t, system, user).await })
        .await?
        .map_err(|e| errors::from_tapis(&format!("revoke {system}"), &e))?;
    ctx.cache.remove(user, system);
    Ok((CredState::Revoked, false))
}

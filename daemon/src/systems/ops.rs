//! Establish, check and revoke for one (user, system), as DESIGN.md specifies.

use super::Ctx;
use crate::errors::{self, login_required};
use crate::tapis::TapisError;
use std::future::Future;
use tapis_agent_proto::{CredState, ErrorKind, ErrorReply, Secret, TokenGrant};

/// The answer for one system: a state and whether it came from the cache.
pub type OpResult = Result<(CredState, bool), ErrorReply>;

/// Holds the token for one operation and swaps it once if Tapis refuses it.
struct Session<'a> {
    ctx: &'a Ctx,
    token: TokenGrant,
    renewed: bool,
}

impl<'a> Session<'a> {
    async fn start(ctx: &'a Ctx) -> Result<Self, ErrorReply> {
        Ok(Self {
            ctx,
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

/// Ensures credentials exist: cache, check, and create when missing.
pub async fn establish(ctx: &Ctx, user: &str, system: &str, fresh: bool) -> OpResult {
    if !fresh && ctx.cache.present_within(user, system, ctx.config.cache_ttl) {
        return Ok((CredState::Present, true));
    }
    let _slot = ctx.upstream.acquire().await;
    let mut s = Session::start(ctx).await?;
    let replacing = match s
        .run(|t| async move { ctx.tapis.check(&t, system, user).await })
        .await?
    {
        Ok(()) => {
            ctx.cache.set_present(user, system);
            return Ok((CredState::Present, false));
        }
        Err(TapisError::CredNotFound) => false,
        Err(TapisError::CredRejected(why)) => {
            tracing::warn!(%why, "stored credentials are rejected; creating new ones");
            true
        }
        Err(e) => {
            ctx.cache.remove(user, system);
            return Err(errors::from_tapis(&format!("check {system}"), &e));
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
    if !fresh && ctx.cache.present_within(user, system, ctx.config.cache_ttl) {
        return Ok((CredState::Present, true));
    }
    let _slot = ctx.upstream.acquire().await;
    let mut s = Session::start(ctx).await?;
    let state = match s
        .run(|t| async move { ctx.tapis.check(&t, system, user).await })
        .await?
    {
        Ok(()) => {
            ctx.cache.set_present(user, system);
            return Ok((CredState::Present, false));
        }
        Err(TapisError::CredNotFound) => CredState::Missing,
        Err(TapisError::CredRejected(_)) => CredState::Rejected,
        Err(TapisError::CredConnFail(_)) => CredState::HostUnreachable,
        Err(e) => return Err(errors::from_tapis(&format!("check {system}"), &e)),
    };
    ctx.cache.remove(user, system);
    Ok((state, false))
}

/// Removes credentials (idempotent at Tapis) and forgets the cache entry.
pub async fn revoke(ctx: &Ctx, user: &str, system: &str) -> OpResult {
    let _slot = ctx.upstream.acquire().await;
    let mut s = Session::start(ctx).await?;
    ctx.cache.remove(user, system);
    s.run(|t| async move { ctx.tapis.remove(&t, system, user).await })
        .await?
        .map_err(|e| errors::from_tapis(&format!("revoke {system}"), &e))?;
    ctx.cache.remove(user, system);
    Ok((CredState::Revoked, false))
}

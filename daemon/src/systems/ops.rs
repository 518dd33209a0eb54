//! Establish, check and revoke for one (user, system), as DESIGN.md specifies.
//!
//! Within an agent, the system's queue runs them one at a time. Across the
//! agents sharing a state directory, the (user, system) lock of that
//! directory does: an agent that has to ask Tapis takes it, looks at the
//! shared cache again (a peer may just have answered), and writes what it
//! learns to the cache before letting go.

use super::Ctx;
use crate::clock;
use crate::config::Config;
use crate::errors::{self, login_required};
use crate::store::lock::Guard;
use crate::tapis::{Backoff, TapisError};
use std::future::Future;
use std::time::Duration;
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

    /// Runs `call` with the token. A `TokenRejected` or `TokenRevoked`
    /// answer means the token is bad (never "credentials missing"): refresh
    /// once and try again. A freshly refreshed token refused again is a
    /// login problem when the service refuses it, and a failing token check
    /// when the proxy calls it revoked (the proxy answers the same for both).
    async fn run<T, F, Fut>(&mut self, call: F) -> Result<Result<T, TapisError>, ErrorReply>
    where
        F: Fn(Secret) -> Fut,
        Fut: Future<Output = Result<T, TapisError>>,
    {
        loop {
            match call(self.token.access_token.clone()).await {
                Err(TapisError::TokenRejected(why) | TapisError::TokenRevoked(why))
                    if !self.renewed =>
                {
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
    let _noted = ctx.progress.note(
        user,
        system,
        "Tapis is checking the credentials; it connects to the host",
    );
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
        e => return Err(kept(ctx, user, system, &format!("establish {system}"), &e)),
    };
    ctx.cache.remove(user, system);
    let noted = ctx.progress.note(user, system, "looking up the system");
    let method = s
        .run(|t| async move { ctx.tapis.default_authn_method(&t, system).await })
        .await?
        .map_err(|e| errors::from_tapis(&format!("look up system {system}"), &e))?;
    drop(noted);
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
    create(&mut s, user, system).await?;
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

/// Creates TMS keys. Right after a user's onboarding, Tapis cannot verify
/// new keys until the user's allocation has reached the host: it answers
/// 401 `SYSAPI_CRED_VALID_FAIL ... SYSLIB_CRED_VALID_FAIL` and stores
/// nothing (tapis-project/tapis-systems, CredentialResource.java,
/// `createUserCredential` then ApiUtils `checkCredValidationResult`).
/// DesignSafe's portal retries the creation for five minutes "to account for
/// allocation propagation" (DesignSafe-CI/portal,
/// onboarding/steps/system_access_v3.py); so does this, for `new_user_wait`.
async fn create(s: &mut Session<'_>, user: &str, system: &str) -> Result<(), ErrorReply> {
    let ctx = s.ctx;
    let what = format!("create credentials on {system}");
    let started = tokio::time::Instant::now();
    let mut tries = 0;
    loop {
        tries += 1;
        let noted = ctx.progress.note(
            user,
            system,
            "Tapis is creating TMS keys; it connects to the host to verify them",
        );
        let created = s
            .run(|t| async move { ctx.tapis.create_tms(&t, system, user).await })
            .await?;
        drop(noted);
        let e = match created {
            Ok(()) => return Ok(()),
            Err(e) if e.outcome_unknown() => {
                // The create may have gone through: look before doing anything else.
                tracing::warn!(error = %e, "create gave no clear answer; checking again");
                let _noted = ctx.progress.note(
                    user,
                    system,
                    "Tapis did not answer the creation; checking whether it went through",
                );
                let again = s
                    .run(|t| async move { ctx.tapis.check(&t, system, user).await })
                    .await?;
                return again.map_err(|_| errors::from_tapis(&what, &e));
            }
            Err(e @ TapisError::CredRejected(_)) => e,
            Err(e) => return Err(errors::from_tapis(&what, &e)),
        };
        let waited = started.elapsed();
        let pause = propagation_pause(&ctx.config, tries);
        if waited + pause > ctx.config.new_user_wait {
            let mut reply = errors::from_tapis(&what, &e);
            reply.message = format!(
                "{} (Tapis could not verify new keys in {tries} tries over {})",
                reply.message,
                clock::duration_words(waited.as_secs() as i64)
            );
            return Err(reply.with_hint(format!(
                "right after you get access to {system} (a new allocation or account), it can take \
                 several minutes to reach the system; try again later. If it persists, check your \
                 allocation on {system} with the system's support"
            )));
        }
        tracing::info!(error = %e, tries, pause_ms = pause.as_millis() as u64, "new keys cannot be verified yet; access may still be propagating");
        let _noted = ctx.progress.note(
            user,
            system,
            format!(
                "Tapis could not verify new keys yet ({tries} tries): a new user's access can take \
                 minutes to reach the host; trying again, for at most {} in all",
                clock::duration_words(ctx.config.new_user_wait.as_secs() as i64)
            ),
        );
        tokio::time::sleep(pause).await;
    }
}

/// The pause before creation try `tries + 1` while a new user's access
/// propagates: from a thirtieth of the whole wait, doubling, at most a fifth
/// of it (10 s to 60 s by default), with jitter.
fn propagation_pause(config: &Config, tries: u32) -> Duration {
    let wait = config.new_user_wait;
    Backoff {
        retries: u32::MAX,
        base: (wait / 30).max(Duration::from_millis(1)),
    }
    .delay(tries.saturating_sub(1))
    .min(wait / 5)
}

/// A failure of `what` that says nothing about the credentials: what was
/// last known of them stays cached, and the error says what that was.
fn kept(ctx: &Ctx, user: &str, system: &str, what: &str, e: &TapisError) -> ErrorReply {
    let mut reply = errors::from_tapis(what, e);
    if let Some(at) = ctx.cache.last_present(user, system) {
        reply.message = format!(
            "{}; last known: present, checked {} ago",
            reply.message,
            clock::duration_words(ctx.cache.age(at))
        );
    }
    reply
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
        // Says nothing about the keys: a cached `present` stays.
        TapisError::CredConnFail(_) => return Ok((CredState::HostUnreachable, false)),
        e => return Err(kept(ctx, user, system, &format!("check {system}"), &e)),
    };
    ctx.cache.remove(user, system);
    Ok((state, false))
}

/// Removes credentials (idempotent at Tapis) and forgets the cache entry.
pub async fn revoke(ctx: &Ctx, user: &str, system: &str) -> OpResult {
    let peers = peers_lock(ctx, user, system).await;
    let mut s = Session::start(ctx, peers).await?;
    ctx.cache.remove(user, system);
    let _noted = ctx
        .progress
        .note(user, system, "Tapis is removing the credentials");
    s.run(|t| async move { ctx.tapis.remove(&t, system, user).await })
        .await?
        .map_err(|e| errors::from_tapis(&format!("revoke {system}"), &e))?;
    ctx.cache.remove(user, system);
    Ok((CredState::Revoked, false))
}

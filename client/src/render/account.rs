//! Answers about the login itself: token, login, logout, export.

use super::{Rendered, choose};
use crate::exit::SUCCESS;
use crate::time;
use crate::ui::Ui;
use serde::Serialize;
use tapis_agent_proto::TokenGrant;

/// `token`: the access token and its expiry.
#[derive(Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub(super) struct Token<'a> {
    /// The JWT.
    access_token: &'a str,
    /// RFC 3339, UTC.
    expires_at: String,
    expires_at_unix: i64,
    username: &'a str,
    /// The Tapis the token is for (the agent's base URL).
    base_url: &'a str,
}

/// The access token: on stdout alone (it is what the caller asked for), or
/// in the JSON document with `base_url`, the Tapis it is for (unused by the
/// human form). This is the only output that carries a secret.
pub fn token(ui: Ui, grant: &TokenGrant, base_url: &str) -> Rendered {
    let body = Token {
        access_token: grant.access_token.expose(),
        expires_at: time::rfc3339(grant.expires_at),
        expires_at_unix: grant.expires_at,
        username: &grant.username,
        base_url,
    };
    choose(ui, "token", SUCCESS, body, || {
        let mut r = Rendered::new(SUCCESS);
        r.out(format!("{}\n", grant.access_token.expose()));
        r
    })
}

/// A login as the agent reports it.
#[derive(Debug, Clone, Copy)]
pub struct Login<'a> {
    /// Tapis username.
    pub username: &'a str,
    /// Tenant id.
    pub tenant: &'a str,
    /// Access-token expiry, Unix seconds.
    pub expires_at: i64,
    /// Whether the agent holds a refresh token.
    pub has_refresh_token: bool,
    /// Why the login cannot be refreshed, when it cannot.
    pub refresh_problem: Option<&'a str>,
}

/// `login`: the new login.
#[derive(Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub(super) struct LoggedIn<'a> {
    username: &'a str,
    tenant: &'a str,
    /// RFC 3339, UTC.
    expires_at: String,
    expires_at_unix: i64,
    has_refresh_token: bool,
    /// False when the agent cannot keep this login fresh: it ends when the
    /// token expires (a warning is printed on stderr too).
    refreshable: bool,
    /// Why the login cannot be refreshed, when it cannot.
    refresh_problem: Option<&'a str>,
}

/// A completed login. One that cannot be refreshed gets a warning on stderr
/// in every mode (and `refreshable: false` with the reason in JSON): such a
/// login ends when its token expires, and the user must know now.
pub fn logged_in(ui: Ui, login: &Login<'_>) -> Rendered {
    let l = *login;
    let body = LoggedIn {
        username: l.username,
        tenant: l.tenant,
        expires_at: time::rfc3339(l.expires_at),
        expires_at_unix: l.expires_at,
        has_refresh_token: l.has_refresh_token,
        refreshable: l.refresh_problem.is_none(),
        refresh_problem: l.refresh_problem,
    };
    let mut r = choose(ui, "login", SUCCESS, body, || {
        success_line(
            ui,
            format!(
                "logged in as {} ({}); token valid until {}; refresh: {}",
                l.username,
                l.tenant,
                time::human(l.expires_at),
                yes_no(l.refresh_problem.is_none())
            ),
        )
    });
    if let Some(problem) = l.refresh_problem {
        r.err(unrefreshable_warning(problem, l.expires_at));
    }
    r
}

/// The warning for a login that cannot be refreshed.
pub(super) fn unrefreshable_warning(problem: &str, expires_at: i64) -> String {
    format!(
        "tapis-cred: warning: this login cannot be refreshed: {problem}\n  \
         hint: it ends at {}; see tapis-cred doctor, then tapis-cred login again\n",
        time::human(expires_at)
    )
}

/// `logout`: the login is gone.
#[derive(Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub(super) struct LoggedOut {
    /// The token file the agent kept fresh (export_token_file), removed
    /// with the login; absent when there was none.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, schemars(with = "String"))]
    removed_token_file: Option<String>,
}

/// A completed logout.
pub fn logged_out(ui: Ui, removed_token_file: Option<&std::path::Path>) -> Rendered {
    let removed = removed_token_file.map(|p| p.display().to_string());
    let line = match &removed {
        Some(p) => format!("logged out; removed the token file {p}"),
        None => "logged out".into(),
    };
    let body = LoggedOut {
        removed_token_file: removed,
    };
    choose(ui, "logout", SUCCESS, body, || success_line(ui, line))
}

/// `export-token-file`: the file written.
#[derive(Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub(super) struct Exported<'a> {
    path: &'a str,
    /// RFC 3339, UTC.
    expires_at: String,
    expires_at_unix: i64,
}

/// A written token file.
pub fn exported(ui: Ui, path: &str, expires_at: i64) -> Rendered {
    let body = Exported {
        path,
        expires_at: time::rfc3339(expires_at),
        expires_at_unix: expires_at,
    };
    choose(ui, "export-token-file", SUCCESS, body, || {
        success_line(
            ui,
            format!("wrote {path} (valid until {})", time::human(expires_at)),
        )
    })
}

/// One line on stdout, unless `-q`.
fn success_line(ui: Ui, line: String) -> Rendered {
    let mut r = Rendered::new(SUCCESS);
    if !ui.quiet {
        r.out(line + "\n");
    }
    r
}

/// `yes` or `no`.
pub(super) fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{human, json, parse};
    use super::*;
    use serde_json::json;
    use tapis_agent_proto::Secret;

    const T: i64 = 1_795_456_800;

    #[test]
    fn token_alone_on_stdout() {
        let grant = TokenGrant {
            access_token: Secret::new("aaa.bbb.ccc"),
            expires_at: T,
            username: "testuser".into(),
        };
        let r = token(human(), &grant, "");
        assert_eq!(
            (r.stdout().as_str(), r.stderr().as_str()),
            ("aaa.bbb.ccc\n", "")
        );
        assert_eq!(
            parse(&token(json(), &grant, "https://designsafe.tapis.io")),
            json!({"command": "token", "ok": true, "exit_code": 0,
                   "access_token": "aaa.bbb.ccc", "expires_at": "2026-11-23T18:00:00Z",
                   "expires_at_unix": T, "username": "testuser",
                   "base_url": "https://designsafe.tapis.io"})
        );
    }

    fn login(refresh_problem: Option<&str>) -> Login<'_> {
        Login {
            username: "testuser",
            tenant: "designsafe",
            expires_at: T,
            has_refresh_token: refresh_problem.is_none(),
            refresh_problem,
        }
    }

    #[test]
    fn login_line_and_json() {
        let r = logged_in(human(), &login(None));
        assert_eq!(
            r.stdout(),
            "logged in as testuser (designsafe); token valid until 2026-11-23 18:00 UTC; refresh: yes\n"
        );
        assert_eq!(r.stderr(), "");
        assert_eq!(
            parse(&logged_in(json(), &login(None))),
            json!({"command": "login", "ok": true, "exit_code": 0,
                   "username": "testuser", "tenant": "designsafe",
                   "expires_at": "2026-11-23T18:00:00Z", "expires_at_unix": T,
                   "has_refresh_token": true, "refreshable": true, "refresh_problem": null})
        );
    }

    #[test]
    fn an_unrefreshable_login_is_loud_in_every_mode() {
        let text = "registering an OAuth client at Tapis failed: bad request: x";
        let why = Some(text);
        let r = logged_in(human(), &login(why));
        assert!(r.stdout().ends_with("refresh: no\n"), "{}", r.stdout());
        assert_eq!(
            r.stderr(),
            "tapis-cred: warning: this login cannot be refreshed: registering an OAuth client at \
             Tapis failed: bad request: x\n  hint: it ends at 2026-11-23 18:00 UTC; see tapis-cred \
             doctor, then tapis-cred login again\n"
        );
        let quiet = Ui {
            quiet: true,
            ..human()
        };
        assert!(
            logged_in(quiet, &login(why))
                .stderr()
                .contains("cannot be refreshed")
        );
        let j = logged_in(json(), &login(why));
        let doc = parse(&j);
        assert_eq!(doc["refreshable"], false);
        assert_eq!(doc["refresh_problem"], text);
        assert!(j.stderr().contains("cannot be refreshed"), "{}", j.stderr());
    }

    #[test]
    fn logout_and_export() {
        assert_eq!(logged_out(human(), None).stdout(), "logged out\n");
        assert_eq!(
            parse(&logged_out(json(), None)),
            json!({"command": "logout", "ok": true, "exit_code": 0})
        );
        let file = std::path::Path::new("/home/u/.tapis_tokens.json");
        assert_eq!(
            logged_out(human(), Some(file)).stdout(),
            "logged out; removed the token file /home/u/.tapis_tokens.json\n"
        );
        assert_eq!(
            parse(&logged_out(json(), Some(file)))["removed_token_file"],
            "/home/u/.tapis_tokens.json"
        );
        let quiet = Ui {
            quiet: true,
            ..human()
        };
        assert_eq!(logged_out(quiet, None).stdout(), "");
        assert_eq!(
            exported(human(), "/home/u/.tapis_tokens.json", T).stdout(),
            "wrote /home/u/.tapis_tokens.json (valid until 2026-11-23 18:00 UTC)\n"
        );
        assert_eq!(
            parse(&exported(json(), "/p", T)),
            json!({"command": "export-token-file", "ok": true, "exit_code": 0,
                   "path": "/p", "expires_at": "2026-11-23T18:00:00Z",
                   "expires_at_unix": T})
        );
    }
}

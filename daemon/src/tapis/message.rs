//! Tapis messages made fit to log, store and show: secrets redacted, the
//! identity boilerplate dropped, and a bounded length that keeps the message
//! keys and the nested `Message:` part.
//!
//! Tapis messages can carry secrets: the Authenticator answers an unknown
//! client with `Invalid client credentials: {client_id}, {client_key}.
//! session: {session}` (tapis-project/authenticator, service/controllers.py,
//! `TokensResource.post`), and a refused client registration quotes the SQL
//! statement's parameters, the client key among them. Every message the agent
//! takes from Tapis goes through [`tapis_message`] before anything else sees it.

/// What replaces a secret.
pub const REDACTED: &str = "[redacted]";

/// Longest message kept, in characters.
pub const MAX_CHARS: usize = 300;

/// Identity fields of the Java services' messages (`jwtTenant: T jwtUser: U
/// OboTenant: T OboUser: U`): the same in every message, and the user knows
/// them; and the service's own name for the call (`Operation:
/// checkUserCredential`), which the user never typed.
const IDENTITY_LABELS: [&str; 6] = [
    "jwtTenant:",
    "jwtUser:",
    "jwtUserId:",
    "OboTenant:",
    "OboUser:",
    "Operation:",
];

/// Labels after which a Java message quotes another message, whose key matters.
const NESTING_LABELS: [&str; 2] = ["Message:", "Error:"];

/// The first line of `raw`, redacted, without identity boilerplate, at most
/// [`MAX_CHARS`] long.
pub fn tapis_message(raw: &str) -> String {
    let redacted = redact(raw);
    let line = redacted.trim().lines().next().unwrap_or("").trim();
    let lean = drop_identity(line);
    if lean.is_empty() {
        return "(empty body)".into();
    }
    fit(&lean, MAX_CHARS)
}

/// Replaces everything in `text` that looks like a secret: the client key and
/// session the Authenticator echoes, values of fields named like secrets,
/// JWTs, `Basic` credentials and long random-looking words.
pub fn redact(text: &str) -> String {
    let text = redact_client_echo(text);
    let text = redact_named_values(&text);
    redact_words(&text)
}

/// `Invalid client credentials: ID, KEY. session: ...` keeps only the id.
fn redact_client_echo(text: &str) -> String {
    const ECHO: &str = "client credentials: ";
    let Some(start) = text.find(ECHO) else {
        return text.to_owned();
    };
    let after = start + ECHO.len();
    let rest = &text[after..];
    let id = rest.split(", ").next().unwrap_or("");
    let id = if id.len() < rest.len() { id } else { "" };
    let shown_id = if id.chars().any(char::is_whitespace) {
        REDACTED
    } else {
        id
    };
    format!("{}{ECHO}{shown_id}, {REDACTED}", &text[..start])
}

/// `'client_key': 'v'`, `"password": "v"`, `token=v`: the value goes.
fn redact_named_values(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some((value_start, quote)) = next_named_value(rest) {
        out.push_str(&rest[..value_start]);
        out.push_str(REDACTED);
        let value = &rest[value_start..];
        let len = match quote {
            Some(q) => value.find(q).unwrap_or(value.len()),
            None => value
                .find(|c: char| c.is_whitespace() || c == '&' || c == ',')
                .unwrap_or(value.len()),
        };
        rest = &value[len..];
    }
    out.push_str(rest);
    out
}

/// The next `NAME<separator>` whose name says secret: where its value starts,
/// and the quote that ends it.
fn next_named_value(text: &str) -> Option<(usize, Option<char>)> {
    const SECRET_NAMES: [&str; 5] = ["key", "secret", "password", "token", "authorization"];
    const SEPARATORS: [(&str, Option<char>); 5] = [
        ("': '", Some('\'')),
        ("\": \"", Some('"')),
        ("\":\"", Some('"')),
        ("='", Some('\'')),
        ("=", None),
    ];
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if !is_name_byte(bytes[i]) {
            i += 1;
            continue;
        }
        let end = i + bytes[i..].iter().take_while(|b| is_name_byte(**b)).count();
        let name = text[i..end].to_ascii_lowercase();
        if SECRET_NAMES.iter().any(|s| name.ends_with(s)) {
            for (sep, quote) in SEPARATORS {
                if text[end..].starts_with(sep) {
                    return Some((end + sep.len(), quote));
                }
            }
        }
        i = end;
    }
    None
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// JWTs, `Basic` credentials and long random-looking runs of letters and
/// digits (client keys, device codes).
fn redact_words(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut word = String::new();
    let mut after_basic = false;
    for c in text.chars().chain(std::iter::once(' ')) {
        if is_token_char(c) {
            word.push(c);
            continue;
        }
        if !word.is_empty() {
            let secret = after_basic && word.len() >= 8;
            after_basic = word == "Basic";
            if secret || looks_like_jwt(&word) {
                out.push_str(REDACTED);
            } else {
                out.push_str(&redact_random_runs(&word));
            }
            word.clear();
        }
        out.push(c);
    }
    out.pop();
    out
}

fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '+' | '/' | '=')
}

/// Three dot-separated base64url parts, the first a JSON object (`eyJ`).
fn looks_like_jwt(word: &str) -> bool {
    let parts: Vec<&str> = word.trim_end_matches('.').split('.').collect();
    parts.len() == 3
        && parts[0].starts_with("eyJ")
        && parts[1].len() >= 4
        && parts.iter().all(|p| {
            p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'=')
        })
}

/// Runs of 20 or more letters and digits with both in them read as keys.
fn redact_random_runs(word: &str) -> String {
    let mut out = String::with_capacity(word.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        let random = run.len() >= 20
            && run.bytes().any(|b| b.is_ascii_digit())
            && run.bytes().any(|b| b.is_ascii_alphabetic());
        out.push_str(if random { REDACTED } else { run });
        run.clear();
    };
    for c in word.chars() {
        if c.is_ascii_alphanumeric() {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}

/// Drops `jwtTenant: T jwtUser: U OboTenant: T OboUser: U` and `Operation: O`
/// wherever they appear.
fn drop_identity(text: &str) -> String {
    let mut words = text.split_whitespace();
    let mut kept: Vec<&str> = Vec::new();
    while let Some(w) = words.next() {
        if IDENTITY_LABELS.contains(&w) {
            words.next();
        } else {
            kept.push(w);
        }
    }
    kept.join(" ")
}

/// True for a Tapis message key such as `SYSLIB_CRED_VALID_FAIL`.
pub fn is_key(word: &str) -> bool {
    word.contains('_')
        && word.len() >= 4
        && word
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
}

/// The key a message starts with.
pub fn leading_key(message: &str) -> Option<&str> {
    message.split_whitespace().next().filter(|w| is_key(w))
}

/// Where the first nested message starts: after the first `Message:` or
/// `Error:` that is followed by a key. Returns (label start, nested start).
fn nested_at(message: &str) -> Option<(usize, usize)> {
    NESTING_LABELS
        .iter()
        .filter_map(|label| {
            message.match_indices(label).find_map(|(at, _)| {
                let inner = message[at + label.len()..].trim_start();
                let start = message.len() - inner.len();
                leading_key(inner).map(|_| (at, start))
            })
        })
        .min()
}

/// The message nested in `message` (`SYSAPI_CRED_VALID_FAIL ... Message: <this>`).
pub fn nested(message: &str) -> Option<&str> {
    nested_at(message).map(|(_, start)| &message[start..])
}

/// The key of the nested message, e.g. `SYSLIB_CRED_VALID_FAIL`.
pub fn nested_key(message: &str) -> Option<&str> {
    nested(message).and_then(leading_key)
}

/// Shortens to `max` characters. A nested message keeps most of the room: the
/// outer part is cut first, its key always stays.
fn fit(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let Some((label_at, inner_at)) = nested_at(text) else {
        return cut(text, max);
    };
    let outer = text[..label_at].trim_end();
    let label = text[label_at..inner_at].trim_end();
    let inner = &text[inner_at..];
    let outer_room = (max / 3).max(outer.split_whitespace().next().map_or(0, str::len) + 1);
    let outer = cut(outer, outer_room);
    let used = outer.chars().count() + label.chars().count() + 2;
    let inner = fit(inner, max.saturating_sub(used).max(40));
    format!("{outer} {label} {inner}")
}

/// The first `max - 1` characters and `…`.
fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_authenticator_echo_keeps_the_id_only() {
        let m = "Invalid client credentials: tapis-agent-host-1a2b3c4d, 7f3a9c0e1b2d4f6a8c0e. \
                 session: <SecureCookieSession {'access_token': 'x'}>";
        assert_eq!(
            redact(m),
            "Invalid client credentials: tapis-agent-host-1a2b3c4d, [redacted]"
        );
        // Short keys, keys with spaces: whatever follows the id goes.
        assert_eq!(
            redact("Invalid client credentials: c1, k y. session: <SecureCookieSession {}>"),
            "Invalid client credentials: c1, [redacted]"
        );
        assert_eq!(
            redact("Invalid client credentials: None, None. session: x"),
            "Invalid client credentials: None, [redacted]"
        );
    }

    #[test]
    fn secrets_in_fields_tokens_and_random_words_go() {
        let sql = "[parameters: {'client_id': 'c', 'client_key': 'abc', 'display_name': 'd'}]";
        assert_eq!(
            redact(sql),
            "[parameters: {'client_id': 'c', 'client_key': '[redacted]', 'display_name': 'd'}]"
        );
        assert_eq!(
            redact(r#"{"refresh_token": "r.s.t", "x": 1} password=hunter2&y"#),
            r#"{"refresh_token": "[redacted]", "x": 1} password=[redacted]&y"#
        );
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJleHAiOjF9.c2lnbmF0dXJl";
        assert_eq!(redact(&format!("token {jwt}.")), "token [redacted]");
        assert_eq!(
            redact("Authorization: Basic dXNlcjpwYXNzd29yZA=="),
            "Authorization: Basic [redacted]"
        );
        let hex = "0123456789abcdef0123456789abcdef0123456789abcdef";
        assert_eq!(redact(&format!("key {hex} end")), "key [redacted] end");
        // Ordinary words, ids, keys and host names stay.
        let plain = "SYSLIB_CRED_VALID_FAIL System: designsafe.storage.default Host: \
                     c123-456.stampede3.tacc.utexas.edu jti 1b4e28ba-2fa1-11d2";
        assert_eq!(redact(plain), plain);
    }

    #[test]
    fn boilerplate_goes_and_keys_stay_when_shortened() {
        let m = "SYSAPI_CRED_VALID_FAIL Credential validation failed. jwtTenant: designsafe \
                 jwtUser: testuser OboTenant: designsafe OboUser: testuser System: ls6 User: testuser \
                 AuthnMethod: TMS_KEYS Message: SYSLIB_CRED_NOT_SUPPORTED Credential validation failed. \
                 Not supported for system type. jwtTenant: designsafe jwtUserId: testuser \
                 OboTenant: designsafe OboUser: testuser System: ls6 SystemType: LINUX \
                 EffectiveUser: testuser AuthnMethod: TMS_KEYS";
        let shown = tapis_message(m);
        assert!(
            !shown.contains("jwtTenant") && !shown.contains("OboUser"),
            "{shown}"
        );
        assert!(shown.starts_with("SYSAPI_CRED_VALID_FAIL"), "{shown}");
        assert!(
            shown.contains("Message: SYSLIB_CRED_NOT_SUPPORTED Credential validation failed."),
            "{shown}"
        );
        assert_eq!(nested_key(m), Some("SYSLIB_CRED_NOT_SUPPORTED"));
        assert_eq!(
            tapis_message(
                "SYSAPI_NOSYSTEM No system found. System: nosuch Operation: checkUserCredential"
            ),
            "SYSAPI_NOSYSTEM No system found. System: nosuch"
        );
        assert_eq!(
            tapis_message(
                "SYSAPI_CHECK_ERROR x Operation: checkCred Error: SYSLIB_UNAUTH Permission denied."
            ),
            "SYSAPI_CHECK_ERROR x Error: SYSLIB_UNAUTH Permission denied."
        );

        // Too long even so: the outer part is cut, the inner key survives.
        let long = format!(
            "SYSAPI_CHECK_ERROR {} Error: SYSLIB_UNAUTH Permission denied. {}",
            "x ".repeat(300),
            "y ".repeat(300)
        );
        let shown = tapis_message(&long);
        assert!(shown.chars().count() <= MAX_CHARS, "{}", shown.len());
        assert!(shown.starts_with("SYSAPI_CHECK_ERROR "), "{shown}");
        assert!(
            shown.contains("Error: SYSLIB_UNAUTH Permission denied."),
            "{shown}"
        );
        assert_eq!(nested_key(&long), Some("SYSLIB_UNAUTH"));
        assert_eq!(tapis_message(" \n"), "(empty body)");
        assert_eq!(tapis_message("first\nsecond"), "first");
    }
}

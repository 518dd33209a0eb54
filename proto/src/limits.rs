//! The sizes both sides hold each other to, in one place: what the client
//! accepts on its command line must give answers the agent can send in one
//! frame ([`MAX_FRAME_LEN`]; [`fit`](crate::fit) makes them fit).

/// Largest accepted frame body, in bytes.
pub const MAX_FRAME_LEN: usize = 64 * 1024;

/// Most systems in one establish, check or revoke request.
pub const MAX_SYSTEMS_PER_REQUEST: usize = 256;

/// Longest system id (Tapis allows 80 characters).
pub const MAX_SYSTEM_ID_LEN: usize = 80;

/// Longest Tapis user name.
pub const MAX_USER_LEN: usize = 128;

/// What a system id may be, said the way [`check_system_id`] checks it.
pub const SYSTEM_ID_RULE: &str = "system ids have 1 to 80 letters, digits, '.', '_' or '-'";

/// What a user name may be, said the way [`check_user`] checks it. A user
/// name becomes a URL path segment in the agent, so nothing that could
/// change the path gets through; `@` is allowed (e-mail-like names), in
/// system ids it is not.
pub const USER_RULE: &str = "user names have 1 to 128 letters, digits, '.', '_', '-' or '@'";

// The rules name the limits by number; keep them in step.
const _: () = assert!(MAX_SYSTEM_ID_LEN == 80 && MAX_USER_LEN == 128);

/// Whether `id` is a system id both programs accept (see [`SYSTEM_ID_RULE`]).
pub fn check_system_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_SYSTEM_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Whether `user` is a user name both programs accept (see [`USER_RULE`]).
pub fn check_user(user: &str) -> bool {
    !user.is_empty()
        && user.len() <= MAX_USER_LEN
        && user
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'@'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_user_names() {
        for ok in [
            "designsafe.storage.default",
            "ls6",
            "a_b-c",
            &"x".repeat(80),
        ] {
            assert!(check_system_id(ok), "{ok:?}");
        }
        for bad in ["", "a/b", "a b", "me@ls6", "é", &"x".repeat(81)] {
            assert!(!check_system_id(bad), "{bad:?}");
        }
        for ok in ["testuser", "first.last@example.org", &"x".repeat(128)] {
            assert!(check_user(ok), "{ok:?}");
        }
        for bad in [
            "",
            "a b",
            "../x",
            "a?b",
            "a\nb",
            "a/b",
            "a%2f",
            &"x".repeat(129),
        ] {
            assert!(!check_user(bad), "{bad:?}");
        }
    }
}

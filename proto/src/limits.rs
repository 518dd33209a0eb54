//! The sizes both sides hold each other to, in one place: what the client
//! accepts on its command line must give answers the agent can send in one
//! frame ([`MAX_FRAME_LEN`](crate::MAX_FRAME_LEN)).

use crate::codec::MAX_FRAME_LEN;
use crate::message::{Outcome, SystemOutcome};

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

/// Bytes of one per-system outcome other than its texts, at most: the id
/// and user with their lengths, the state or error kind, the flags.
const OUTCOME_FIXED: usize = MAX_SYSTEM_ID_LEN + MAX_USER_LEN + 24;

/// Room in a frame for everything else of an answer.
const ANSWER_FIXED: usize = 64;

// However long the ids, the answer to a full request fits in one frame once
// its messages are shortened ([`fit_outcomes`]).
const _: () = assert!(MAX_SYSTEMS_PER_REQUEST * OUTCOME_FIXED + ANSWER_FIXED < MAX_FRAME_LEN);

/// Shortens the error messages of `outcomes` (and drops their hints) just
/// enough for the answer to fit in one frame; `encoded` is the answer's
/// encoded length now. Each message keeps an equal share of the room left,
/// cut at a character boundary and marked with `…`. Answers that fit are
/// left alone.
pub fn fit_outcomes(outcomes: &mut [SystemOutcome], encoded: usize) {
    if encoded <= MAX_FRAME_LEN {
        return;
    }
    let fixed: usize = outcomes
        .iter()
        .map(|o| o.system.len() + o.user.len() + 24)
        .sum::<usize>()
        + ANSWER_FIXED;
    let errors = outcomes
        .iter()
        .filter(|o| matches!(o.outcome, Outcome::Err(_)))
        .count()
        .max(1);
    let share = MAX_FRAME_LEN.saturating_sub(fixed) / errors;
    for o in outcomes {
        if let Outcome::Err(e) = &mut o.outcome {
            e.hint = None;
            if e.message.len() > share {
                let keep = share.saturating_sub('…'.len_utf8());
                let mut cut = keep.min(e.message.len());
                while !e.message.is_char_boundary(cut) {
                    cut -= 1;
                }
                e.message.truncate(cut);
                e.message.push('…');
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CredState, ErrorKind, ErrorReply, Response, encode_frame, encoded_len};

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

    #[test]
    fn a_full_answer_of_long_ids_and_long_messages_fits_once_fitted() {
        let mut outcomes: Vec<SystemOutcome> = (0..MAX_SYSTEMS_PER_REQUEST)
            .map(|i| SystemOutcome {
                system: format!("{i:0>width$}", width = MAX_SYSTEM_ID_LEN),
                user: "u".repeat(MAX_USER_LEN),
                outcome: if i % 7 == 0 {
                    Outcome::Ok(CredState::Present)
                } else {
                    Outcome::Err(
                        ErrorReply::new(
                            ErrorKind::SystemNotFound,
                            format!("check {i}: {}", "é".repeat(400)),
                        )
                        .with_hint("h".repeat(200)),
                    )
                },
                cached: false,
            })
            .collect();
        let len = |o: &[SystemOutcome]| encoded_len(&Response::Systems(o.to_vec()));
        let before = len(&outcomes);
        assert!(before > MAX_FRAME_LEN);
        fit_outcomes(&mut outcomes, before);
        assert!(len(&outcomes) <= MAX_FRAME_LEN, "{}", len(&outcomes));
        let frame = encode_frame(&Response::Systems(outcomes.clone())).expect("fits in a frame");
        let back: Response = crate::decode(&frame[crate::FRAME_HEADER_LEN..]).expect("decodes");
        assert_eq!(back, Response::Systems(outcomes.clone()));
        let Outcome::Err(e) = &outcomes[1].outcome else {
            panic!()
        };
        assert!(e.message.starts_with("check 1: é") && e.message.ends_with('…'));
        // A small answer is left as it is.
        let mut small = outcomes[..2].to_vec();
        small[1].outcome =
            Outcome::Err(ErrorReply::new(ErrorKind::SystemNotFound, "x").with_hint("y"));
        let copy = small.clone();
        fit_outcomes(&mut small, 100);
        assert_eq!(small, copy);
    }
}

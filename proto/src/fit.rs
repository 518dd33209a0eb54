//! Answers that fit in one frame: however long the ids and the messages, the
//! answer to a request of [`MAX_SYSTEMS_PER_REQUEST`] systems is sent whole,
//! with its error messages shortened if need be.

use crate::limits::{MAX_FRAME_LEN, MAX_SYSTEM_ID_LEN, MAX_SYSTEMS_PER_REQUEST, MAX_USER_LEN};
use crate::message::{Outcome, SystemOutcome};

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

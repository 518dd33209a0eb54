//! Client-side checks of system ids and user names, so a typo is a usage
//! error (exit 2) before anything reaches the agent or Tapis.

use crate::exit::{self, Failure};

#[cfg(test)]
use tapis_agent_proto::limits::MAX_SYSTEM_ID_LEN as MAX_SYSTEM_LEN;
use tapis_agent_proto::limits::{
    MAX_SYSTEMS_PER_REQUEST as MAX_SYSTEMS, SYSTEM_ID_RULE, USER_RULE, check_system_id, check_user,
};

/// Checks each id, then drops repeats keeping the first occurrence, so the
/// answer lines come back in the order the user typed. Spaces around an id
/// (`"stampede3 "`, pasted) are dropped: no id has them.
pub fn systems(command: &str, ids: &[String]) -> Result<Vec<String>, Failure> {
    let ids: Vec<&str> = ids.iter().map(|id| id.trim()).collect();
    for id in &ids {
        if !check_system_id(id) {
            return Err(exit::usage(format!(
                "{command}: invalid system id {id:?}: {SYSTEM_ID_RULE}"
            )));
        }
    }
    let mut unique: Vec<String> = Vec::with_capacity(ids.len());
    for id in ids {
        if !unique.iter().any(|u| u == id) {
            unique.push(id.to_owned());
        }
    }
    if unique.len() > MAX_SYSTEMS {
        return Err(exit::usage(format!(
            "{command}: {} systems given, at most {MAX_SYSTEMS} per call",
            unique.len()
        )));
    }
    Ok(unique)
}

/// Checks a Tapis user name with the agent's rule: it becomes a URL path
/// segment there, so nothing that could change the path gets through.
pub fn user(command: &str, user: &str) -> Result<(), Failure> {
    if !check_user(user) {
        return Err(exit::usage(format!(
            "{command}: invalid user name {user:?}: {USER_RULE}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn accepts_tapis_ids_and_dedupes_in_order() {
        let got = systems(
            "establish",
            &ids(&["ls6", "stampede3", "ls6", "corral.pki", "a_b-c"]),
        )
        .unwrap();
        assert_eq!(got, ids(&["ls6", "stampede3", "corral.pki", "a_b-c"]));
        let pasted = systems("establish", &ids(&["stampede3 ", "\tls6\n", "stampede3"])).unwrap();
        assert_eq!(pasted, ids(&["stampede3", "ls6"]));
    }

    #[test]
    fn rejects_bad_ids_as_usage_errors() {
        let long = "x".repeat(MAX_SYSTEM_LEN + 1);
        for bad in ["", " ", "a b", "a/b", "ls6;rm", "é", long.as_str()] {
            let e = systems("check", &ids(&["ok", bad])).unwrap_err();
            assert_eq!(exit::code(&e), 2, "{bad:?}");
            assert!(
                e.message.starts_with("check: invalid system id"),
                "{}",
                e.message
            );
        }
        assert!(systems("check", &ids(&["x".repeat(MAX_SYSTEM_LEN).as_str()])).is_ok());
    }

    #[test]
    fn limits_the_number_of_systems_after_dedupe() {
        let many: Vec<String> = (0..=MAX_SYSTEMS).map(|i| format!("s{i}")).collect();
        let e = systems("establish", &many).unwrap_err();
        assert_eq!(exit::code(&e), 2);
        let repeated = vec!["s".to_string(); MAX_SYSTEMS * 2];
        assert_eq!(systems("establish", &repeated).unwrap(), ids(&["s"]));
    }

    #[test]
    fn user_names() {
        assert!(user("establish", "testuser").is_ok());
        assert!(user("establish", "first.last@example.org").is_ok());
        for bad in ["", "a b", "../x", "a?b", "a\nb", "a/b", "a%2f"] {
            assert_eq!(
                exit::code(&user("establish", bad).unwrap_err()),
                2,
                "{bad:?}"
            );
        }
    }
}

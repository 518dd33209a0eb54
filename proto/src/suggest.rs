//! "Did you mean": how both programs match a mistyped name (a subcommand, a
//! config key, a system id) against the names they know.

/// The names close to `typed`, closest first: one that differs only in case
/// comes first, then those within a few edits (a third of the typed length,
/// at least one; swapping two neighbours counts as one edit). Ties keep the
/// order of `names`.
pub fn closest<'a>(typed: &str, names: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    let typed = typed.to_lowercase();
    let limit = (typed.chars().count() / 3).max(1);
    let mut near: Vec<(usize, &str)> = names
        .into_iter()
        .map(|name| (distance(&typed, &name.to_lowercase()), name))
        .filter(|(d, _)| *d <= limit)
        .collect();
    near.sort_by_key(|(d, _)| *d);
    near.into_iter().map(|(_, name)| name).collect()
}

/// Edits (insert, delete, replace, swap two neighbours) from `a` to `b`: the
/// optimal string alignment distance.
pub fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // Three rows: two back for the swap, one back, and the one being filled.
    let mut before: Vec<usize> = vec![0; b.len() + 1];
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut row: Vec<usize> = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        row[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut d = (prev[j - 1] + cost).min(prev[j] + 1).min(row[j - 1] + 1);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d = d.min(before[j - 2] + 1);
            }
            row[j] = d;
        }
        std::mem::swap(&mut before, &mut prev);
        std::mem::swap(&mut prev, &mut row);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    const COMMANDS: [&str; 7] = [
        "establish",
        "revoke",
        "check",
        "token",
        "login",
        "logout",
        "status",
    ];

    #[test]
    fn edits() {
        assert_eq!(distance("", ""), 0);
        assert_eq!(distance("abc", ""), 3);
        assert_eq!(distance("kitten", "sitting"), 3);
        assert_eq!(distance("stauts", "status"), 1);
        assert_eq!(distance("estabish", "establish"), 1);
    }

    #[test]
    fn closest_first_and_only_the_close_ones() {
        assert_eq!(closest("estabish", COMMANDS), ["establish"]);
        assert_eq!(closest("stauts", COMMANDS), ["status"]);
        assert_eq!(closest("chek", COMMANDS), ["check"]);
        assert_eq!(closest("logn", COMMANDS), ["login"]);
        assert!(closest("frobnicate", COMMANDS).is_empty());
        let systems = ["ls6", "stampede3", "frontera"];
        assert_eq!(closest("Stampede3", systems), ["stampede3"]);
        assert_eq!(closest("stampede", systems), ["stampede3"]);
        assert_eq!(closest("LS6", systems), ["ls6"]);
        assert_eq!(closest("loggout", ["login", "logout"]), ["logout"]);
    }
}

//! The targets and the report: aligned markdown tables (printed and written
//! to a file) and JSON.

use super::Results;
use super::stats::{Summary, fmt_bytes, fmt_us};
use serde::Serialize;
use std::fmt::Write as _;

/// Marks the generated part of BENCHMARKS.md.
pub const BEGIN_MARK: &str = "<!-- bench:begin -->";
/// Ends it.
pub const END_MARK: &str = "<!-- bench:end -->";

const MIB: f64 = 1024.0 * 1024.0;

/// One target of the issue and how the run did.
#[derive(Debug, Clone, Serialize)]
pub struct Target {
    /// Figure number.
    pub figure: u8,
    /// What is measured.
    pub what: String,
    /// The target.
    pub target: String,
    /// The measured value.
    pub measured: String,
    /// Met, missed, or not measured in this run.
    pub met: Option<bool>,
}

fn target(figure: u8, what: &str, goal: &str, measured: String, met: Option<bool>) -> Target {
    Target {
        figure,
        what: what.into(),
        target: goal.into(),
        measured,
        met,
    }
}

/// The bounds the agent holds. The bench reports each against its run;
/// BENCHMARKS.md explains them.
pub mod bounds {
    /// `tapis-cred establish` (3 systems cached) / the do-nothing process of
    /// the same linkage, at most.
    pub const ESTABLISH_VS_NOOP: f64 = 1.6;
    /// The seed path / `tapis-cred establish`, at least.
    pub const SEED_VS_ESTABLISH: f64 = 300.0;
    /// Median of a cached IPC round trip on an open connection, µs, at most.
    pub const IPC_CACHED_P50_US: f64 = 50.0;
    /// Cached establishes answered per second with 64 clients, at least.
    pub const REQ_PER_SEC_64: f64 = 50_000.0;
    /// Agent RSS idle (logged in, 3 systems cached), MiB, at most.
    pub const IDLE_RSS_MIB: f64 = 8.0;
    /// Systems cached for the next bound.
    pub const MANY_SYSTEMS: usize = 10_000;
    /// Agent RSS after establishing [`MANY_SYSTEMS`], MiB, at most.
    pub const MANY_SYSTEMS_RSS_MIB: f64 = 24.0;
}

/// Checks the bounds ([`bounds`]) against `r`.
pub fn targets(r: &Results) -> Vec<Target> {
    use bounds::*;
    let p = &r.process;
    let ratio = p.for_targets().establish_vs_noop;
    let mut t = vec![target(
        1,
        &format!(
            "`tapis-cred establish` (3 systems, warm) vs do-nothing binary, both {}",
            p.targets_use
        ),
        &format!("≤ {ESTABLISH_VS_NOOP}×"),
        format!("{ratio:.2}×"),
        Some(ratio <= ESTABLISH_VS_NOOP),
    )];
    t.push(target(
        1,
        "seed path vs `tapis-cred establish`",
        &format!("≥ {SEED_VS_ESTABLISH:.0}× faster"),
        p.seed_vs_establish
            .map_or_else(|| "not measured".into(), |x| format!("{x:.0}× faster")),
        p.seed_vs_establish.map(|x| x >= SEED_VS_ESTABLISH),
    ));
    for (name, s) in [
        (
            "IPC cached establish (open connection)",
            &r.ipc.cached_establish,
        ),
        ("IPC token (open connection)", &r.ipc.token),
    ] {
        t.push(target(
            2,
            name,
            &format!("p50 ≤ {IPC_CACHED_P50_US:.0} µs"),
            format!("p50 {}, p99 {}", fmt_us(s.median), fmt_us(s.p99)),
            Some(s.median <= IPC_CACHED_P50_US),
        ));
    }
    if let Some(l) = r.throughput.iter().find(|l| l.clients == 64) {
        t.push(target(
            3,
            "cached establish, 64 clients",
            &format!("≥ {REQ_PER_SEC_64:.0} req/s"),
            format!(
                "{:.0} req/s{}",
                l.req_per_sec,
                if l.errors.is_empty() {
                    ""
                } else {
                    " (with errors)"
                }
            ),
            Some(l.req_per_sec >= REQ_PER_SEC_64 && l.errors.is_empty()),
        ));
    }
    let c = &r.coalescing;
    for (what, b) in [
        (
            format!(
                "{} concurrent cold establishes of 1 system",
                c.one_system.clients_per_system
            ),
            &c.one_system,
        ),
        (
            format!(
                "{} systems × {} clients",
                c.many_systems.systems, c.many_systems.clients_per_system
            ),
            &c.many_systems,
        ),
    ] {
        t.push(target(
            4,
            &what,
            "1/1/1 per system, all answered",
            format!("{} per system", b.per_system()),
            Some(b.exact()),
        ));
    }
    let m = &r.memory;
    t.push(target(
        5,
        "agent RSS idle",
        &format!("≤ {IDLE_RSS_MIB} MiB"),
        fmt_bytes(m.idle.rss),
        Some(m.idle.rss as f64 <= IDLE_RSS_MIB * MIB),
    ));
    t.push(target(
        5,
        &format!("agent RSS with {} systems cached", m.cached_systems),
        &format!("≤ {MANY_SYSTEMS_RSS_MIB} MiB at {MANY_SYSTEMS}"),
        fmt_bytes(m.cached.rss),
        (m.cached_systems >= MANY_SYSTEMS)
            .then_some(m.cached.rss as f64 <= MANY_SYSTEMS_RSS_MIB * MIB),
    ));
    t
}

/// A markdown table with columns padded for reading in a terminal.
#[derive(Debug, Default)]
struct Table {
    head: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    fn new(head: &[&str]) -> Self {
        Table {
            head: head.iter().map(|s| s.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    fn summary_row(&mut self, name: &str, s: &Summary) {
        self.row(vec![
            name.into(),
            s.runs.to_string(),
            fmt_us(s.median),
            fmt_us(s.p90),
            fmt_us(s.p99),
            fmt_us(s.min),
            fmt_us(s.max),
        ]);
    }

    fn render(&self, out: &mut String) {
        let cols = self.head.len();
        let mut width = vec![3; cols];
        for r in std::iter::once(&self.head).chain(&self.rows) {
            for (w, c) in width.iter_mut().zip(r) {
                *w = (*w).max(c.chars().count());
            }
        }
        let line = |out: &mut String, cells: &[String]| {
            out.push('|');
            for (c, w) in cells.iter().zip(&width) {
                let pad = w - c.chars().count();
                let _ = write!(out, " {c}{} |", " ".repeat(pad));
            }
            out.push('\n');
        };
        line(out, &self.head);
        let rule: Vec<String> = width.iter().map(|w| "-".repeat(*w)).collect();
        line(out, &rule);
        for r in &self.rows {
            line(out, r);
        }
        out.push('\n');
    }
}

const STATS_HEAD: [&str; 7] = ["measurement", "runs", "median", "p90", "p99", "min", "max"];

/// The report as markdown: the part of BENCHMARKS.md between the marks.
pub fn markdown(r: &Results) -> String {
    let mut o = String::new();
    let m = &r.machine;
    let _ = writeln!(o, "Produced by `{}` (mode `{}`).\n", r.command, r.plan.mode);
    let mut t = Table::new(&["machine", ""]);
    for (k, v) in [
        ("CPU", format!("{} × {}", m.cores, m.cpu_model)),
        ("kernel", m.kernel.clone()),
        ("memory", format!("{} MiB", m.mem_total_mib)),
        (
            "load average (1/5/15 min)",
            format!("start {}, end {}", m.load_start, m.load_end),
        ),
        ("rustc", m.rustc.clone()),
        ("profile", m.profile.clone()),
        ("git revision", m.git_rev.clone()),
        ("started", m.started_at.clone()),
        ("duration", format!("{:.0} s", r.total_secs)),
    ] {
        t.row(vec![k.into(), v]);
    }
    t.render(&mut o);

    o.push_str("### Targets\n\n");
    let mut t = Table::new(&["fig.", "measurement", "target", "measured", "met"]);
    for x in &r.targets {
        t.row(vec![
            x.figure.to_string(),
            x.what.clone(),
            x.target.clone(),
            x.measured.clone(),
            match x.met {
                Some(true) => "yes".into(),
                Some(false) => "**no**".into(),
                None => "n/a".into(),
            },
        ]);
    }
    t.render(&mut o);

    let p = &r.process;
    o.push_str("### 1. Client process wall time (spawn to exit)\n\n");
    let mut t = Table::new(&STATS_HEAD);
    let mut ratios = Vec::new();
    for (linkage, l) in [
        ("dynamic", Some(&p.dynamic)),
        ("static", p.static_.as_ref()),
    ] {
        let Some(l) = l else { continue };
        t.summary_row(
            &format!("do-nothing Rust binary (`noop`), {linkage}"),
            &l.noop,
        );
        t.summary_row(
            &format!("`tapis-cred establish stampede3 ls6 frontera`, {linkage}"),
            &l.establish,
        );
        t.summary_row(&format!("`tapis-cred token`, {linkage}"), &l.token);
        ratios.push(format!(
            "{linkage}: establish / noop = {:.2}×, token / noop = {:.2}×",
            l.establish_vs_noop, l.token_vs_noop
        ));
    }
    if let Some(s) = &p.seed {
        t.summary_row("seed: python3 + tapipy `establish_tms_credentials` ×3", s);
    }
    t.render(&mut o);
    let _ = writeln!(
        o,
        "Ratios of medians, each binary against the do-nothing binary of its own linkage: {}{}. \
         The targets use the {} pair.",
        ratios.join("; "),
        p.seed_vs_establish
            .map(|x| format!("; seed / establish ({}) = {x:.0}×", p.targets_use))
            .unwrap_or_default(),
        p.targets_use
    );
    if p.static_.is_none() {
        o.push_str("Static builds not measured (not built: see the bench's output).\n");
    }
    let _ = writeln!(
        o,
        "Upstream calls during all `tapis-cred` runs: {}.",
        p.agent_upstream_calls
    );
    match (&p.seed_skipped, &p.tapipy_version) {
        (Some(why), _) => {
            let _ = writeln!(o, "Seed path not measured: {why}.");
        }
        (None, Some(v)) => {
            let calls: Vec<String> = p
                .seed_calls_per_run
                .iter()
                .map(|(k, n)| format!("{k} {n}"))
                .collect();
            let _ = writeln!(
                o,
                "Seed path: tapipy {v}, warm token file; upstream calls per run: {}.",
                calls.join(", ")
            );
        }
        (None, None) => {}
    }
    o.push('\n');

    o.push_str("### 2. IPC round trip (blocking client in the bench process)\n\n");
    let mut t = Table::new(&STATS_HEAD);
    t.summary_row("hello, first frame on a new connection", &r.ipc.hello);
    t.summary_row("connect + hello", &r.ipc.connect_hello);
    t.summary_row(
        "cached establish, 1 system (open connection)",
        &r.ipc.cached_establish,
    );
    t.summary_row("token (open connection)", &r.ipc.token);
    t.summary_row(
        "floor: the establish frame echoed by a bare thread (socket pair)",
        &r.ipc.echo_floor,
    );
    t.render(&mut o);

    o.push_str("### 3. Throughput: cached establish, closed loop\n\n");
    let mut t = Table::new(&[
        "clients", "answered", "seconds", "req/s", "p50", "p90", "p99", "max", "errors",
    ]);
    for l in &r.throughput {
        t.row(vec![
            l.clients.to_string(),
            l.requests.to_string(),
            format!("{:.2}", l.seconds),
            format!("{:.0}", l.req_per_sec),
            fmt_us(l.latency.median),
            fmt_us(l.latency.p90),
            fmt_us(l.latency.p99),
            fmt_us(l.latency.max),
            if l.errors.is_empty() {
                "0".into()
            } else {
                l.errors
                    .iter()
                    .map(|(k, v)| format!("{k} {v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            },
        ]);
    }
    t.render(&mut o);

    o.push_str("### 4. Coalescing: concurrent cold establishes → upstream calls\n\n");
    let mut t = Table::new(&[
        "burst",
        "check",
        "getSystem",
        "create",
        "per system",
        "answers",
        "wall",
    ]);
    for b in [&r.coalescing.one_system, &r.coalescing.many_systems] {
        let answers: Vec<String> = b.answers.iter().map(|(k, v)| format!("{k} {v}")).collect();
        t.row(vec![
            format!("{} system(s) × {} clients", b.systems, b.clients_per_system),
            b.check.to_string(),
            b.get_system.to_string(),
            b.create.to_string(),
            b.per_system(),
            answers.join(", "),
            format!("{:.1} ms", b.wall_ms),
        ]);
    }
    t.render(&mut o);

    let mem = &r.memory;
    o.push_str("### 5. Agent memory (separate process, /proc/PID/status)\n\n");
    let mut t = Table::new(&["state", "RSS", "of which anonymous"]);
    let both = |m: &super::Memory| vec![fmt_bytes(m.rss), fmt_bytes(m.anon)];
    let row = |t: &mut Table, what: String, m: &super::Memory| {
        t.row(std::iter::once(what).chain(both(m)).collect());
    };
    row(&mut t, "started, not logged in".into(), &mem.started);
    row(
        &mut t,
        "idle: logged in, 3 systems cached".into(),
        &mem.idle,
    );
    t.row(vec![
        format!(
            "peak (VmHWM) during the {}-client run{}",
            mem.peak_level,
            if mem.peak_reset {
                ""
            } else {
                " (peak since start)"
            }
        ),
        fmt_bytes(mem.peak_clients),
        String::new(),
    ]);
    row(
        &mut t,
        format!(
            "after establishing {} systems (in {:.1} s)",
            mem.cached_systems, mem.fill_secs
        ),
        &mem.cached,
    );
    row(
        &mut t,
        format!(
            "restarted on that state: {} systems cached, no per-system tasks",
            mem.cached_systems
        ),
        &mem.restarted,
    );
    t.render(&mut o);
    o.push_str(
        "The rest of RSS is mapped files: the agent binary and libc, clean pages the kernel can drop and reload.\n\n",
    );

    let c = &r.cold;
    o.push_str("### 6. Cold path: establish of a missing credential\n\n");
    let mut t = Table::new(&STATS_HEAD);
    t.summary_row("through the agent (`establish --fresh`)", &c.agent);
    t.summary_row(
        "direct: check 401 + getSystem + create (reqwest)",
        &c.direct,
    );
    t.summary_row("added by the agent (paired difference)", &c.added);
    t.render(&mut o);
    let _ = writeln!(
        o,
        "Upstream calls per agent run: {:.2}.\n",
        c.agent_calls_per_run
    );

    o.push_str("### 7. Binary sizes (release profile: `strip = true`, thin LTO)\n\n");
    let mut t = Table::new(&["binary", "bytes", "size", "stripped"]);
    for s in &r.sizes {
        t.row(vec![
            format!("`{}`", s.name),
            s.bytes.to_string(),
            fmt_bytes(s.bytes),
            if s.stripped { "yes" } else { "no" }.into(),
        ]);
    }
    t.render(&mut o);
    let _ = writeln!(
        o,
        "Agent config during the run:\n\n```toml\n{}```",
        r.agent_config
    );
    o
}

/// Replaces the text between [`BEGIN_MARK`] and [`END_MARK`] in `doc`.
pub fn splice(doc: &str, generated: &str) -> Option<String> {
    splice_between(doc, BEGIN_MARK, END_MARK, generated)
}

/// Replaces the text between `begin` and `end` in `doc`.
pub fn splice_between(doc: &str, begin: &str, end: &str, generated: &str) -> Option<String> {
    let start = doc.find(begin)? + begin.len();
    let end = start + doc[start..].find(end)?;
    Some(format!(
        "{}\n{}\n{}",
        &doc[..start],
        generated.trim_end(),
        &doc[end..]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splices_between_marks() {
        let doc = format!("intro\n{BEGIN_MARK}\nold\n{END_MARK}\nafter\n");
        let new = splice(&doc, "new table\n").unwrap();
        assert_eq!(
            new,
            format!("intro\n{BEGIN_MARK}\nnew table\n{END_MARK}\nafter\n")
        );
        assert!(splice("no marks", "x").is_none());
    }
}

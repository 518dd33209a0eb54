//! `bench`: measures tapis-agent against the seed path and the physical
//! limits, and writes the tables of BENCHMARKS.md.

use anyhow::Context as _;
use clap::{Parser, ValueEnum};
use std::path::PathBuf;
use tapis_agent_tests::bench::{self, Options, Plan, bins::Bins, report, seed::PythonSource};

/// Benchmark tapis-agent against the Python seed path and the machine's limits.
///
/// Starts a fake Tapis in this process and the release `tapis-agent` as a
/// separate process on a temp-dir socket, then measures: client process wall
/// time (against a do-nothing binary and python3 + tapipy), IPC round trips,
/// throughput at 1/8/64/256 clients, coalescing of concurrent cold
/// establishes, agent memory, cold-path overhead and binary sizes. Prints the
/// tables and writes them as markdown and JSON.
///
/// `shared` is another figure: many agents on one state directory (token
/// grants per lifetime for 1, 5 and 20 agents, with and without refresh-token
/// rotation) and a job array.
///
/// Example:
///   cargo run --release -p tapis-agent-tests --bin bench -- all --update BENCHMARKS.md
///   cargo run --release -p tapis-agent-tests --bin bench -- shared --update BENCHMARKS.md
#[derive(Debug, Parser)]
#[command(name = "bench", verbatim_doc_comment)]
struct Args {
    /// all: the full run behind BENCHMARKS.md (a few minutes);
    /// quick: every figure with fewer runs (under a minute);
    /// shared: many agents on one state directory (6 soaks of --secs each)
    #[arg(value_enum, default_value_t = Mode::Quick)]
    mode: Mode,
    /// Directory for bench-MODE.md and bench-MODE.json [default: TARGET/bench]
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Do not build tapis-agent, tapis-cred and noop first
    #[arg(long)]
    no_build: bool,
    /// Measure the binaries in this directory (e.g. a profiling build)
    /// instead of those next to this program; implies --no-build
    #[arg(long, value_name = "DIR")]
    bin_dir: Option<PathBuf>,
    /// Python that can import tapipy [default: a venv in TARGET/bench-venv,
    /// created by `all` with pip when missing]
    #[arg(long, value_name = "PATH")]
    python: Option<PathBuf>,
    /// Skip the seed path (python3 + tapipy)
    #[arg(long, conflicts_with = "python")]
    no_seed: bool,
    /// Also replace the generated section (between the bench marks) of this
    /// file, e.g. BENCHMARKS.md
    #[arg(long, value_name = "PATH")]
    update: Option<PathBuf>,
    /// shared: seconds per soak
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    secs: u64,
    /// shared: tasks of the job array
    #[arg(long, value_name = "N", default_value_t = 200)]
    tasks: usize,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Mode {
    All,
    Quick,
    Shared,
}

/// Marks of the shared figure's generated section.
const SHARED_MARKS: (&str, &str) = ("<!-- bench:shared:begin -->", "<!-- bench:shared:end -->");

/// The command line that produced a report of `mode`.
fn command_line(mode: &str) -> String {
    let profile = if cfg!(debug_assertions) {
        ""
    } else {
        "--release "
    };
    let rest: String = std::env::args()
        .skip(1)
        .filter(|a| a != mode)
        .map(|a| format!(" {a}"))
        .collect();
    format!("cargo run {profile}-p tapis-agent-tests --bin bench -- {mode}{rest}")
}

/// `bench shared`: figure 8.
fn shared(args: &Args, target: &std::path::Path) -> anyhow::Result<()> {
    let results = bench::shared::run(args.secs, args.tasks, command_line("shared"))?;
    let md = bench::shared::markdown(&results);
    println!("{md}");
    let out = args.out.clone().unwrap_or_else(|| target.join("bench"));
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    std::fs::write(out.join("bench-shared.md"), &md)?;
    std::fs::write(
        out.join("bench-shared.json"),
        serde_json::to_string_pretty(&results)?,
    )?;
    if let Some(doc_path) = &args.update {
        let doc = std::fs::read_to_string(doc_path)
            .with_context(|| format!("reading {}", doc_path.display()))?;
        let (begin, end) = SHARED_MARKS;
        let updated = report::splice_between(&doc, begin, end, &md)
            .with_context(|| format!("{} has no {begin} … {end} section", doc_path.display()))?;
        std::fs::write(doc_path, updated)?;
        eprintln!("bench: updated {}", doc_path.display());
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let here = Bins::beside_current_exe()?;
    let bins = match &args.bin_dir {
        Some(dir) => Bins::in_dir(dir.clone()),
        None => here.clone(),
    };
    if cfg!(debug_assertions) {
        eprintln!("bench: debug build: the figures are not representative (use --release)");
    }
    if !args.no_build && args.bin_dir.is_none() {
        eprintln!("bench: building tapis-agent, tapis-cred and noop");
        bins.build()?;
        eprintln!("bench: building the static tapis-cred and noop");
        if let Err(e) = bins.build_static() {
            eprintln!("bench: no static builds, measuring the dynamic ones only: {e:#}");
            let _ = std::fs::remove_dir_all(bins.dir.join("static"));
        }
    }
    let target = here
        .dir
        .parent()
        .context("profile dir without a parent")?
        .to_path_buf();
    let (plan, mode) = match args.mode {
        Mode::All => (Plan::all(), "all"),
        Mode::Quick => (Plan::quick(), "quick"),
        Mode::Shared => return shared(&args, &target),
    };
    let python = if args.no_seed {
        PythonSource::Off
    } else if let Some(p) = &args.python {
        PythonSource::Given(p.clone())
    } else {
        PythonSource::Venv {
            dir: target.join("bench-venv"),
            install: matches!(args.mode, Mode::All),
        }
    };
    let command = command_line(mode);
    let results = bench::run(&Options {
        plan,
        bins,
        python,
        command,
    })?;

    let md = report::markdown(&results);
    println!("{md}");
    let out = args.out.unwrap_or_else(|| target.join("bench"));
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let md_path = out.join(format!("bench-{mode}.md"));
    let json_path = out.join(format!("bench-{mode}.json"));
    std::fs::write(&md_path, &md)?;
    std::fs::write(&json_path, serde_json::to_string_pretty(&results)?)?;
    eprintln!(
        "bench: wrote {} and {}",
        md_path.display(),
        json_path.display()
    );
    if let Some(doc_path) = &args.update {
        let doc = std::fs::read_to_string(doc_path)
            .with_context(|| format!("reading {}", doc_path.display()))?;
        let updated = report::splice(&doc, &md).with_context(|| {
            format!(
                "{} has no {} … {} section",
                doc_path.display(),
                report::BEGIN_MARK,
                report::END_MARK
            )
        })?;
        std::fs::write(doc_path, updated)?;
        eprintln!("bench: updated {}", doc_path.display());
    }
    Ok(())
}

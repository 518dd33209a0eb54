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
/// Example:
///   cargo run --release -p tapis-agent-tests --bin bench -- all --update BENCHMARKS.md
#[derive(Debug, Parser)]
#[command(name = "bench", verbatim_doc_comment)]
struct Args {
    /// all: the full run behind BENCHMARKS.md (a few minutes);
    /// quick: every figure with fewer runs (under a minute)
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
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Mode {
    All,
    Quick,
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
    }
    let target = here
        .dir
        .parent()
        .context("profile dir without a parent")?
        .to_path_buf();
    let (plan, mode) = match args.mode {
        Mode::All => (Plan::all(), "all"),
        Mode::Quick => (Plan::quick(), "quick"),
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
    let extra: Vec<String> = std::env::args().skip(2).collect();
    let profile = if cfg!(debug_assertions) {
        ""
    } else {
        "--release "
    };
    let command = format!(
        "cargo run {profile}-p tapis-agent-tests --bin bench -- {mode}{}",
        extra.iter().map(|a| format!(" {a}")).collect::<String>()
    );
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

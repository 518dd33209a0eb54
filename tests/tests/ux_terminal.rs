//! What a person at a terminal sees: the spinner on slow answers, colour only
//! on a terminal and never with NO_COLOR. The client runs under `script`
//! (util-linux), which gives it a pseudo-terminal; without `script` the test
//! says so and passes.

use std::path::Path;
use std::process::Command;
use std::time::Duration;
use tapis_agent_tests::fake::{Fault, FaultKind};
use tapis_agent_tests::harness::{TestAgent, bin_path};

/// Runs `tapis-cred --socket SOCKET ARGS` on a pseudo-terminal; returns what
/// the terminal showed (stdout and stderr together) and the exit code.
fn on_terminal(socket: &Path, args: &[&str], env: &[(&str, &str)]) -> Option<(String, i32)> {
    let quote = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
    let mut line = vec![
        quote(&bin_path("tapis-cred").display().to_string()),
        "--socket".into(),
        quote(&socket.display().to_string()),
    ];
    line.extend(args.iter().map(|a| quote(a)));
    let out = Command::new("script")
        .args(["-qec", &line.join(" "), "/dev/null"])
        .env("TERM", "xterm")
        .env_remove("NO_COLOR")
        .envs(env.iter().copied())
        .stdin(std::process::Stdio::null())
        .output()
        .ok()?;
    Some((
        String::from_utf8_lossy(&out.stdout).into_owned(),
        out.status.code().unwrap_or(-1),
    ))
}

fn have_script() -> bool {
    Command::new("script")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.expect("join")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spinner_and_colour_only_on_a_terminal() {
    if !have_script() {
        eprintln!("ux_terminal: SKIPPED: `script` (util-linux) is not installed");
        return;
    }
    let agent = TestAgent::start().await;
    agent.login().await;
    let socket = agent.socket.clone();
    let slow = || {
        Fault::new(
            "checkUserCredential",
            FaultKind::Delay(Duration::from_millis(900)),
        )
    };

    // A slow establish shows the spinner, then wipes it before the answer.
    agent.fake.inject(slow());
    let s = socket.clone();
    let (screen, code) = blocking(move || on_terminal(&s, &["establish", "stampede3"], &[]))
        .await
        .expect("script runs");
    assert_eq!(code, 0, "{screen}");
    assert!(screen.contains("establishing 1 system…"), "{screen:?}");
    let wiped = screen.rfind("\r\x1b[2K").expect("spinner line wiped");
    let answer = screen.find("stampede3: ").expect("answer shown");
    assert!(wiped < answer, "wiped before the answer: {screen:?}");

    // A quick answer (from the cache) shows no spinner; neither does --json.
    let s = socket.clone();
    let (screen, _) = blocking(move || on_terminal(&s, &["establish", "stampede3"], &[]))
        .await
        .expect("script runs");
    assert!(!screen.contains('⠋'), "{screen:?}");
    agent.fake.inject(slow());
    let s = socket.clone();
    let (screen, _) =
        blocking(move || on_terminal(&s, &["check", "--fresh", "--json", "stampede3"], &[]))
            .await
            .expect("script runs");
    assert!(!screen.contains("checking"), "{screen:?}");
    assert!(screen.trim_start().starts_with('{'), "{screen:?}");

    // Colour on a terminal, none with NO_COLOR.
    let s = socket.clone();
    let (screen, _) = blocking(move || on_terminal(&s, &["doctor"], &[]))
        .await
        .expect("script runs");
    assert!(screen.contains("\x1b[32m✓\x1b[0m"), "{screen:?}");
    let s = socket.clone();
    let (screen, _) = blocking(move || on_terminal(&s, &["doctor"], &[("NO_COLOR", "1")]))
        .await
        .expect("script runs");
    assert!(screen.contains("✓ agent"), "{screen:?}");
    assert!(!screen.contains("\x1b[3"), "{screen:?}");
    agent.shutdown().await;
}

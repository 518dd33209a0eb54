//! What a person at a terminal sees: the spinner on slow answers, colour only
//! on a terminal and never with NO_COLOR. The client runs under `script`
//! (util-linux), which gives it a pseudo-terminal; without `script` the test
//! says so and passes.

use std::path::Path;
use std::process::Command;
use std::time::Duration;
use tapis_agent_tests::fake::{Fault, FaultKind};
use tapis_agent_tests::harness::{PASSWORD, TestAgent, USER, bin_path};

/// Runs `tapis-cred --socket SOCKET ARGS` on a pseudo-terminal; returns what
/// the terminal showed (stdout and stderr together) and the exit code.
fn on_terminal(socket: &Path, args: &[&str], env: &[(&str, &str)]) -> Option<(String, i32)> {
    typing(socket, args, env, None)
}

/// [`on_terminal`], with `keys` typed at the terminal (lines, as a person
/// would answer prompts).
fn typing(
    socket: &Path,
    args: &[&str],
    env: &[(&str, &str)],
    keys: Option<&str>,
) -> Option<(String, i32)> {
    let quote = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
    let mut line = vec![
        quote(&bin_path("tapis-cred").display().to_string()),
        "--socket".into(),
        quote(&socket.display().to_string()),
    ];
    line.extend(args.iter().map(|a| quote(a)));
    let mut out = Command::new("script")
        .args(["-qec", &line.join(" "), "/dev/null"])
        .env("TERM", "xterm")
        .env_remove("NO_COLOR")
        .envs(env.iter().copied())
        .stdin(if keys.is_some() {
            std::process::Stdio::piped()
        } else {
            std::process::Stdio::null()
        })
        .stdout(std::process::Stdio::piped())
        .spawn()
        .ok()?;
    if let (Some(keys), Some(mut stdin)) = (keys, out.stdin.take()) {
        use std::io::Write;
        // One line at a time, each after its prompt had time to appear: the
        // terminal discards what is typed while a prompt turns echo off.
        for line in keys.split_inclusive('\n') {
            std::thread::sleep(Duration::from_millis(300));
            // A program that stopped asking closed the terminal: the rest goes unread.
            if stdin
                .write_all(line.as_bytes())
                .and_then(|()| stdin.flush())
                .is_err()
            {
                break;
            }
        }
    }
    let out = out.wait_with_output().ok()?;
    Some((
        String::from_utf8_lossy(&out.stdout).into_owned(),
        out.status.code().unwrap_or(-1),
    ))
}

/// `script` (util-linux), which gives the client a terminal; a test fails
/// without it, unless told to skip (`tapis_agent_tests::needs::tool`).
fn have_script() -> bool {
    tapis_agent_tests::needs::tool("script").is_some()
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.expect("join")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spinner_and_colour_only_on_a_terminal() {
    if !have_script() {
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
    assert!(screen.contains("establishing stampede3…"), "{screen:?}");
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mistyped_password_is_asked_again_up_to_three_times() {
    if !have_script() {
        return;
    }
    let agent = TestAgent::start().await;
    agent.login().await;
    let socket = agent.socket.clone();
    let login = ["login", "--username", USER];

    // Two typos, then the right password: logged in, after three prompts.
    let s = socket.clone();
    let keys = format!("typo1\ntypo2\n{PASSWORD}\n");
    let (screen, code) = blocking(move || typing(&s, &login, &[], Some(&keys)))
        .await
        .expect("script runs");
    assert_eq!(code, 0, "{screen}");
    assert_eq!(screen.matches("Tapis password for").count(), 3, "{screen}");
    assert_eq!(screen.matches("try again").count(), 2, "{screen}");

    // Three wrong: exit 10 after the third, and the login from before stays.
    let s = socket.clone();
    let (screen, code) = blocking(move || typing(&s, &login, &[], Some("a\nb\nc\nd\n")))
        .await
        .expect("script runs");
    assert_eq!(code, 10, "{screen}");
    assert_eq!(screen.matches("Tapis password for").count(), 3, "{screen}");
    assert!(
        screen.contains(&format!("your previous login as {USER} is still active")),
        "{screen}"
    );
    assert!(!screen.contains("run: tapis-cred login"), "{screen}");
    let s = socket.clone();
    let (screen, code) = blocking(move || on_terminal(&s, &["token"], &[]))
        .await
        .expect("script runs");
    assert_eq!(code, 0, "{screen}");
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_tapis_is_shown_with_how_long_it_has_taken() {
    if !have_script() {
        return;
    }
    let agent = TestAgent::start().await;
    agent.login().await;
    // Long enough for the second the line waits before it counts.
    let slow =
        |operation: &str| Fault::new(operation, FaultKind::Delay(Duration::from_millis(1400)));
    agent.fake.inject(slow("checkUserCredential"));
    agent.fake.inject(slow("healthCheck"));
    let s = agent.socket.clone();
    let establish = blocking(move || on_terminal(&s, &["establish", "stampede3"], &[]));
    let s = agent.socket.clone();
    let doctor = blocking(move || on_terminal(&s, &["doctor"], &[]));
    let (establish, doctor) = tokio::join!(establish, doctor);
    let (screen, code) = establish.expect("script runs");
    assert_eq!(code, 0, "{screen}");
    // What the agent says it waits for, with how long the client has waited.
    assert!(
        screen.contains(
            "stampede3: Tapis is checking the credentials; it connects to the host (1 s)"
        ),
        "{screen:?}"
    );
    let (doctor, _) = doctor.expect("script runs");
    assert!(
        doctor.contains("doctor: checking Tapis: waiting for Tapis (1 s)"),
        "{doctor:?}"
    );
    agent.shutdown().await;
}

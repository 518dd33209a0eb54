//! Test harness: an in-process agent on a temp socket against an in-process
//! fake Tapis, a small async protocol client, and helpers to run the real
//! binaries. Everything waits on readiness (a socket that answers), never on
//! fixed sleeps.

use crate::fake::{FakeConfig, FakeControl, FakeTapis};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;
use tapis_agent::Config;
use tapis_agent::clock::TestClock;
use tapis_agent_proto::{
    AsyncConnection, CredState, LoginMethod, Outcome, Request, Response, Secret, SystemOutcome,
};
use tempfile::TempDir;
use tokio::net::UnixStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The fixture user.
pub const USER: &str = "testuser";
/// The fixture password.
pub const PASSWORD: &str = "testpass";
/// How long any single wait in the harness may take.
pub const WAIT: Duration = Duration::from_secs(20);

/// A running agent (in-process) and the fake it talks to.
pub struct TestAgent {
    /// The fake Tapis.
    pub fake: FakeControl,
    fake_server: Option<FakeTapis>,
    /// Temp directory holding socket and state.
    pub dir: TempDir,
    /// The agent's socket.
    pub socket: PathBuf,
    /// The agent's config (state dir etc.).
    pub config: Config,
    /// The time of the agent and the fake: a test ages tokens by moving it
    /// ahead (`a.clock.advance(..)`), which wakes the agent's refresher.
    pub clock: TestClock,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), tapis_agent::RunError>>>,
}

impl std::fmt::Debug for TestAgent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestAgent")
            .field("socket", &self.socket)
            .finish()
    }
}

/// Whatever was started under the agent's temp dir (an agent `tapis-cred`
/// autostarted there) stops with it.
impl Drop for TestAgent {
    fn drop(&mut self) {
        crate::procs::stop_under(self.dir.path());
    }
}

/// Agent settings suited to tests: quick retries and deadlines.
pub fn test_config(base_url: &str, state_dir: &Path) -> Config {
    let mut c = Config::new(base_url, state_dir);
    c.retry_base = Duration::from_millis(20);
    c.http_timeout = Duration::from_secs(5);
    c.connect_timeout = Duration::from_secs(2);
    c.request_deadline = Duration::from_secs(15);
    // Tests of a new user's access propagation set their own.
    c.new_user_wait = Duration::ZERO;
    c.shutdown_grace = Duration::from_secs(5);
    c
}

impl TestAgent {
    /// Starts a default fake and an agent against it (not logged in).
    pub async fn start() -> Self {
        Self::start_with(FakeConfig::default(), |_| {}).await
    }

    /// Starts a fake with `fake_config` and an agent whose config `tweak` adjusts.
    pub async fn start_with(fake_config: FakeConfig, tweak: impl FnOnce(&mut Config)) -> Self {
        let clock = TestClock::new();
        let fake_config = FakeConfig {
            clock: clock.clock(),
            ..fake_config
        };
        let fake = FakeTapis::start(fake_config)
            .await
            .expect("start fake Tapis");
        let control = fake.control();
        let dir = tempfile::Builder::new()
            .prefix("ta")
            .tempdir_in("/tmp")
            .expect("temp dir");
        let mut config = test_config(&control.base_url(), &dir.path().join("state"));
        config.clock = clock.clock();
        tweak(&mut config);
        let mut agent = Self {
            fake: control,
            fake_server: Some(fake),
            socket: dir.path().join("run/agent.sock"),
            dir,
            config,
            clock,
            stop: None,
            task: None,
        };
        agent.launch().await;
        agent
    }

    /// Starts the agent (again) on the same socket and state.
    pub async fn launch(&mut self) {
        let listener = tapis_agent::listener::bind(&self.socket).expect("bind agent socket");
        let (tx, rx) = oneshot::channel::<()>();
        let config = self.config.clone();
        self.task = Some(tokio::spawn(async move {
            tapis_agent::run(listener, config, async {
                let _ = rx.await;
            })
            .await
        }));
        self.stop = Some(tx);
        wait_for_socket(&self.socket).await;
    }

    /// Stops the agent gracefully and waits for it.
    pub async fn stop_agent(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let result = tokio::time::timeout(WAIT, task)
                .await
                .expect("agent stops in time")
                .expect("agent task");
            result.expect("agent exits cleanly");
        }
    }

    /// Stops the agent then the fake.
    pub async fn shutdown(mut self) {
        self.stop_agent().await;
        if let Some(fake) = self.fake_server.take() {
            fake.shutdown().await;
        }
    }

    /// A fresh connection that has done the hello exchange.
    pub async fn client(&self) -> AgentClient {
        AgentClient::connect(&self.socket).await
    }

    /// One request on a fresh connection.
    pub async fn request(&self, req: Request) -> Response {
        self.client().await.call(req).await
    }

    /// Logs in as the fixture user.
    pub async fn login(&self) {
        let resp = self
            .request(Request::Login(LoginMethod::Password {
                username: USER.into(),
                password: Secret::new(PASSWORD),
            }))
            .await;
        assert!(
            matches!(resp, Response::LoggedIn { .. }),
            "login failed: {resp:?}"
        );
    }

    /// Logs in with `access_token`, imported from a token file (0600) in
    /// the test directory, and returns the answer.
    pub async fn import_token(&self, access_token: &str) -> Response {
        use std::os::unix::fs::PermissionsExt;
        let path = self.dir.path().join("import.json");
        let text = serde_json::json!({ "access_token": access_token }).to_string();
        std::fs::write(&path, text).expect("write the token file");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        self.request(Request::Login(LoginMethod::ImportTokenFile {
            path: path.display().to_string(),
        }))
        .await
    }

    /// Establish of the given systems.
    pub async fn establish(&self, systems: &[&str], fresh: bool) -> Vec<SystemOutcome> {
        systems_of(
            self.request(Request::Establish {
                systems: systems.iter().map(|s| s.to_string()).collect(),
                user: None,
                fresh,
            })
            .await,
        )
    }

    /// Runs the `tapis-cred` binary against this agent.
    pub fn cred(&self, args: &[&str]) -> Output {
        cred_cmd(&self.socket, args, None)
    }

    /// Runs `tapis-cred` with `stdin` fed in.
    pub fn cred_stdin(&self, args: &[&str], stdin: &str) -> Output {
        cred_cmd(&self.socket, args, Some(stdin))
    }
}

/// Runs `tapis-cred --socket SOCKET ARGS...` (blocking) and returns its output.
pub fn cred_cmd(socket: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new(bin_path("tapis-cred"));
    cmd.arg("--socket")
        .arg(socket)
        .args(args)
        .env_remove("TAPIS_AGENT_SOCK");
    output_with_stdin(cmd, stdin).expect("tapis-cred output")
}

/// Runs `cmd` with `stdin` fed in (else no input), capturing its output.
pub fn output_with_stdin(mut cmd: Command, stdin: Option<&str>) -> std::io::Result<Output> {
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn()?;
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        use std::io::Write;
        pipe.write_all(input.as_bytes())?;
    }
    child.wait_with_output()
}

/// Names another `tapis-cred` binary to test instead of the one built
/// beside the tests (scripts/test.sh: the statically linked build).
pub const CRED_UNDER_TEST: &str = "TAPIS_CRED_BIN";

/// Path of a workspace binary next to the test executable (`target/<profile>/NAME`).
pub fn bin_path(name: &str) -> PathBuf {
    // scripts/test.sh runs some suites again with the static client.
    if name == "tapis-cred"
        && let Some(path) = std::env::var_os(CRED_UNDER_TEST)
    {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("current exe");
    let mut dir = exe.parent().expect("exe dir").to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: build it first (cargo test --workspace builds every binary)",
        path.display()
    );
    path
}

/// Waits until the agent on `socket` answers a hello. A connect alone is not
/// enough: the kernel queues connections as soon as the socket is bound,
/// before the agent has loaded its state and started accepting.
pub async fn wait_for_socket(socket: &Path) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Ok(stream) = UnixStream::connect(socket).await {
            let answered = tokio::time::timeout(
                Duration::from_secs(2),
                AsyncConnection::hello(stream, CLIENT_VERSION, None),
            )
            .await;
            if let Ok(Ok(_)) = answered {
                return;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "agent socket {} never answered",
            socket.display()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The client version the tests say in their hello.
pub const CLIENT_VERSION: &str = "test";

/// The protocol's async connection, panicking on failure.
#[derive(Debug)]
pub struct AgentClient {
    conn: AsyncConnection<UnixStream>,
}

impl AgentClient {
    /// Connects and does the hello exchange.
    pub async fn connect(socket: &Path) -> Self {
        let stream = UnixStream::connect(socket).await.expect("connect to agent");
        let conn = tokio::time::timeout(WAIT, AsyncConnection::hello(stream, CLIENT_VERSION, None))
            .await
            .expect("hello answered in time")
            .expect("hello");
        Self { conn }
    }

    /// Sends a request and reads the answer.
    pub async fn call(&mut self, req: Request) -> Response {
        tokio::time::timeout(Duration::from_secs(60), self.conn.call(&req, drop))
            .await
            .expect("answer in time")
            .expect("send request, read answer")
    }

    /// The raw stream, for hostile-client tests.
    pub fn into_stream(self) -> UnixStream {
        self.conn.into_stream()
    }
}

/// The per-system outcomes of a systems response (panics otherwise).
pub fn systems_of(resp: Response) -> Vec<SystemOutcome> {
    match resp {
        Response::Systems(v) => v,
        other => panic!("expected per-system outcomes, got {other:?}"),
    }
}

/// The state of a successful outcome (panics on error).
pub fn state_of(o: &SystemOutcome) -> CredState {
    match &o.outcome {
        Outcome::Ok(s) => *s,
        Outcome::Err(e) => panic!("{}: unexpected error {e:?}", o.system),
    }
}

/// The error of a failed outcome (panics on success).
pub fn error_of(o: &SystemOutcome) -> &tapis_agent_proto::ErrorReply {
    match &o.outcome {
        Outcome::Err(e) => e,
        Outcome::Ok(s) => panic!("{}: expected an error, got {s:?}", o.system),
    }
}

/// An HTTP client for talking to the fake Tapis directly from a test.
pub fn fake_http() -> reqwest::Client {
    // reqwest is built without a bundled crypto provider; plain http to
    // loopback needs none, but the builder insists on one being installed.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

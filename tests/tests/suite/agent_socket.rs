//! The socket: hostile frames, peer uid, live and stale sockets, symlinks.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;
use tapis_agent_proto::{Request, Response};
use tapis_agent_tests::harness::{TestAgent, bin_path};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

/// Reads until EOF (bounded): the agent must close hostile connections.
async fn expect_closed(mut s: UnixStream) {
    let mut buf = vec![0u8; 1024];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let n = tokio::time::timeout_at(deadline, s.read(&mut buf))
            .await
            .expect("agent closes the connection")
            .unwrap_or(0);
        if n == 0 {
            return;
        }
    }
}

async fn still_serves(a: &TestAgent) {
    assert!(matches!(
        a.request(Request::Status).await,
        Response::Status(_)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_and_oversized_frames_close_only_that_connection() {
    let a = TestAgent::start().await;
    let keep = a.client().await; // a well-behaved client stays connected throughout

    let mut s = UnixStream::connect(&a.socket).await.expect("connect");
    s.write_all(b"GET / HTTP/1.1\r\n\r\n").await.expect("write");
    expect_closed(s).await;

    let mut s = UnixStream::connect(&a.socket).await.expect("connect");
    s.write_all(&u32::MAX.to_be_bytes()).await.expect("write");
    expect_closed(s).await;

    let mut s = UnixStream::connect(&a.socket).await.expect("connect");
    s.write_all(&[0, 0, 0, 3, 0xff, 0xff, 0xff])
        .await
        .expect("write");
    expect_closed(s).await;

    // A valid frame that is not Hello first.
    let mut s = UnixStream::connect(&a.socket).await.expect("connect");
    tapis_agent_proto::write_frame_async(&mut s, &Request::Status)
        .await
        .expect("write");
    expect_closed(s).await;

    // A wrong protocol version gets a clear error, then the close.
    let mut s = UnixStream::connect(&a.socket).await.expect("connect");
    let hello = Request::Hello {
        protocol_version: 999,
        client_version: "x".into(),
    };
    tapis_agent_proto::write_frame_async(&mut s, &hello)
        .await
        .expect("write");
    let body = tapis_agent_proto::read_frame_async(&mut s)
        .await
        .expect("answer");
    let Response::Error(e) = tapis_agent_proto::decode::<Response>(&body).expect("decode") else {
        panic!("expected an error")
    };
    assert!(e.message.contains("protocol"), "{}", e.message);

    let mut keep = keep;
    assert!(matches!(
        keep.call(Request::Status).await,
        Response::Status(_)
    ));
    still_serves(&a).await;
    a.shutdown().await;
}

/// `tapis-cred` writes its request right behind the hello, in one write.
fn pipelined(protocol_version: u32, then: &Request) -> Vec<u8> {
    let hello = Request::Hello {
        protocol_version,
        client_version: "x".into(),
    };
    let mut frames = tapis_agent_proto::encode_frame(&hello).expect("encode");
    frames.extend(tapis_agent_proto::encode_frame(then).expect("encode"));
    frames
}

async fn answer(s: &mut UnixStream) -> Response {
    tapis_agent_proto::read_answer_async(s, drop)
        .await
        .expect("answer")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_behind_the_hello_is_answered_after_it_and_never_behind_a_refused_one() {
    let a = TestAgent::start().await;
    a.login().await;
    let token = Request::Token { min_valid_secs: 0 };
    assert!(matches!(a.request(token.clone()).await, Response::Token(_)));

    let mut s = UnixStream::connect(&a.socket).await.expect("connect");
    s.write_all(&pipelined(tapis_agent_proto::PROTOCOL_VERSION, &token))
        .await
        .expect("write");
    assert!(matches!(answer(&mut s).await, Response::Hello { .. }));
    // The two answers went out in one write: the second is already here.
    let mut rest = vec![0u8; 64 * 1024];
    let n = s
        .try_read(&mut rest)
        .expect("the token came with the hello's answer");
    let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
    assert_eq!(n, 4 + len, "one whole frame");
    let second: Response = tapis_agent_proto::decode(&rest[4..n]).expect("decode");
    assert!(matches!(second, Response::Token(_)));

    // Behind a hello of another protocol: the agent answers the hello with
    // an error and closes; the logout that followed it never runs.
    let mut s = UnixStream::connect(&a.socket).await.expect("connect");
    let logout = Request::Logout {
        forget_client: false,
    };
    s.write_all(&pipelined(999, &logout)).await.expect("write");
    let Response::Error(e) = answer(&mut s).await else {
        panic!("expected an error")
    };
    assert!(e.message.contains("protocol"), "{}", e.message);
    expect_closed(s).await;
    assert!(
        matches!(a.request(token).await, Response::Token(_)),
        "still logged in"
    );
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_agent_on_the_same_socket_is_refused() {
    let a = TestAgent::start().await;
    let err = tapis_agent::listener::bind(&a.socket).expect_err("live agent");
    assert!(err.to_string().contains("already listening"), "{err}");
    still_serves(&a).await;
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_socket_is_replaced_and_symlink_refused() {
    let dir = tempfile::Builder::new()
        .prefix("ts")
        .tempdir_in("/tmp")
        .expect("tmp");
    let run = dir.path().join("run");
    std::fs::create_dir(&run).expect("mkdir");
    std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    let sock = run.join("agent.sock");
    // A socket file nobody listens on.
    drop(std::os::unix::net::UnixListener::bind(&sock).expect("bind"));
    assert!(sock.exists());
    let l = tapis_agent::listener::bind(&sock).expect("stale socket replaced");
    drop(l);

    let link = run.join("link.sock");
    std::os::unix::fs::symlink("/tmp/elsewhere.sock", &link).expect("symlink");
    let err = tapis_agent::listener::bind(&link).expect_err("symlink refused");
    assert!(err.to_string().contains("symbolic link"), "{err}");

    let loose = dir.path().join("loose");
    std::fs::create_dir(&loose).expect("mkdir");
    std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let err = tapis_agent::listener::bind(&loose.join("agent.sock")).expect_err("loose dir");
    assert!(err.to_string().contains("chmod 700"), "{err}");

    let long = dir.path().join("x".repeat(120)).join("agent.sock");
    assert!(
        tapis_agent::listener::bind(&long).is_err(),
        "sun_path limit"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_is_private() {
    let a = TestAgent::start().await;
    let mode = std::fs::metadata(&a.socket)
        .expect("socket")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    let dir_mode = std::fs::metadata(a.socket.parent().expect("dir"))
        .expect("dir")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(dir_mode, 0o700);
    a.shutdown().await;
}

/// Runs a client as `nobody`, so this needs root (and `setpriv`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(as_root), ignore = "needs root")]
async fn a_peer_with_another_uid_is_refused() {
    tapis_agent_tests::needs::root("to run a client as another uid");
    let Some(setpriv) = tapis_agent_tests::needs::tool("setpriv") else {
        return;
    };
    let a = TestAgent::start().await;
    // Open the path to everyone (test only) so the kernel lets the other
    // user connect; the agent's own peer check must still refuse it.
    for p in [a.dir.path(), a.socket.parent().expect("run dir")] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    std::fs::set_permissions(&a.socket, std::fs::Permissions::from_mode(0o666)).expect("chmod");
    let socket = a.socket.clone();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(&setpriv)
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(bin_path("tapis-cred"))
            .arg("--socket")
            .arg(&socket)
            .arg("status")
            .output()
            .expect("run client as nobody")
    })
    .await
    .expect("join");
    assert!(
        !out.status.success(),
        "another uid must be refused: {out:?}"
    );
    assert_eq!(
        out.status.code(),
        Some(7),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    still_serves(&a).await;
    a.shutdown().await;
}

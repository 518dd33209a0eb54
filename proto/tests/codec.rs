//! Round trips, pinned encodings and hostile input for the codec.

use proptest::prelude::*;
use tapis_agent_proto::*;

fn sample_requests() -> Vec<Request> {
    vec![
        Request::Hello {
            protocol_version: PROTOCOL_VERSION,
            client_version: "0.1.0".into(),
        },
        Request::Establish {
            systems: vec!["stampede3".into(), "ls6".into()],
            user: Some("jdoe".into()),
            fresh: true,
        },
        Request::Revoke {
            systems: vec!["ls6".into()],
            user: None,
        },
        Request::Check {
            systems: vec!["frontera".into()],
            user: None,
            fresh: false,
        },
        Request::Token {
            min_valid_secs: 300,
        },
        Request::Login(LoginMethod::Password {
            username: "jdoe".into(),
            password: Secret::new("pw"),
        }),
        Request::Login(LoginMethod::ImportTokenFile {
            path: "/home/u/.tapis_tokens.json".into(),
        }),
        Request::Login(LoginMethod::DeviceStart),
        Request::DevicePoll,
        Request::Logout {
            forget_client: true,
        },
        Request::Status,
        Request::ExportTokenFile {
            path: Some("/tmp/x.json".into()),
        },
        Request::Settings,
        Request::Ping,
    ]
}

fn sample_responses() -> Vec<Response> {
    let err = ErrorReply::new(ErrorKind::NotTmsKeys, "corral.pki uses PKI_KEYS")
        .with_hint("ask the system's owner");
    vec![
        Response::Hello {
            protocol_version: PROTOCOL_VERSION,
            agent_version: "0.1.0".into(),
        },
        Response::Systems(vec![
            SystemOutcome {
                system: "stampede3".into(),
                user: "jdoe".into(),
                outcome: Outcome::Ok(CredState::Created),
                cached: false,
            },
            SystemOutcome {
                system: "corral.pki".into(),
                user: "jdoe".into(),
                outcome: Outcome::Err(err.clone()),
                cached: false,
            },
        ]),
        Response::Token(TokenGrant {
            access_token: Secret::new("a.b.c"),
            expires_at: 1_800_000_000,
            username: "jdoe".into(),
        }),
        Response::LoggedIn {
            username: "jdoe".into(),
            tenant: "designsafe".into(),
            expires_at: 1_800_000_000,
            has_refresh_token: true,
            refresh_problem: None,
        },
        Response::LoggedIn {
            username: "jdoe".into(),
            tenant: "designsafe".into(),
            expires_at: 1_800_000_000,
            has_refresh_token: false,
            refresh_problem: Some("no OAuth client".into()),
        },
        Response::DeviceCode(DeviceCode {
            verification_uri: "https://example.org/device".into(),
            user_code: "ABCD-EFGH".into(),
            expires_in: 600,
            interval: 5,
        }),
        Response::DevicePending,
        Response::LoggedOut,
        Response::Status(StatusInfo {
            agent_version: "0.1.0".into(),
            pid: 42,
            uptime_secs: 7,
            base_url: "http://127.0.0.1:1".into(),
            login: LoginState::LoggedIn {
                username: "jdoe".into(),
                tenant: "designsafe".into(),
                expires_at: 1_800_000_000,
                has_refresh_token: true,
                refresh_expires_at: Some(1_900_000_000),
                next_refresh_at: Some(1_799_999_700),
                last_refresh_error: None,
                refresh_problem: None,
            },
            systems: vec![SystemStatus {
                system: "ls6".into(),
                user: "jdoe".into(),
                state: CredState::Present,
                checked_at: 1_700_000_000,
            }],
            systems_total: 1,
            state: StateDirStatus {
                dir: "/home/jdoe/.local/state/tapis-agent".into(),
                filesystem: Some("nfs4 (fs1:/home on /home)".into()),
                lock_method: "flock".into(),
                lock_reason: None,
            },
        }),
        Response::Status(StatusInfo {
            agent_version: "0.1.0".into(),
            pid: 1,
            uptime_secs: 0,
            base_url: String::new(),
            login: LoginState::LoginRequired {
                username: None,
                reason: "expired".into(),
            },
            systems: vec![],
            systems_total: 0,
            state: StateDirStatus {
                dir: "/s".into(),
                filesystem: None,
                lock_method: "lockfile".into(),
                lock_reason: Some("flock failed: ENOLCK".into()),
            },
        }),
        Response::Exported {
            path: "/tmp/x.json".into(),
            expires_at: 5,
        },
        Response::Error(err),
        Response::Settings(AgentSettings {
            base_url: "https://designsafe.tapis.io".into(),
            tenant: Some("designsafe".into()),
            username: Some("jdoe".into()),
            config_file: Some("/home/jdoe/.config/tapis-agent/config.toml".into()),
            state_dir: "/home/jdoe/.local/state/tapis-agent".into(),
            export_token_file: None,
        }),
        Response::Pong(Pong {
            url: "http://127.0.0.1:1/v3/systems/healthcheck".into(),
            tapis_latency_ms: Some(12),
            tapis_error: None,
        }),
    ]
}

fn body(frame: &[u8]) -> &[u8] {
    &frame[FRAME_HEADER_LEN..]
}

#[test]
fn every_request_round_trips() {
    for req in sample_requests() {
        let frame = encode_frame(&req).expect("encode");
        let len = u32::from_be_bytes(frame[..4].try_into().expect("header")) as usize;
        assert_eq!(len, frame.len() - FRAME_HEADER_LEN);
        let back: Request = decode(body(&frame)).expect("decode");
        assert_eq!(back, req);
    }
}

#[test]
fn every_response_round_trips() {
    for resp in sample_responses() {
        let frame = encode_frame(&resp).expect("encode");
        let back: Response = decode(body(&frame)).expect("decode");
        assert_eq!(back, resp);
    }
}

#[test]
fn blocking_read_write_round_trip() {
    let mut buf = Vec::new();
    for req in sample_requests() {
        write_frame(&mut buf, &req).expect("write");
    }
    let mut r = buf.as_slice();
    for req in sample_requests() {
        let b = read_frame(&mut r).expect("read");
        assert_eq!(decode::<Request>(&b).expect("decode"), req);
    }
    assert!(matches!(read_frame(&mut r), Err(CodecError::Closed)));
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Pins the wire encoding. If this fails, the encoding changed: bump
/// PROTOCOL_VERSION and update the expected bytes deliberately.
#[test]
fn golden_bytes() {
    let hello = Request::Hello {
        protocol_version: 1,
        client_version: "0.1.0".into(),
    };
    assert_eq!(
        hex(&encode_frame(&hello).unwrap()),
        "00000008000105302e312e30"
    );

    let establish = Request::Establish {
        systems: vec!["ls6".into()],
        user: None,
        fresh: false,
    };
    assert_eq!(
        hex(&encode_frame(&establish).unwrap()),
        "000000080101036c73360000"
    );

    let token = Request::Token {
        min_valid_secs: 300,
    };
    assert_eq!(hex(&encode_frame(&token).unwrap()), "0000000404fb2c01");

    let ok = Response::Systems(vec![SystemOutcome {
        system: "ls6".into(),
        user: "u".into(),
        outcome: Outcome::Ok(CredState::Created),
        cached: true,
    }]);
    assert_eq!(
        hex(&encode_frame(&ok).unwrap()),
        "0000000b0101036c73360175000101"
    );

    let err = Response::Error(ErrorReply::new(ErrorKind::LoginRequired, "x"));
    assert_eq!(hex(&encode_frame(&err).unwrap()), "000000050902017800");

    // Protocol 2 appended `refresh_problem` to the login answers.
    let logged_in = Response::LoggedIn {
        username: "u".into(),
        tenant: "t".into(),
        expires_at: 7,
        has_refresh_token: false,
        refresh_problem: Some("p".into()),
    };
    assert_eq!(
        hex(&encode_frame(&logged_in).unwrap()),
        "0000000a03017501740e00010170"
    );
}

/// Variants appended later keep every earlier index: they take the next ones.
#[test]
fn golden_bytes_of_appended_variants() {
    assert_eq!(
        hex(&encode_frame(&Request::Settings).unwrap()),
        "000000010a"
    );
    assert_eq!(hex(&encode_frame(&Request::Ping).unwrap()), "000000010b");
    let pong = Response::Pong(Pong {
        url: "u".into(),
        tapis_latency_ms: Some(7),
        tapis_error: None,
    });
    assert_eq!(hex(&encode_frame(&pong).unwrap()), "000000060b0175010700");
    // Protocol 3 appended the progress note.
    let progress = Response::Progress(vec!["ls6: x".into()]);
    assert_eq!(
        hex(&encode_frame(&progress).unwrap()),
        "000000090c01066c73363a2078"
    );
}

#[test]
fn oversized_header_is_rejected_before_allocating() {
    let mut r: &[u8] = &[0xff, 0xff, 0xff, 0xff];
    assert!(
        matches!(read_frame(&mut r), Err(CodecError::TooLarge { len }) if len == u32::MAX as usize)
    );
    let just_over = ((MAX_FRAME_LEN + 1) as u32).to_be_bytes();
    let mut r: &[u8] = &just_over;
    assert!(matches!(
        read_frame(&mut r),
        Err(CodecError::TooLarge { .. })
    ));
}

#[test]
fn short_reads_are_truncated_errors() {
    let frame = encode_frame(&Request::Status).unwrap();
    let mut r: &[u8] = &frame[..2];
    assert!(matches!(read_frame(&mut r), Err(CodecError::Truncated)));
    let mut r: &[u8] = &[0, 0, 0, 9, 1, 2];
    assert!(matches!(read_frame(&mut r), Err(CodecError::Truncated)));
}

#[test]
fn oversized_message_is_not_encoded() {
    let req = Request::Establish {
        systems: vec!["x".repeat(1024); 80],
        user: None,
        fresh: false,
    };
    assert!(matches!(
        encode_frame(&req),
        Err(CodecError::TooLarge { .. }) | Err(CodecError::Encode(_))
    ));
}

#[test]
fn garbage_and_trailing_bytes_are_decode_errors() {
    assert!(matches!(
        decode::<Request>(&[0xee]),
        Err(CodecError::Decode(_))
    ));
    let frame = encode_frame(&Request::Status).unwrap();
    let mut body = body(&frame).to_vec();
    body.push(0);
    assert!(matches!(
        decode::<Request>(&body),
        Err(CodecError::Decode(_))
    ));
}

#[cfg(feature = "tokio")]
#[tokio::test]
async fn async_read_write_round_trip() {
    let (mut a, mut b) = tokio::io::duplex(1024);
    for req in sample_requests() {
        write_frame_async(&mut a, &req).await.expect("write");
        let got = read_frame_async(&mut b).await.expect("read");
        assert_eq!(decode::<Request>(&got).expect("decode"), req);
    }
    drop(a);
    assert!(matches!(
        read_frame_async(&mut b).await,
        Err(CodecError::Closed)
    ));
}

/// Hands out at most `chunk` bytes per read, like a socket that delivers a
/// stream in pieces.
#[cfg(feature = "tokio")]
struct Chunked {
    data: Vec<u8>,
    at: usize,
    chunk: usize,
    reads: usize,
}

#[cfg(feature = "tokio")]
impl tokio::io::AsyncRead for Chunked {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let n = self
            .chunk
            .min(self.data.len() - self.at)
            .min(buf.remaining());
        let at = self.at;
        buf.put_slice(&self.data[at..at + n]);
        self.at += n;
        self.reads += 1;
        std::task::Poll::Ready(Ok(()))
    }
}

#[cfg(feature = "tokio")]
#[tokio::test]
async fn frame_reader_reads_any_split_of_a_stream_of_frames() {
    let mut requests = sample_requests();
    // Larger than the reader's buffer: it grows, then shrinks back.
    requests.push(Request::Establish {
        systems: (0..300).map(|i| format!("system-{i}")).collect(),
        user: None,
        fresh: false,
    });
    requests.extend(sample_requests());
    let stream: Vec<u8> = requests
        .iter()
        .flat_map(|r| encode_frame(r).expect("encode"))
        .collect();
    for chunk in [1, 3, 4, 5, 7, 100, 1023, 1024, 4096, stream.len()] {
        let mut r = Chunked {
            data: stream.clone(),
            at: 0,
            chunk,
            reads: 0,
        };
        let mut reader = FrameReader::new();
        for want in &requests {
            let body = reader.read_frame(&mut r).await.expect("frame");
            assert_eq!(
                &decode::<Request>(&body).expect("decode"),
                want,
                "chunk {chunk}"
            );
        }
        assert!(
            matches!(reader.read_frame(&mut r).await, Err(CodecError::Closed)),
            "chunk {chunk}"
        );
        if chunk == stream.len() {
            // Everything came in one read, the few growth reads aside.
            assert!(r.reads < 6, "{} reads", r.reads);
        }
    }
}

#[cfg(feature = "tokio")]
#[tokio::test]
async fn frame_reader_reports_truncated_and_oversized_frames() {
    let frame = encode_frame(&Request::Status).expect("encode");
    for cut in 1..frame.len() {
        let mut r = &frame[..cut];
        assert!(
            matches!(
                FrameReader::new().read_frame(&mut r).await,
                Err(CodecError::Truncated)
            ),
            "cut at {cut}"
        );
    }
    let mut r: &[u8] = &u32::MAX.to_be_bytes();
    assert!(matches!(
        FrameReader::new().read_frame(&mut r).await,
        Err(CodecError::TooLarge { .. })
    ));
}

proptest! {
    #[test]
    fn random_bytes_never_panic_the_decoder(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode::<Request>(&bytes);
        let _ = decode::<Response>(&bytes);
        let mut r = bytes.as_slice();
        if let Ok(b) = read_frame(&mut r) {
            let _ = decode::<Request>(&b);
        }
    }

    #[test]
    fn random_systems_round_trip(systems in proptest::collection::vec("[a-z0-9._-]{1,40}", 0..20), fresh in any::<bool>()) {
        let req = Request::Establish { systems, user: None, fresh };
        let frame = encode_frame(&req).unwrap();
        prop_assert_eq!(decode::<Request>(body(&frame)).unwrap(), req);
    }
}

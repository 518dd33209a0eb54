//! The frame decoder: any byte stream, read as a sequence of frames and
//! decoded as requests and responses, never panics, never allocates past
//! the frame limit, and whatever decodes encodes back to the same value.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tapis_agent_proto::{
    FRAME_HEADER_LEN, MAX_FRAME_LEN, Request, Response, decode, encode_frame, read_frame,
};

fuzz_target!(|data: &[u8]| {
    let mut stream = std::io::Cursor::new(data);
    while let Ok(body) = read_frame(&mut stream) {
        assert!(body.len() <= MAX_FRAME_LEN);
        if let Ok(req) = decode::<Request>(&body) {
            let frame = encode_frame(&req).expect("a decoded request encodes");
            let back: Request = decode(&frame[FRAME_HEADER_LEN..]).expect("and decodes again");
            assert_eq!(back, req);
        }
        if let Ok(resp) = decode::<Response>(&body) {
            let frame = encode_frame(&resp).expect("a decoded response encodes");
            let back: Response = decode(&frame[FRAME_HEADER_LEN..]).expect("and decodes again");
            assert_eq!(back, resp);
        }
    }
    // The whole input as one body, too.
    let _ = decode::<Request>(data);
    let _ = decode::<Response>(data);
});

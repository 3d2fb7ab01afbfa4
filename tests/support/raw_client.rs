//! A minimal blocking RFB 3.8 client for tests that need to misbehave on the wire
//! (garbage, truncated handshakes, oversized messages) or to watch exact bytes.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// QEMU LED state pseudo-encoding: one byte, bit 0 Scroll, 1 Num, 2 Caps Lock.
pub const QEMU_LED_STATE: i32 = -261;

/// DesktopSize pseudo-encoding: the rect's size is the new framebuffer size.
const DESKTOP_SIZE: i32 = -223;

/// One rect of a FramebufferUpdate as read.
struct UpdateRect {
    encoding: i32,
    width: u16,
    height: u16,
    payload: Vec<u8>,
}

pub struct RawClient {
    pub stream: TcpStream,
    pub width: u16,
    pub height: u16,
}

impl RawClient {
    /// Connects without completing anything: the server's version is read, nothing sent.
    pub fn connect_bare(addr: &str) -> TcpStream {
        let mut stream = TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut version = [0u8; 12];
        stream.read_exact(&mut version).expect("server version");
        assert_eq!(&version, b"RFB 003.008\n");
        stream
    }

    /// Connects from source address `source` (any 127.x address reaches a loopback server) and
    /// reads the server's version; Err("refused") if the server closes first.
    pub fn connect_bare_from(addr: &str, source: std::net::IpAddr) -> Result<TcpStream, String> {
        Self::read_version(Self::open_from(addr, source))
    }

    /// Only connects from `source` (see [`Self::read_version`]): many of these at once do not
    /// wait for each other's greetings.
    pub fn open_from(addr: &str, source: std::net::IpAddr) -> TcpStream {
        let target: std::net::SocketAddr = addr.parse().unwrap();
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        socket.bind(&std::net::SocketAddr::new(source, 0).into()).unwrap();
        socket.connect(&target.into()).unwrap();
        let stream: TcpStream = socket.into();
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        stream
    }

    /// Reads the server's version from a fresh connection; Err("refused") if it closes first.
    pub fn read_version(mut stream: TcpStream) -> Result<TcpStream, String> {
        let mut version = [0u8; 12];
        stream.read_exact(&mut version).map_err(|_| "refused".to_string())?;
        Ok(stream)
    }

    /// A 3.8 handshake from `source`: VNC Authentication with `password`, or security None if
    /// the password is empty. Ok with the logged-in client, or Err saying how it ended:
    /// "refused" (closed before the version), "failed: REASON".
    pub fn login_from(addr: &str, source: std::net::IpAddr, password: &[u8]) -> Result<RawClient, String> {
        Self::login_with(addr, source, password, true)
    }

    /// [`Self::login_from`] asking for shared or exclusive access.
    pub fn login_with(
        addr: &str,
        source: std::net::IpAddr,
        password: &[u8],
        shared: bool,
    ) -> Result<RawClient, String> {
        let mut stream = Self::connect_bare_from(addr, source)?;
        stream.write_all(b"RFB 003.008\n").unwrap();
        let mut count = [0u8; 1];
        stream.read_exact(&mut count).unwrap();
        let mut types = vec![0u8; usize::from(count[0])];
        stream.read_exact(&mut types).unwrap();
        let chosen = if password.is_empty() { rfb::security::NONE } else { rfb::security::VNC_AUTH };
        assert!(types.contains(&chosen), "security type {chosen} offered: {types:?}");
        stream.write_all(&[chosen]).unwrap();
        if chosen == rfb::security::VNC_AUTH {
            let mut challenge = [0u8; rfb::security::vnc_auth::CHALLENGE_LEN];
            stream.read_exact(&mut challenge).unwrap();
            stream.write_all(&rfb::security::vnc_auth::expected_response(password, &challenge)).unwrap();
        }
        let mut result = [0u8; 4];
        stream.read_exact(&mut result).unwrap();
        if result != [0; 4] {
            let mut len = [0u8; 4];
            stream.read_exact(&mut len).unwrap();
            let mut reason = vec![0u8; u32::from_be_bytes(len) as usize];
            stream.read_exact(&mut reason).unwrap();
            return Err(format!("failed: {}", String::from_utf8_lossy(&reason)));
        }
        Ok(Self::finish_init(stream, shared))
    }

    /// Full 3.8 handshake with security None, shared, then SetEncodings [Raw].
    pub fn connect(addr: &str) -> RawClient {
        Self::connect_with(addr, true)
    }

    /// Like [`RawClient::connect`], asking for shared or exclusive access.
    pub fn connect_with(addr: &str, shared: bool) -> RawClient {
        let mut stream = Self::connect_bare(addr);
        stream.write_all(b"RFB 003.008\n").unwrap();
        let mut count = [0u8; 1];
        stream.read_exact(&mut count).unwrap();
        let mut types = vec![0u8; usize::from(count[0])];
        stream.read_exact(&mut types).unwrap();
        assert!(types.contains(&rfb::security::NONE), "server offers None: {types:?}");
        stream.write_all(&[rfb::security::NONE]).unwrap();
        let mut result = [0u8; 4];
        stream.read_exact(&mut result).unwrap();
        assert_eq!(result, [0; 4]);
        Self::finish_init(stream, shared)
    }

    /// ClientInit, ServerInit, then SetEncodings [Raw].
    fn finish_init(mut stream: TcpStream, shared: bool) -> RawClient {
        stream.write_all(&[u8::from(shared)]).unwrap();
        let mut init = [0u8; 24];
        stream.read_exact(&mut init).unwrap();
        let name_len = u32::from_be_bytes([init[20], init[21], init[22], init[23]]) as usize;
        let mut name = vec![0u8; name_len];
        stream.read_exact(&mut name).unwrap();
        stream.write_all(&[2, 0, 0, 1, 0, 0, 0, 0]).unwrap();
        RawClient {
            stream,
            width: u16::from_be_bytes([init[0], init[1]]),
            height: u16::from_be_bytes([init[2], init[3]]),
        }
    }

    /// SetEncodings with `encodings` (replacing the [Raw] sent at connect).
    pub fn set_encodings(&mut self, encodings: &[i32]) {
        let count = u16::try_from(encodings.len()).unwrap().to_be_bytes();
        let mut message = vec![2, 0, count[0], count[1]];
        message.extend(encodings.iter().flat_map(|encoding| encoding.to_be_bytes()));
        self.stream.write_all(&message).unwrap();
    }

    /// Reads updates (asking for incremental ones) until one carries a rect with `encoding`;
    /// returns that rect's payload. Only Raw rects and payload-free pseudo-rects may come
    /// before it, besides QEMU LED state (one byte).
    pub fn wait_for_pseudo_rect(&mut self, encoding: i32, payload_len: usize) -> Vec<u8> {
        self.wait_for_rect(encoding, payload_len).payload
    }

    /// Like [`Self::wait_for_pseudo_rect`], returning the whole rect (its header's size too:
    /// DesktopSize carries the new size there).
    fn wait_for_rect(&mut self, encoding: i32, payload_len: usize) -> UpdateRect {
        let pseudo_len = |this| match this {
            _ if this == encoding => payload_len,
            QEMU_LED_STATE => 1,
            _ => 0,
        };
        loop {
            self.request_update(true);
            let rects = self.read_update(pseudo_len);
            if let Some(rect) = rects.into_iter().find(|rect| rect.encoding == encoding) {
                if encoding == DESKTOP_SIZE {
                    self.width = rect.width;
                    self.height = rect.height;
                }
                return rect;
            }
        }
    }

    pub fn request_update(&mut self, incremental: bool) {
        self.try_request_update(incremental).unwrap();
    }

    /// Like [`Self::request_update`], for a connection the server may have closed.
    pub fn try_request_update(&mut self, incremental: bool) -> std::io::Result<()> {
        let [w0, w1] = self.width.to_be_bytes();
        let [h0, h1] = self.height.to_be_bytes();
        self.stream.write_all(&[3, u8::from(incremental), 0, 0, 0, 0, w0, w1, h0, h1])
    }

    pub fn key(&mut self, keysym: u32, down: bool) {
        let k = keysym.to_be_bytes();
        self.stream.write_all(&[4, u8::from(down), 0, 0, k[0], k[1], k[2], k[3]]).unwrap();
    }

    pub fn pointer(&mut self, buttons: u8, x: u16, y: u16) {
        let [x0, x1] = x.to_be_bytes();
        let [y0, y1] = y.to_be_bytes();
        self.stream.write_all(&[5, buttons, x0, x1, y0, y1]).unwrap();
    }

    /// Reads one FramebufferUpdate of Raw rects (32 bpp) and returns the number of pixel bytes.
    pub fn read_raw_update(&mut self) -> usize {
        let rects = self.read_update(|_| 0);
        rects.iter().filter(|rect| rect.encoding == 0).map(|rect| rect.payload.len()).sum()
    }

    /// Reads one FramebufferUpdate: each rect's encoding and payload. Raw rects carry 32-bpp
    /// pixels; a pseudo-rect carries `pseudo_len(encoding)` bytes.
    fn read_update(&mut self, pseudo_len: impl Fn(i32) -> usize) -> Vec<UpdateRect> {
        let mut header = [0u8; 4];
        self.stream.read_exact(&mut header).expect("update header");
        assert_eq!(header[0], 0, "FramebufferUpdate");
        let count = u16::from_be_bytes([header[2], header[3]]);
        let mut rects = Vec::new();
        for _ in 0..count {
            let mut rect = [0u8; 12];
            self.stream.read_exact(&mut rect).unwrap();
            let width = u16::from_be_bytes([rect[4], rect[5]]);
            let height = u16::from_be_bytes([rect[6], rect[7]]);
            let encoding = i32::from_be_bytes([rect[8], rect[9], rect[10], rect[11]]);
            let len = if encoding == 0 { usize::from(width) * usize::from(height) * 4 } else { pseudo_len(encoding) };
            let mut payload = vec![0u8; len];
            self.stream.read_exact(&mut payload).unwrap();
            rects.push(UpdateRect { encoding, width, height, payload });
        }
        rects
    }
}

/// True when the server closed `stream` (EOF or reset) within the read timeout.
pub fn closed_by_server(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

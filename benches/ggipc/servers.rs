//! The baselines' servers, inside the bench process: a lean eventstream-RPC responder
//! (the least a server can do per request) and raw Unix-socket ping-pong, hop and
//! one-way writers (the physical floor the figures are read against).

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use crossbeam_channel::bounded;
use ggipc::codec::{FrameDecoder, Limits};
use ggipc::model::{PublishToTopicResponse, Shape, SubscribeToTopicResponse};
use ggipc::rpc::{MessageType, RpcMessage, FLAG_CONNECTION_ACCEPTED, FLAG_TERMINATE_STREAM};
use ggipc::Client;
use parking_lot::Mutex;

use crate::support::{encode, looping_threads, response_message, socket_path};

// ---------------------------------------------------------------------------------------
// The lean responder
// ---------------------------------------------------------------------------------------

/// The connections' writers and the stream ids of the subscriptions opened on them.
pub type Streams = Arc<Mutex<Vec<(Arc<Mutex<UnixStream>>, i32)>>>;

/// A minimal eventstream-RPC server on its own thread: accepts connections, acknowledges
/// CONNECT, answers every PublishToTopic with an empty response (one write per batch of
/// requests read together), and answers SubscribeToTopic by registering the stream so the
/// bench can push events on it.
pub struct LeanServer {
    path: PathBuf,
    pub streams: Streams,
    stop: Arc<AtomicBool>,
    accept: Option<thread::JoinHandle<()>>,
}

impl LeanServer {
    pub fn start(tag: &str) -> LeanServer {
        let path = socket_path(tag);
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).expect("bind lean server");
        let streams: Streams = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st) = (streams.clone(), stop.clone());
        let accept = thread::spawn(move || {
            for socket in listener.incoming() {
                if st.load(Ordering::Acquire) {
                    break;
                }
                let Ok(socket) = socket else { continue };
                let s = s.clone();
                thread::spawn(move || lean_serve(socket, s));
            }
        });
        LeanServer {
            path,
            streams,
            stop,
            accept: Some(accept),
        }
    }

    /// A client with the default settings.
    pub fn client(&self) -> Client {
        self.client_builder()
            .connect()
            .expect("connect to the lean server")
    }

    pub fn client_builder(&self) -> ggipc::ClientBuilder {
        Client::builder().socket_path(&self.path).auth_token("lean")
    }
}

impl Drop for LeanServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        let _ = UnixStream::connect(&self.path);
        if let Some(a) = self.accept.take() {
            let _ = a.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

fn lean_serve(socket: UnixStream, streams: Streams) {
    let mut read_half = socket.try_clone().expect("clone");
    let writer = Arc::new(Mutex::new(socket));
    let mut decoder = FrameDecoder::new(Limits::default());
    let limits = Limits::default();
    let mut out = BytesMut::with_capacity(64 * 1024);
    loop {
        out.clear();
        while let Ok(Some(frame)) = decoder.next_message() {
            let Ok(m) = RpcMessage::from_frame(frame) else {
                return;
            };
            let reply = match (m.message_type, m.operation.as_deref()) {
                (MessageType::Connect, _) => Some(RpcMessage::new(
                    MessageType::ConnectAck,
                    FLAG_CONNECTION_ACCEPTED,
                    0,
                )),
                (MessageType::Ping, _) => Some(RpcMessage::new(MessageType::PingResponse, 0, 0)),
                (_, Some("aws.greengrass#SubscribeToTopic")) => {
                    let r = response_message(m.stream_id, SubscribeToTopicResponse::MODEL_TYPE, 0);
                    // Registered before the response leaves (the client may look for the
                    // stream as soon as it has its response), under the writer's lock, which
                    // a pusher takes to write: no event overtakes the response.
                    let mut w = writer.lock();
                    streams.lock().push((writer.clone(), m.stream_id));
                    let _ = w.write_all(&out);
                    out.clear();
                    let _ = w.write_all(&encode(&r));
                    None
                }
                (_, Some(_)) => Some(response_message(
                    m.stream_id,
                    PublishToTopicResponse::MODEL_TYPE,
                    FLAG_TERMINATE_STREAM,
                )),
                _ => None,
            };
            if let Some(r) = reply {
                let _ = r.to_frame().encode(&limits, &mut out);
            }
        }
        if !out.is_empty() && writer.lock().write_all(&out).is_err() {
            return;
        }
        match decoder.read_from(&mut read_half) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

// ---------------------------------------------------------------------------------------
// Raw socket baselines
// ---------------------------------------------------------------------------------------

/// The echo side of a raw ping-pong: reads `req` bytes, writes `resp` bytes, until EOF.
fn echo(mut b: UnixStream, req: usize, resp: usize) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        let mut inbuf = vec![0u8; req];
        let out = vec![1u8; resp];
        while b.read_exact(&mut inbuf).is_ok() {
            if b.write_all(&out).is_err() {
                break;
            }
        }
    })
}

/// Raw ping-pong over a Unix socket pair between two threads: `req` bytes one way,
/// `resp` bytes back, the echo side on its own thread.
pub struct RawPingPong {
    socket: UnixStream,
    out: Vec<u8>,
    inbuf: Vec<u8>,
    echo: Option<thread::JoinHandle<()>>,
}

impl RawPingPong {
    pub fn new(req: usize, resp: usize) -> RawPingPong {
        let (a, b) = UnixStream::pair().expect("pair");
        RawPingPong {
            socket: a,
            out: vec![2u8; req],
            inbuf: vec![0u8; resp],
            echo: Some(echo(b, req, resp)),
        }
    }
    pub fn once(&mut self) {
        self.socket.write_all(&self.out).expect("write");
        self.socket.read_exact(&mut self.inbuf).expect("read");
    }
}

impl Drop for RawPingPong {
    fn drop(&mut self) {
        let _ = self.socket.shutdown(std::net::Shutdown::Both);
        if let Some(e) = self.echo.take() {
            let _ = e.join();
        }
    }
}

/// The same ping-pong, but the reply is read by a separate reader thread and handed to
/// the caller over a channel: the floor of any design with an I/O thread (ggipc's).
pub struct RawHop {
    socket: UnixStream,
    out: Vec<u8>,
    replies: crossbeam_channel::Receiver<()>,
    threads: Vec<thread::JoinHandle<()>>,
}

impl RawHop {
    pub fn new(req: usize, resp: usize) -> RawHop {
        let (a, b) = UnixStream::pair().expect("pair");
        let mut reader = a.try_clone().expect("clone");
        let (tx, replies) = bounded(1);
        let io = thread::spawn(move || {
            let mut inbuf = vec![0u8; resp];
            while reader.read_exact(&mut inbuf).is_ok() {
                if tx.send(()).is_err() {
                    break;
                }
            }
        });
        RawHop {
            socket: a,
            out: vec![2u8; req],
            replies,
            threads: vec![echo(b, req, resp), io],
        }
    }
    pub fn once(&mut self) {
        self.socket.write_all(&self.out).expect("write");
        self.replies.recv().expect("reply");
    }
}

impl Drop for RawHop {
    fn drop(&mut self) {
        let _ = self.socket.shutdown(std::net::Shutdown::Both);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// `pairs` independent raw ping-pong pairs side by side for `d` (2 × `pairs` threads,
/// one socket per pair, no batching): total ops/s.
pub fn raw_pairs_throughput(pairs: usize, req: usize, resp: usize, d: Duration) -> f64 {
    looping_threads(pairs, d, || {
        let mut pair = RawPingPong::new(req, resp);
        move || {
            pair.once();
            true
        }
    })
}

/// The wake-up floor of `threads` blocking calls, with no socket: each thread hands its
/// handle to one server thread over a channel and parks until the server unparks it
/// (the least a blocking call does: one sleep, one wake-up by another thread), in a loop
/// for `d`: total hand-offs/s.
pub fn handoff_throughput(threads: usize, d: Duration) -> f64 {
    let (to_server, requests) = crossbeam_channel::unbounded::<(thread::Thread, Arc<AtomicBool>)>();
    let server = thread::spawn(move || {
        for (caller, answered) in requests {
            answered.store(true, Ordering::Release);
            caller.unpark();
        }
    });
    let rate = looping_threads(threads, d, || {
        let to_server = to_server.clone();
        move || {
            let answered = Arc::new(AtomicBool::new(false));
            if to_server
                .send((thread::current(), answered.clone()))
                .is_err()
            {
                return false;
            }
            while !answered.load(Ordering::Acquire) {
                thread::park();
            }
            true
        }
    });
    // The server ends when the last sender is gone.
    drop(to_server);
    let _ = server.join();
    rate
}

/// The least a client with ggipc's threading does for `threads` blocking callers: they
/// share one socket; a caller appends its `req` bytes to a shared buffer and, unless
/// another caller is writing (who then writes them too, as ggipc's group writes do),
/// writes the buffer until it is empty; then it parks. One reader thread reads the replies
/// and unparks their callers in order. The server answers every request read with `resp`
/// bytes, all of one read in one write, and does nothing else. No frames, no encoding, no
/// stream ids, no deadlines: the cost of the threading itself (the socket, the I/O
/// thread's hop, a sleep and a wake-up per call) on this machine, in a loop for `d`:
/// total calls/s.
pub fn shared_socket_throughput(threads: usize, req: usize, resp: usize, d: Duration) -> f64 {
    type Waiter = (thread::Thread, Arc<AtomicBool>);
    #[derive(Default)]
    struct Outgoing {
        bytes: Vec<u8>,
        waiters: Vec<Waiter>,
        writing: bool,
    }
    let (a, b) = UnixStream::pair().expect("pair");
    let server = batching_echo(b, req, resp);
    let socket = Arc::new(a.try_clone().expect("clone"));
    let outgoing: Arc<Mutex<Outgoing>> = Arc::default();
    // The callers whose bytes are on the wire, in order (pushed before their bytes go).
    let answering: Arc<Mutex<std::collections::VecDeque<Waiter>>> = Arc::default();
    let reader = {
        let (mut socket, answering) = (a, answering.clone());
        thread::spawn(move || {
            let mut buf = vec![0u8; 64 * 1024];
            let mut partial = 0usize;
            let mut wake = Vec::new();
            while let Ok(n @ 1..) = socket.read(&mut buf) {
                partial += n;
                let replies = partial / resp;
                partial %= resp;
                wake.extend(answering.lock().drain(..replies));
                for (caller, answered) in wake.drain(..) {
                    answered.store(true, Ordering::Release);
                    caller.unpark();
                }
            }
        })
    };
    let rate = looping_threads(threads, d, || {
        let (socket, outgoing, answering) = (socket.clone(), outgoing.clone(), answering.clone());
        let request = vec![2u8; req];
        let mut group = Vec::new();
        move || {
            let answered = Arc::new(AtomicBool::new(false));
            let mut out = outgoing.lock();
            out.bytes.extend_from_slice(&request);
            out.waiters.push((thread::current(), answered.clone()));
            if !out.writing {
                out.writing = true;
                while !out.bytes.is_empty() {
                    std::mem::swap(&mut group, &mut out.bytes);
                    answering.lock().extend(out.waiters.drain(..));
                    let written = parking_lot::MutexGuard::unlocked(&mut out, || {
                        (&*socket).write_all(&group)
                    });
                    group.clear();
                    if written.is_err() {
                        return false;
                    }
                }
                out.writing = false;
            }
            drop(out);
            while !answered.load(Ordering::Acquire) {
                thread::park();
            }
            true
        }
    });
    let _ = socket.shutdown(std::net::Shutdown::Both);
    let _ = reader.join();
    let _ = server.join();
    rate
}

/// The server of [`shared_socket_throughput`]: reads what is there, answers every whole
/// `req`-byte request in it with `resp` bytes in one write, until EOF.
fn batching_echo(mut b: UnixStream, req: usize, resp: usize) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        let mut out = Vec::new();
        let mut partial = 0usize;
        while let Ok(n @ 1..) = b.read(&mut buf) {
            partial += n;
            out.resize(partial / req * resp, 1u8);
            partial %= req;
            if !out.is_empty() && b.write_all(&out).is_err() {
                break;
            }
        }
    })
}

/// One writer thread writes `n` frames of `frame_len` bytes, one `write` per frame; one
/// reader thread reads them. Frames/s.
pub fn raw_one_way(frame_len: usize, n: usize) -> f64 {
    let (mut a, mut b) = UnixStream::pair().expect("pair");
    let total = frame_len * n;
    let reader = thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        let mut got = 0usize;
        while got < total {
            match b.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(k) => got += k,
            }
        }
        Instant::now()
    });
    let frame = vec![3u8; frame_len];
    let t = Instant::now();
    for _ in 0..n {
        a.write_all(&frame).expect("write");
    }
    let end = reader.join().expect("reader");
    n as f64 / (end - t).as_secs_f64()
}

//! Fault injection shared by the simulators: latency, scripted error answers, dropped
//! connections, and "down" periods, all controllable from tests and the demo.

use axum::body::Body;
use axum::http::{Response, StatusCode};
use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One scripted misbehaviour, consumed by the next request.
#[derive(Debug, Clone)]
pub enum Fault {
    /// An HTTP status with a body (e.g. 500 with a traceback, 429 with Retry-After).
    Status {
        status: u16,
        body: String,
        retry_after: Option<u64>,
    },
    /// A reverse proxy's HTML 502 page, as nginx gives when the backend is down.
    BadGateway,
    /// Close the connection without answering.
    Drop,
    /// Answer only after this long (a timeout for the client, if it is long enough).
    Delay(Duration),
}

#[derive(Default)]
struct State {
    queue: VecDeque<Fault>,
    latency: Duration,
    down_until: Option<Instant>,
    down_as: Option<Fault>,
    /// Every `n`-th request fails with the next of these faults in turn, for flaky-peer tests.
    every: Option<(u64, Vec<Fault>)>,
    /// How many faults were acted out.
    acted: u64,
    /// Faults only for reads (GET): a write "answered" by a fault would be a lie about the
    /// peer's state, which no client can detect.
    reads_only: bool,
    counter: u64,
}

/// The fault plan of one simulator.
#[derive(Default)]
pub struct Faults(Mutex<State>);

impl Faults {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The next requests fail with these faults, in order.
    pub fn push(&self, faults: impl IntoIterator<Item = Fault>) {
        self.state().queue.extend(faults);
    }

    /// Every request waits this long first.
    pub fn set_latency(&self, latency: Duration) {
        self.state().latency = latency;
    }

    /// For `period`, every request gets `how` (e.g. [`Fault::Drop`] or [`Fault::BadGateway`]).
    pub fn down_for(&self, period: Duration, how: Fault) {
        let mut s = self.state();
        s.down_until = Some(Instant::now() + period);
        s.down_as = Some(how);
    }

    /// Down until [`Faults::up`].
    pub fn down(&self, how: Fault) {
        self.down_for(Duration::from_secs(86_400 * 365), how);
    }

    pub fn up(&self) {
        let mut s = self.state();
        s.down_until = None;
        s.down_as = None;
    }

    /// Every `n`-th request fails with `fault` (`n` = 0 turns it off).
    pub fn every_nth(&self, n: u64, fault: Fault) {
        self.every_nth_of(n, vec![fault]);
    }

    /// Every `n`-th request fails with the next of `faults`, in turn (`n` = 0 turns it off).
    pub fn every_nth_of(&self, n: u64, faults: Vec<Fault>) {
        self.state().every = if n == 0 || faults.is_empty() {
            None
        } else {
            Some((n, faults))
        };
    }

    /// Scripted and periodic faults hit only reads (GET) from now on (`false`: every request).
    pub fn reads_only(&self, on: bool) {
        self.state().reads_only = on;
    }

    /// How many requests were answered with a fault so far.
    pub fn acted(&self) -> u64 {
        self.state().acted
    }

    pub fn clear(&self) {
        *self.state() = State::default();
    }

    /// What to do with the next request, a read (GET) or not: its latency and, if any, the
    /// fault to act out.
    pub fn next_for(&self, read: bool) -> (Duration, Option<Fault>) {
        let mut s = self.state();
        if s.reads_only && !read {
            return (s.latency, None);
        }
        let (latency, fault) = Self::pick(&mut s);
        if fault.is_some() {
            s.acted += 1;
        }
        (latency, fault)
    }

    fn pick(s: &mut State) -> (Duration, Option<Fault>) {
        s.counter += 1;
        let latency = s.latency;
        if let Some(until) = s.down_until {
            if Instant::now() < until {
                return (latency, s.down_as.clone());
            }
            s.down_until = None;
            s.down_as = None;
        }
        if let Some(f) = s.queue.pop_front() {
            return (latency, Some(f));
        }
        if let Some((n, faults)) = &s.every {
            if s.counter % n == 0 {
                let turn = (s.counter / n - 1) as usize % faults.len();
                return (latency, Some(faults[turn].clone()));
            }
        }
        (latency, None)
    }
}

/// The response a fault stands for (`None` for [`Fault::Drop`] and [`Fault::Delay`], which the
/// server acts out itself).
pub fn response_for(fault: &Fault) -> Option<Response<Body>> {
    match fault {
        Fault::Status { status, body, retry_after } => {
            let mut b = Response::builder().status(StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR));
            if let Some(s) = retry_after {
                b = b.header("Retry-After", s.to_string());
            }
            Some(b.header("Content-Type", "text/plain; charset=utf-8").body(Body::from(body.clone())).expect("valid response"))
        }
        Fault::BadGateway => Some(
            Response::builder()
                .status(StatusCode::BAD_GATEWAY)
                .header("Content-Type", "text/html")
                .body(Body::from("<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"))
                .expect("valid response"),
        ),
        Fault::Drop | Fault::Delay(_) => None,
    }
}

/// A 200 whose body breaks off: the client sees the connection drop mid-answer.
pub fn dropped_response() -> Response<Body> {
    let stream = futures_util::stream::once(async {
        Err::<axum::body::Bytes, std::io::Error>(std::io::Error::other(
            "simulated dropped connection",
        ))
    });
    Response::builder()
        .status(StatusCode::OK)
        .header("Content-Type", "text/xml; charset=utf-8")
        .body(Body::from_stream(stream))
        .expect("valid response")
}

/// Acts out the fault plan for one request: waits out latency and delays, and returns the
/// answer to send instead of the real one, if any.
pub async fn act(faults: &Faults) -> Option<Response<Body>> {
    act_for(faults, true).await
}

/// [`act`] for a request that is a read (GET) or not (see [`Faults::reads_only`]).
pub async fn act_for(faults: &Faults, read: bool) -> Option<Response<Body>> {
    let (latency, fault) = faults.next_for(read);
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    match fault? {
        Fault::Delay(d) => {
            tokio::time::sleep(d).await;
            None
        }
        Fault::Drop => Some(dropped_response()),
        other => response_for(&other),
    }
}

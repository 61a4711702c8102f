//! Discord delivery: what we send ([`render`](mod@render)), what an answer means
//! ([`classify`](mod@classify)), when the next request may go ([`limits`]), and the HTTP edge
//! that sends it ([`HttpSink`]). Rendering, classification and the limits' arithmetic are pure;
//! only `sink` touches the network.

pub mod classify;
pub mod limits;
pub mod render;
pub(crate) mod sink;

pub use classify::{classify, Outcome, Pace, Scope};
pub use render::{render, Level, Message};
pub use sink::{HttpSink, Reply, Sink, Upload};

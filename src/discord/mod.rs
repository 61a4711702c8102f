//! Discord delivery: what we send ([`render`]), what an answer means ([`classify`]), and the
//! HTTP edge that sends it ([`sink`]). Rendering and classification are pure; only `sink`
//! touches the network.

pub mod classify;
pub mod render;
pub mod sink;

pub use classify::{classify, Outcome, Pace, Scope};
pub use render::{render, Level, Message};
pub use sink::{HttpSink, Reply, Sink, Upload};

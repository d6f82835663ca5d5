//! The control socket: how `petrelctl` inspects and steers a running daemon.
//!
//! - [`protocol`]: the requests and answers, one JSON object per line;
//! - [`server`]: the daemon's side, bound under the state folder by the engine;
//! - [`client`]: `petrelctl`'s side;
//! - [`gate`]: session counters and `pause smtp`, around every session's handler.

pub mod client;
pub mod gate;
pub mod protocol;
pub mod render;
pub mod server;

pub use gate::SessionGate;
pub use server::{ControlContext, ControlHooks, socket_path};

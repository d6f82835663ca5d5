//! Listening sockets: bound with the largest backlog the kernel allows, so that bursts of
//! connections queue in the kernel instead of being refused (a backlog of 5 makes a server
//! collapse under 50 concurrent clients).

use std::io;
use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpSocket};

/// Requested listen backlog; the kernel clamps it to `net.core.somaxconn`.
pub const LISTEN_BACKLOG: u32 = 65_535;

/// Binds a TCP listener on `addr` with address reuse and a large backlog.
pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.set_nodelay(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

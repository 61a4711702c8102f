//! One guest connection of the power-cut VM, relayed to a server on this machine: QEMU starts
//! this once per connection (`guestfwd=…-cmd:relay 127.0.0.1:PORT`) with the guest's side on
//! stdin and stdout. Built with a bare rustc (std only) by tests/powercut/vm.rs.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};

fn main() {
    let Some(addr) = std::env::args().nth(1) else {
        eprintln!("usage: relay HOST:PORT");
        std::process::exit(2);
    };
    let Ok(server) = TcpStream::connect(&addr) else {
        std::process::exit(1);
    };
    let Ok(mut to_server) = server.try_clone() else {
        std::process::exit(1);
    };
    // Guest to server; when the guest closes its side, the server is told so.
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut std::io::stdin().lock(), &mut to_server);
        let _ = to_server.shutdown(Shutdown::Write);
    });
    // Server to guest, unbuffered (stdout's line buffering would hold TLS records back).
    let mut from_server = server;
    let mut out = std::io::stdout().lock();
    let mut buf = [0u8; 16384];
    while let Ok(n) = from_server.read(&mut buf) {
        if n == 0 || out.write_all(&buf[..n]).and_then(|()| out.flush()).is_err() {
            break;
        }
    }
    std::process::exit(0);
}

//! The transport under an IMAP session: TLS or plain TCP, with the read timeout every command
//! gets.

use super::error::bounded;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// The transport under the IMAP session.
pub(super) enum Io {
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
    Plain(TcpStream),
}

/// The transport and the read timeout every command gets: IDLE lengthens it while it waits and
/// "removes" it afterwards, which here means back to this one, never to blocking forever.
pub(crate) struct Stream {
    io: Io,
    timeout: Duration,
    /// The read timeout now in force (IDLE's wait, else `timeout`), named by a timed-out read.
    reading: Duration,
}

impl Stream {
    pub(super) fn new(io: Io, timeout: Duration) -> Stream {
        Stream {
            io,
            timeout,
            reading: timeout,
        }
    }

    fn tcp(&self) -> &TcpStream {
        match &self.io {
            Io::Tls(s) => s.get_ref(),
            Io::Plain(s) => s,
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let read = match &mut self.io {
            Io::Tls(s) => s.read(buf),
            Io::Plain(s) => s.read(buf),
        };
        read.map_err(|e| bounded(e, self.reading))
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let written = match &mut self.io {
            Io::Tls(s) => s.write(buf),
            Io::Plain(s) => s.write(buf),
        };
        written.map_err(|e| bounded(e, self.timeout))
    }
    fn flush(&mut self) -> std::io::Result<()> {
        let flushed = match &mut self.io {
            Io::Tls(s) => s.flush(),
            Io::Plain(s) => s.flush(),
        };
        flushed.map_err(|e| bounded(e, self.timeout))
    }
}

impl imap::extensions::idle::SetReadTimeout for Stream {
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> imap::Result<()> {
        let reading = timeout.unwrap_or(self.timeout);
        self.tcp()
            .set_read_timeout(Some(reading))
            .map_err(imap::Error::Io)?;
        self.reading = reading;
        Ok(())
    }
}

pub(crate) type Session = imap::Session<Stream>;

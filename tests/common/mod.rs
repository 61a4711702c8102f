//! The fixtures every test module shares: the private Dovecot (and Cyrus, Courier, a scripted
//! IMAP server), the fake Discord and OAuth server, the daemon as a child process, its config.

pub mod config;
pub mod corpus;
pub mod courier;
pub mod cyrus;
pub mod daemon;
pub mod dispatcher;
pub mod dovecot;
pub mod fake_discord;
pub mod fake_oauth;
pub mod instance;
pub mod notices;
pub mod scripted_imap;
pub mod servers;
pub mod vm;

//! mailbeacon: watches IMAP mailboxes, sorts each new mail into a bucket, keeps every mail in a
//! crash-safe spool, pushes alerts to Discord with honest retries, and drives a GPIO LED and
//! buzzer so that a dead push channel or a growing spool can be seen and heard.
//!
//! The flow runs one way: [`imap`] fetches, [`triage`] picks a bucket, [`spool`] makes the mail
//! durable together with the mailbox cursor, [`dispatch`] delivers through a [`discord`] sink,
//! and every component reports events to [`health`], which the [`indicator`], `status` and the
//! systemd status line all show. [`oauth`] signs accounts in with OAuth 2.0 and keeps their
//! grants.

pub(crate) mod backoff;
pub mod cli;
pub mod config;
pub(crate) mod control;
pub mod daemon;
#[cfg(feature = "demo")]
pub mod demo;
pub mod discord;
pub mod dispatch;
pub mod health;
pub(crate) mod heartbeat;
pub mod imap;
pub(crate) mod indicator;
pub(crate) mod logger;
pub mod mail;
pub(crate) mod metrics;
pub(crate) mod notice;
pub(crate) mod oauth;
pub(crate) mod setup;
pub mod spool;
pub(crate) mod status;
pub mod stop;
pub(crate) mod system;
pub(crate) mod text;
pub(crate) mod time;
pub(crate) mod tools;
pub mod triage;
pub mod watchdog;

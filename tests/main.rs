//! The integration tests: one test binary (`cargo test --test integration`), each file beside
//! this one a module of it, all sharing the fixtures in `common/`. One binary links the crate
//! and the fixtures once instead of once per file, and lets all its tests run side by side.
//!
//! They share one process, so none changes what is the process's: its environment, its
//! working directory, its signal handlers; a test that needs a process of its own (to kill it,
//! to trace it) runs the binary again as a child (`crash`, `fsync`), and the tests that boot a
//! QEMU machine take turns (`common::vm`).
//!
//! One module's tests: `cargo test --test integration watch::`; the tests whose names begin
//! so: `cargo test --test integration watch::idle_`. What each module tests: docs/testing.md.

mod common;

mod after_delivery;
mod bounds;
mod check;
mod cli;
mod crash;
mod demo;
mod discord;
mod discord_errors;
mod disk;
mod docs;
mod dump_memory;
mod fixtures_selftest;
mod fsync;
mod gpio;
mod hostile;
mod imap;
mod inprocess;
mod message;
mod modes;
mod notices;
mod oauth;
mod pi;
mod powercut;
mod providers;
mod quirks;
mod rules;
mod secrets;
mod selftest;
mod servers;
mod setup;
mod shared_limit;
mod spool_damage;
mod story;
mod systemd;
mod tls;
mod watch;
mod watchdog;

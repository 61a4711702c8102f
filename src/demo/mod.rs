//! `mailbeacon demo`: the whole product on one machine with no credentials.
pub mod dovecot;
pub mod process;

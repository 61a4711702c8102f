pub mod config;
pub mod daemon;
pub mod dovecot;
pub mod fake_discord;
pub mod fake_oauth;
pub mod notices;
pub mod scripted_imap;

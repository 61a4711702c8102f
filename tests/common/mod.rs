pub mod dovecot;
pub mod fake_discord;
pub mod daemon;

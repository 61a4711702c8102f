pub mod config;
pub mod corpus;
pub mod courier;
pub mod cyrus;
pub mod daemon;
pub mod dovecot;
pub mod fake_discord;
pub mod servers;

//! `mailbeacon setup --yes`, every answer a flag: a re-run keeping the user's edits, the
//! README's flags, a bot, a webhook Discord no longer knows.

use super::scripted_setup;
use crate::common::daemon::{temp_dir, BIN};
use crate::common::dovecot::{Dovecot, PASSWORD};
use crate::common::fake_discord::{Behaviour, FakeDiscord};

#[test]
fn setup_again_with_yes_keeps_what_it_does_not_ask_about() {
    let dovecot = Dovecot::start();
    let discord = FakeDiscord::start();
    let url = discord.webhook("1402", "setuptoken-d4e5f6", Behaviour::Ok);
    let channel = discord.webhook_channel("setuptoken-d4e5f6");
    let dir = temp_dir("setup-yes");
    let config = dir.join("mailbeacon.toml");
    let answers = dir.join("answers");
    std::fs::create_dir_all(&answers).expect("mkdir");
    std::fs::write(answers.join("password"), format!("{PASSWORD}\n")).expect("write");
    std::fs::write(answers.join("webhook"), format!("{url}\n")).expect("write");
    let scripted = |extra: &[&str]| -> std::process::Output {
        scripted_setup(&dir, &dovecot)
            .arg("--password-file")
            .arg(answers.join("password"))
            .arg("--webhook-file")
            .arg(answers.join("webhook"))
            .args(extra)
            .output()
            .expect("run setup")
    };

    // Scripted without the user name: it says which flag is missing and writes nothing.
    let out = scripted(&[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("give --username"), "{stderr}");
    assert!(!config.exists(), "nothing is written by a failed setup");

    let out = scripted(&[
        "--username",
        "alice",
        "--buckets",
        "customers",
        "--customers",
        "support@shop.example",
    ]);
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        discord.messages_in(&channel).is_empty(),
        "no test message unless asked"
    );

    // The user edits the file by hand, then runs setup again for the payments bucket.
    let mine = std::fs::read_to_string(&config).expect("config");
    let mine = format!("# my Pi in the hall\nspool_max_mb = 64\n{mine}").replace(
        "[[account]]\nname = \"home\"\n",
        "[[account]]\nname = \"home\"\nfolders = [\"INBOX\"] # only the inbox\n",
    );
    std::fs::write(&config, &mine).expect("edit");
    let out = scripted(&[
        "--username",
        "alice",
        "--buckets",
        "payments",
        "--no-test-message",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("editing"), "{stdout}");
    let after = std::fs::read_to_string(&config).expect("config");
    assert!(
        after.starts_with("# my Pi in the hall\nspool_max_mb = 64\n"),
        "{after}"
    );
    assert!(
        after.contains("folders = [\"INBOX\"] # only the inbox"),
        "{after}"
    );
    assert!(after.contains("name = \"customers\""), "{after}");
    assert!(after.contains("name = \"payments\""), "{after}");
    assert_eq!(after.matches("[[account]]").count(), 1, "{after}");
    assert_eq!(after.matches("name = \"other\"").count(), 1, "{after}");
    let at = |name: &str| after.find(&format!("name = \"{name}\"")).unwrap_or(0);
    assert!(
        at("other") > at("payments"),
        "everything else is the last bucket:\n{after}"
    );
}

/// The README's scripted setup: every flag it uses is one `setup` has.
#[test]
fn the_readme_scripted_setup_uses_real_flags() {
    let readme = include_str!("../../README.md");
    let start = readme
        .find("mailbeacon setup --yes")
        .expect("the README shows a scripted setup");
    let command = &readme[start..];
    let command = &command[..command.find("```").unwrap_or(command.len())];
    let help = std::process::Command::new(BIN)
        .args(["setup", "--help"])
        .output()
        .expect("setup --help");
    let help = String::from_utf8_lossy(&help.stdout).to_string();
    let flags: Vec<&str> = command
        .split_whitespace()
        .filter(|w| w.starts_with("--"))
        .collect();
    assert!(flags.len() >= 8, "{command}");
    for flag in flags {
        assert!(
            help.contains(&format!("{flag} ")) || help.contains(&format!("{flag}\n")),
            "{flag} is no flag of setup:\n{help}"
        );
    }
}

#[test]
fn setup_scripted_for_a_bot_posts_its_test_message_and_keeps_the_token_in_a_file() {
    let dovecot = Dovecot::start();
    let discord = FakeDiscord::start();
    let token = "bot-token-g7h8i9";
    discord.bot(token);
    let channel = "1460000000000000001";
    discord.channel(channel, Behaviour::Ok);
    let dir = temp_dir("setup-bot");
    let config = dir.join("mailbeacon.toml");
    std::fs::write(dir.join("given-password"), PASSWORD).expect("write");
    std::fs::write(dir.join("given-token"), token).expect("write");
    let path = |name: &str| dir.join(name).to_str().expect("utf-8").to_string();
    let out = scripted_setup(&dir, &dovecot)
        .args([
            "--username",
            "alice",
            "--password-file",
            &path("given-password"),
        ])
        .args(["--discord", "bot", "--bot-token-file", &path("given-token")])
        .args([
            "--channel",
            channel,
            "--noise-channel",
            "none",
            "--test-message",
        ])
        .args(["--api-base", &format!("{}/api/v10", discord.base())])
        .args(["--buckets", "none"])
        .output()
        .expect("run setup");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("ok   sink alerts: test message posted"),
        "{stdout}"
    );
    assert_eq!(discord.messages_in(channel).len(), 1, "{stdout}");
    let text = std::fs::read_to_string(&config).expect("config");
    assert!(!text.contains(token), "{text}");
    assert!(
        text.contains("kind = \"bot\"") && text.contains(&format!("channel_id = \"{channel}\"")),
        "{text}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("bot.token")).expect("token file"),
        format!("{token}\n")
    );
    assert!(!stdout.contains(token), "{stdout}");
}

#[test]
fn setup_with_a_webhook_discord_no_longer_knows_says_what_to_do_and_writes_nothing() {
    let dovecot = Dovecot::start();
    let discord = FakeDiscord::start();
    let gone = format!("{}/api/webhooks/1409/never-made", discord.base());
    let dir = temp_dir("setup-gone");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(dir.join("given-password"), PASSWORD).expect("write");
    std::fs::write(dir.join("given-webhook"), &gone).expect("write");
    let out = scripted_setup(&dir, &dovecot)
        .args(["--username", "alice", "--password-file"])
        .arg(dir.join("given-password"))
        .arg("--webhook-file")
        .arg(dir.join("given-webhook"))
        .output()
        .expect("run setup");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("copy it again"), "{stderr}");
    assert!(
        !stderr.contains("never-made"),
        "no secret in the error: {stderr}"
    );
    assert!(!dir.join("mailbeacon.toml").exists());
}

//! The message users want, end to end with a real Dovecot and the fake Discord: forum channels
//! (a webhook without `forum = true` is refused with code 220001 and the sink says what to set;
//! with it each mail is a post named after it, tagged per bucket, or a reply in the bucket's
//! thread; a bot's probe recognises a forum, and its posts go to the threads endpoint), the
//! link back to the mail built from an encoded Message-ID, and an HTML-only newsletter shown
//! as its text.

use crate::common::config::Config;
use crate::common::daemon::{cli, mail, wait_until};
use crate::common::dovecot::Dovecot;
use crate::common::fake_discord::{Behaviour, FakeDiscord};
use std::time::Duration;

fn deliver(dovecot: &Dovecot, subject: &str, id: &str) {
    dovecot.deliver(
        "alice",
        "INBOX",
        &mail("Stripe <s@stripe.com>", subject, "paid", id),
    );
}

#[test]
fn a_forum_webhook_needs_forum_true_then_each_mail_is_a_tagged_post_or_a_thread_reply() {
    let dovecot = Dovecot::start();
    let discord = FakeDiscord::start();
    let url = discord.webhook("1", "forumTOKEN", Behaviour::Ok);
    let forum = discord.webhook_channel("forumTOKEN");
    discord.make_forum(&forum);

    // Not set up for a forum: Discord refuses (220001), the sink is dead and says what to set.
    let dir = crate::common::daemon::temp_dir("forum");
    let thread = discord.thread(&forum);
    let sink = |extra: &str| {
        format!("[[sink]]\nname = \"alerts\"\nkind = \"webhook\"\nurl = \"{url}\"\n{extra}")
    };
    let buckets =
        "[[bucket]]\nname = \"stripe\"\nsinks = [\"alerts\"]\nrules = [{ subject = 'payment' }]";
    let daemon = Config::new(&dir, &dovecot)
        .sinks(&sink(""))
        .buckets(&format!(
            "{buckets}\n[[bucket]]\nname = \"unknown\"\nsinks = [\"alerts\"]"
        ))
        .start_watching();
    deliver(&dovecot, "First payment", "p1@stripe.com");
    wait_until(Duration::from_secs(20), "the sink dead", || {
        daemon.sink_state("alerts") == "dead"
    });
    let status = daemon.status();
    let error = status["sinks"][0]["last_error"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(
        error.contains("220001") && error.contains("forum = true"),
        "{status}"
    );

    // forum = true and a reload: each mail its own post, named after its subject, with its
    // bucket's tags — the held one first; the bucket with a thread_id replies in that thread.
    Config::new(&dir, &dovecot)
        .sinks(&sink("forum = true\nthread_name = \"{bucket}: {subject}\""))
        .buckets(&format!(
            "{buckets}\napplied_tags = [\"7001\"]\n[[bucket]]\nname = \"unknown\"\nsinks = [\"alerts\"]\nthread_id = \"{thread}\""
        ))
        .write();
    daemon.signal(libc::SIGHUP);
    deliver(&dovecot, "Second payment", "p2@stripe.com");
    deliver(&dovecot, "Lunch?", "l1@example.org");
    wait_until(Duration::from_secs(30), "two posts and a reply", || {
        discord.posts_in(&forum).len() >= 2 && !discord.titles_in(&thread).is_empty()
    });
    let posts = discord.posts_in(&forum);
    let names: Vec<&str> = posts.iter().map(|p| p.1.as_str()).collect();
    assert_eq!(names, ["stripe: First payment", "stripe: Second payment"]);
    assert!(posts.iter().all(|p| p.2 == ["7001"]), "{posts:?}");
    assert_eq!(discord.titles_in(&thread), ["Lunch?"]);
    wait_until(Duration::from_secs(10), "the sink ok", || {
        daemon.sink_state("alerts") == "ok"
    });
}

#[test]
fn a_bot_probe_recognises_a_forum_and_a_forum_bot_sink_starts_posts() {
    let dovecot = Dovecot::start();
    let discord = FakeDiscord::start();
    discord.bot("botTOKEN");
    discord.make_forum("5100");
    let bot = |extra: &str| {
        format!(
            "[[sink]]\nname = \"forum\"\nkind = \"bot\"\nchannel_id = \"5100\"\ntoken = \"botTOKEN\"\napi_base = \"{}/api/v10\"\n{extra}",
            discord.base()
        )
    };
    let buckets = "[[bucket]]\nname = \"unknown\"\nsinks = [\"forum\"]\napplied_tags = [\"42\"]";
    let plain = Config::temp("forum-bot-probe", &dovecot)
        .sinks(&bot(""))
        .buckets("[[bucket]]\nname = \"unknown\"\nsinks = [\"forum\"]");
    let out = cli(&plain.write(), &["check", "--probe"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        !out.status.success()
            && text.contains(
                "FAIL sink forum: the channel is a forum or media channel: set forum = true"
            ),
        "{text}"
    );

    let daemon = Config::temp("forum-bot", &dovecot)
        .sinks(&bot("forum = true"))
        .buckets(buckets)
        .start_watching();
    deliver(&dovecot, "Invoice 7", "i7@stripe.com");
    wait_until(Duration::from_secs(20), "a post", || {
        !discord.posts_in("5100").is_empty()
    });
    let posts = discord.posts_in("5100");
    assert_eq!(posts[0].1, "Invoice 7");
    assert_eq!(posts[0].2, ["42"]);
    assert_eq!(discord.titles_in(&posts[0].0), ["Invoice 7"]);
    wait_until(Duration::from_secs(10), "delivered", || {
        daemon.dump().iter().any(|i| i["state"] == "delivered")
    });
}

#[test]
fn the_title_links_to_the_mail_and_an_html_newsletter_shows_its_text() {
    let dovecot = Dovecot::start();
    let discord = FakeDiscord::start();
    let url = discord.webhook("1", "linkTOKEN", Behaviour::Ok);
    let daemon = Config::temp("link", &dovecot)
        .account("open_url = \"https://mail.example/open?id={message_id}&in={folder}\"")
        .webhook(&url)
        .start_watching();
    deliver(&dovecot, "Receipt", "a+b/c=d@stripe.com");
    let html = "From: News <news@shop.example>\r\nSubject: Weekly news\r\nMessage-ID: <n1@shop.example>\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<html><head><style>p{color:red}</style></head><body><p>Big &amp; bold&nbsp;savings</p><script>track()</script></body></html>\r\n";
    dovecot.deliver("alice", "INBOX", html.as_bytes());
    let channel = discord.webhook_channel("linkTOKEN");
    wait_until(Duration::from_secs(20), "both mails", || {
        discord.titles_in(&channel).len() == 2
    });
    let embeds: Vec<serde_json::Value> = discord
        .messages_in(&channel)
        .iter()
        .flat_map(|m| m.body["embeds"].as_array().cloned().unwrap_or_default())
        .collect();
    let receipt = embeds
        .iter()
        .find(|e| e["title"] == "Receipt")
        .expect("receipt");
    assert_eq!(
        receipt["url"],
        "https://mail.example/open?id=a%2Bb%2Fc%3Dd%40stripe.com&in=INBOX"
    );
    let news = embeds
        .iter()
        .find(|e| e["title"] == "Weekly news")
        .expect("news");
    assert_eq!(news["description"], "Big & bold savings", "{news}");
    assert!(
        daemon.log_text().contains("spooled"),
        "{}",
        daemon.log_text()
    );
}

#[test]
fn attachments_are_listed_from_the_structure_and_inline_pixels_are_not() {
    let dovecot = Dovecot::start();
    let discord = FakeDiscord::start();
    let url = discord.webhook("1", "attTOKEN", Behaviour::Ok);
    let _daemon = Config::temp("attachments", &dovecot)
        .webhook(&url)
        .start_watching();
    let pdf = "JVBERi0xLjQK".repeat(2000); // ~24 KB of base64, ~18 KB decoded
    let raw = format!(
        "From: Billing <billing@shop.example>\r\nSubject: Your invoice\r\nMessage-ID: <inv@shop.example>\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n\
         --b1\r\nContent-Type: multipart/related; boundary=\"b2\"\r\n\r\n\
         --b2\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>See the attached invoice.</p><img src=\"cid:px\">\r\n\
         --b2\r\nContent-Type: image/gif; name=\"px.gif\"\r\nContent-ID: <px>\r\nContent-Disposition: inline\r\nContent-Transfer-Encoding: base64\r\n\r\nR0lGODlhAQABAAAAACw=\r\n\
         --b2--\r\n\
         --b1\r\nContent-Type: application/pdf; name=\"=?UTF-8?B?UmVjaG51bmcg4oKs?=.pdf\"\r\nContent-Disposition: attachment; filename*=UTF-8''Rechnung%20%E2%82%AC.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n{pdf}\r\n\
         --b1--\r\n"
    );
    dovecot.deliver("alice", "INBOX", raw.as_bytes());
    let channel = discord.webhook_channel("attTOKEN");
    wait_until(Duration::from_secs(20), "the invoice", || {
        !discord.titles_in(&channel).is_empty()
    });
    let message = &discord.messages_in(&channel)[0];
    let fields = message.body["embeds"][0]["fields"].to_string();
    assert!(
        fields.contains("Attachments")
            && fields.contains("Rechnung €.pdf · application/pdf · 1")
            && fields.contains(" KB"),
        "{fields}"
    );
    assert!(!fields.contains("px.gif"), "{fields}");
    assert_eq!(
        message.body["embeds"][0]["description"], "See the attached invoice.",
        "{}",
        message.body
    );
}

/// A mail with one base64 attachment `name` holding `data`.
fn with_attachment(subject: &str, name: &str, data: &[u8]) -> Vec<u8> {
    use base64::Engine;
    let encoded = base64::engine::general_purpose::STANDARD.encode(data);
    let lines: Vec<&str> = encoded
        .as_bytes()
        .chunks(76)
        .map(|c| std::str::from_utf8(c).unwrap_or(""))
        .collect();
    format!(
        "From: Billing <billing@shop.example>\r\nSubject: {subject}\r\nMessage-ID: <{subject}@shop.example>\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n\
         --b1\r\nContent-Type: text/plain\r\n\r\nAttached.\r\n\
         --b1\r\nContent-Type: application/pdf; name=\"{name}\"\r\nContent-Disposition: attachment; filename=\"{name}\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n\
         --b1--\r\n",
        lines.join("\r\n")
    )
    .into_bytes()
}

#[test]
fn uploads_arrive_as_files_and_what_cannot_go_is_said() {
    let dovecot = Dovecot::start();
    let discord = FakeDiscord::start();
    let url = discord.webhook("1", "upTOKEN", Behaviour::Ok);
    let _daemon = Config::temp("upload", &dovecot)
        .sinks(&format!("[[sink]]\nname = \"alerts\"\nkind = \"webhook\"\nurl = \"{url}\""))
        .buckets("[[bucket]]\nname = \"unknown\"\nsinks = [\"alerts\"]\nattachments = \"upload\"\nattachments_max = \"64KiB\"")
        .start_watching();
    let channel = discord.webhook_channel("upTOKEN");
    let pdf: Vec<u8> = (0..20_000u32).map(|i| (i * 7 % 251) as u8).collect();
    dovecot.deliver(
        "alice",
        "INBOX",
        &with_attachment("inv1", "Rechnung 1.pdf", &pdf),
    );
    wait_until(Duration::from_secs(20), "the first message", || {
        discord.messages_in(&channel).len() == 1
    });
    let first = &discord.messages_in(&channel)[0];
    assert_eq!(first.files.len(), 1, "{:?}", first.body);
    assert_eq!(first.files[0].0, "Rechnung 1.pdf");
    assert_eq!(first.files[0].1, "application/pdf");
    assert_eq!(first.files[0].2, pdf, "the file arrives byte for byte");
    assert_eq!(first.body["attachments"][0]["filename"], "Rechnung 1.pdf");

    // Over attachments_max: not fetched, and the message says so.
    let big: Vec<u8> = vec![42; 100_000];
    dovecot.deliver("alice", "INBOX", &with_attachment("inv2", "big.pdf", &big));
    // Under the limit, but more than Discord takes: sent again without it, and said.
    discord.set_upload_limit(1000);
    dovecot.deliver(
        "alice",
        "INBOX",
        &with_attachment("inv3", "small.pdf", &pdf),
    );
    wait_until(Duration::from_secs(20), "three messages", || {
        discord.messages_in(&channel).len() == 3
    });
    let all = discord.messages_in(&channel);
    let content = |i: usize| all[i].body["content"].as_str().unwrap_or("").to_string();
    assert!(
        all[1].files.is_empty()
            && content(1).contains("not uploaded: big.pdf (over attachments_max)"),
        "{}",
        content(1)
    );
    assert!(
        all[2].files.is_empty() && content(2).contains("Discord refused them as too large"),
        "{}",
        content(2)
    );
    let refused = discord
        .requests()
        .iter()
        .filter(|r| r.status == 413)
        .count();
    assert_eq!(refused, 1, "one refusal, then the message alone");
}

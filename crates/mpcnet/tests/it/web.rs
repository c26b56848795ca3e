//! The lobby's web pages in headless Chromium (Debian's `chromium`, driven through
//! `chromedriver`): a session is created in the page, its QR code is read back, three parties
//! run it from terminals with `mpcnet run`, and the live page follows it to the end.
//!
//! Needs /usr/bin/chromium and /usr/bin/chromedriver (`.ci/run` installs them); without them
//! the tests say so and pass, unless `MPCNET_REQUIRE_BROWSER=1` (set by CI) makes that a failure.
//! `MPCNET_SCREENSHOTS=DIR` saves a screenshot of each page there (how `docs/` was made).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use mpcnet_proto::Invite;

use crate::support::*;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// A session name that would be markup if a page used it as HTML.
const HTML_NAME: &str = "<b>pay</b> <img src=x> survey";
/// The creator's name, markup too.
const CREATOR_NAME: &str = "<i>alice</i>";
/// How long the page may take to show a step.
const PAGE_LIMIT: Duration = Duration::from_secs(20);

/// Whether the browser is here; without it the caller skips (or fails, if CI requires it).
fn browser_present() -> bool {
    let present = Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists();
    if !present {
        assert!(
            std::env::var("MPCNET_REQUIRE_BROWSER").as_deref() != Ok("1"),
            "MPCNET_REQUIRE_BROWSER=1 but {CHROMIUM} or {CHROMEDRIVER} is missing (apt-get install chromium chromium-driver)"
        );
        eprintln!(
            "skipped: no {CHROMIUM} or {CHROMEDRIVER} (apt-get install chromium chromium-driver)"
        );
    }
    present
}

/// Headless Chromium under chromedriver, with a fresh profile; [`Browser::close`] ends both.
struct Browser {
    client: Client,
    driver: Child,
    driver_port: u16,
    _profile: tempfile::TempDir,
}

impl Browser {
    async fn start() -> Self {
        let driver_port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("free port")
            .port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={driver_port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let waited = std::time::Instant::now();
        while tokio::net::TcpStream::connect(("127.0.0.1", driver_port))
            .await
            .is_err()
        {
            assert!(waited.elapsed() < PAGE_LIMIT, "chromedriver never listened");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let profile = tempfile::tempdir().expect("profile dir");
        // The flags keep Chromium off the network except for the pages it is sent to; the
        // server's certificate is self-signed (the terminals pin it; the browser is told to accept it).
        let capabilities = serde_json::json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--ignore-certificate-errors",
                    "--window-size=1200,1400",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            },
        });
        let serde_json::Value::Object(capabilities) = capabilities else {
            unreachable!("a JSON object")
        };
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{driver_port}"))
            .await
            .expect("a WebDriver session");
        Self {
            client,
            driver,
            driver_port,
            _profile: profile,
        }
    }

    /// Ends the WebDriver session (and so Chromium); dropping the browser then stops chromedriver.
    async fn close(self) {
        let _ = self.client.clone().close().await;
    }

    async fn find(&self, css: &str) -> Element {
        self.client
            .wait()
            .at_most(PAGE_LIMIT)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|error| panic!("no {css} on the page: {error}"))
    }

    /// Replaces what the input `css` holds by `value` (for a file input: chooses that file).
    async fn type_into(&self, css: &str, value: &str) {
        let input = self.find(css).await;
        input.clear().await.expect("input cleared");
        input.send_keys(value).await.expect("typed");
    }

    async fn text(&self, css: &str) -> String {
        self.find(css).await.text().await.expect("element text")
    }

    /// Waits until the text of `css` satisfies `done`; returns it.
    async fn wait_text(&self, css: &str, limit: Duration, done: impl Fn(&str) -> bool) -> String {
        let waited = std::time::Instant::now();
        loop {
            // A page that rewrites itself may replace the element between finding and reading
            // it (a stale element): that is "not yet", look again.
            let text = self.find(css).await.text().await.unwrap_or_default();
            if done(&text) {
                return text;
            }
            assert!(waited.elapsed() < limit, "{css} still shows {text:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Whether the element `css` is displayed.
    async fn shown(&self, css: &str) -> bool {
        self.find(css)
            .await
            .is_displayed()
            .await
            .expect("displayed")
    }

    /// How many elements match `css`.
    async fn count(&self, css: &str) -> usize {
        self.client
            .find_all(Locator::Css(css))
            .await
            .expect("find")
            .len()
    }

    /// The value of attribute `name` of every element matching `css`.
    /// Read again if the page replaced an element meanwhile (a stale element).
    async fn attributes(&self, css: &str, name: &str) -> Vec<String> {
        let waited = std::time::Instant::now();
        'read: loop {
            let mut values = Vec::new();
            for element in self.client.find_all(Locator::Css(css)).await.expect("find") {
                match element.attr(name).await {
                    Ok(value) => values.push(value.unwrap_or_default()),
                    Err(error) => {
                        assert!(waited.elapsed() < PAGE_LIMIT, "{css}: {error}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue 'read;
                    }
                }
            }
            return values;
        }
    }

    /// Saves a screenshot of the page as `name` in `MPCNET_SCREENSHOTS`, if set.
    async fn keep_screenshot(&self, name: &str) {
        let Some(dir) = std::env::var_os("MPCNET_SCREENSHOTS") else {
            return;
        };
        let png = self.client.screenshot().await.expect("screenshot");
        std::fs::write(PathBuf::from(dir).join(name), png).expect("screenshot saved");
    }
}

impl Drop for Browser {
    /// Stops chromedriver, even when a test failed half-way. Killing it alone would leave
    /// Chromium running: its `/shutdown` first ends the browsers it started.
    fn drop(&mut self) {
        use std::io::{Read as _, Write as _};
        if let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", self.driver_port)) {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(3)));
            let request = "GET /shutdown HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
            if stream.write_all(request.as_bytes()).is_ok() {
                let _ = stream.read_to_end(&mut Vec::new());
            }
        }
        let waited = std::time::Instant::now();
        while matches!(self.driver.try_wait(), Ok(None))
            && waited.elapsed() < Duration::from_secs(3)
        {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// Decodes the one QR code in a PNG screenshot.
fn read_qr(png: &[u8]) -> String {
    let mut decoder = png::Decoder::new(std::io::Cursor::new(png));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder.read_info().expect("PNG header");
    let mut pixels = vec![0; reader.output_buffer_size().expect("PNG size")];
    let frame = reader.next_frame(&mut pixels).expect("PNG frame");
    let channels = frame.color_type.samples();
    let (width, height) = (frame.width as usize, frame.height as usize);
    let mut image = rqrr::PreparedImage::prepare_from_greyscale(width, height, |x, y| {
        let at = (y * width + x) * channels;
        let rgb = &pixels[at..at + channels.min(3)];
        (rgb.iter().map(|&v| u32::from(v)).sum::<u32>() / rgb.len() as u32) as u8
    });
    let grids = image.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code in the screenshot");
    grids[0].decode().expect("the QR code decodes").1
}

/// The server's origin (its address without the pin).
fn origin(server: &Server) -> String {
    server.address.split('#').next().expect("origin").to_owned()
}

/// How `secret` could appear in text: raw, hex, and base64url at each of the three byte
/// alignments it may have inside a longer encoded string (an invite, say).
fn written_forms(secret: &[u8]) -> Vec<Vec<u8>> {
    let mut forms = vec![
        secret.to_vec(),
        data_encoding::HEXLOWER.encode(secret).into_bytes(),
    ];
    for offset in 0..3 {
        let mut shifted = vec![0; offset];
        shifted.extend_from_slice(secret);
        let encoded = data_encoding::BASE64URL_NOPAD.encode(&shifted);
        // The characters that depend on the secret's bytes alone.
        forms.push(encoded.as_bytes()[offset.div_ceil(3) * 4..encoded.len() - 4].to_vec());
    }
    forms
}

/// Whether any of `forms` occurs in a file under `dir`.
fn found_in_files(dir: &Path, forms: &[Vec<u8>]) -> bool {
    std::fs::read_dir(dir).expect("dir").any(|entry| {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            return found_in_files(&path, forms);
        }
        let bytes = std::fs::read(&path).unwrap_or_default();
        forms.iter().any(|form| {
            bytes
                .windows(form.len())
                .any(|window| window == form.as_slice())
        })
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_made_in_the_page_runs_from_terminals_and_the_page_follows_it() {
    if !browser_present() {
        return;
    }
    let root = tempfile::tempdir().expect("tempdir");
    let server = Server::start(&root.path().join("server"), "127.0.0.1:0");
    let origin = origin(&server);
    let browser = Browser::start().await;

    // The create page: the program from the server's catalog; the browser makes the keys,
    // signs and uploads.
    browser
        .client
        .goto(&format!("{origin}/"))
        .await
        .expect("create page");
    for (field, value) in [
        ("name", HTML_NAME),
        ("parties", "3"),
        ("party-name", CREATOR_NAME),
    ] {
        browser
            .type_into(&format!("input[name={field}]"), value)
            .await;
    }
    browser
        .find("select[name=example] option[value=secret-mean]")
        .await
        .click()
        .await
        .expect("the catalog's secret-mean chosen");
    browser.keep_screenshot("web-create.png").await;
    browser
        .find("button[type=submit]")
        .await
        .click()
        .await
        .expect("submit");

    // The invite page: link, QR code, the creator's own command.
    let invite_text = browser
        .wait_text("#invite-link", PAGE_LIMIT, |t| !t.is_empty())
        .await;
    let url = browser.client.current_url().await.expect("url");
    assert!(url.path().ends_with("/share"), "{url}");
    assert!(
        url.fragment().is_some_and(|f| f.starts_with("mpcnet1o.")),
        "{url}"
    );
    let invite: Invite = invite_text
        .parse()
        .expect("the page's invite parses and checks");
    assert!(
        invite_text.starts_with(&format!("{origin}/s/")),
        "{invite_text}"
    );
    let qr = browser
        .find("#qr svg")
        .await
        .screenshot()
        .await
        .expect("QR screenshot");
    assert_eq!(read_qr(&qr), invite_text, "the QR code holds the invite");
    let invite_command = browser.text("#invite-command").await;
    assert_eq!(invite_command, format!("mpcnet run '{invite_text}'"));
    let creator_command = browser.text("#creator-command").await;
    let creator_link = creator_command
        .strip_prefix("MPCNET_INVITE='")
        .and_then(|rest| rest.strip_suffix("' mpcnet run"))
        .expect("the creator's command")
        .to_owned();
    let link: mpcnet_proto::CreatorLink = creator_link.parse().expect("creator link parses");
    assert_eq!(link.invite, invite);
    // The session name is text, not markup.
    browser
        .wait_text("#session-name", PAGE_LIMIT, |t| t == HTML_NAME)
        .await;
    assert_eq!(
        browser.count("#session-name *").await,
        0,
        "markup in the invite page's name"
    );
    browser
        .wait_text("#joined", PAGE_LIMIT, |t| t.starts_with("1 of 3"))
        .await;
    browser.keep_screenshot("web-invite.png").await;

    // The live page, opened from the invite as a party would, shows the command to join.
    browser
        .client
        .goto(&invite_text)
        .await
        .expect("session page");
    let run_command_shown = browser
        .wait_text("#run-command", PAGE_LIMIT, |t| !t.is_empty())
        .await;
    assert_eq!(run_command_shown, invite_command);
    browser
        .wait_text("#phase", PAGE_LIMIT, |t| t == "waiting for parties")
        .await;

    // Three terminals: the creator with its link, bob and carol with the invite.
    // The creator's command as the page gives it: the link in MPCNET_INVITE.
    let mut creator_run = mpcnet_command(
        &root.path().join("alice"),
        &["run", "--yes", "--bind", "127.0.0.1:0", "--timeout", "60s"],
    );
    creator_run.env("MPCNET_INVITE", &creator_link);
    let commands = vec![
        creator_run,
        run_command(root.path(), &invite_text, "bob", &[]),
        run_command(root.path(), &invite_text, "carol", &[]),
    ];
    let finished = tokio::task::spawn_blocking(move || run_all(commands, RUN_LIMIT))
        .await
        .expect("runs");
    assert_all_answer(&finished, "RESULT sum=60 mean=20 parties=3");
    browser
        .wait_text("#phase", PAGE_LIMIT, |t| t == "finished")
        .await;
    let milestones = browser.attributes("#timeline li", "data-milestone").await;
    assert_eq!(milestones, ["full", "sealed", "running", "finished"]);
    let fingerprint = browser.text("#fingerprint").await;
    assert!(
        finished[1]
            .stderr
            .contains(&format!("fingerprint {fingerprint} ")),
        "the page's fingerprint {fingerprint} is the one bob was told:\n{}",
        finished[1].stderr
    );
    assert_eq!(
        browser.attributes("#parties tr", "data-run").await,
        ["finished", "finished", "finished"]
    );
    let mut pairs = browser.attributes("#links tr", "data-link").await;
    pairs.sort();
    assert_eq!(pairs, ["0-1", "0-2", "1-2"], "one link per pair");
    for path in browser.attributes("#links tr", "data-path").await {
        assert!(path == "direct" || path == "relayed", "{path}");
    }
    for row in browser
        .client
        .find_all(Locator::Css("#links tr"))
        .await
        .expect("rows")
    {
        let rtt = row
            .find(Locator::Css("td:last-child"))
            .await
            .expect("rtt cell");
        assert!(rtt.text().await.expect("text").ends_with(" ms"));
    }
    assert_eq!(browser.text("#session-name").await, HTML_NAME);
    let creator_cell = browser.text("#parties tr:first-child .party-name").await;
    assert!(creator_cell.starts_with(CREATOR_NAME), "{creator_cell}");
    assert_eq!(
        browser.count("#parties i").await,
        0,
        "markup in a party name"
    );
    assert_eq!(
        browser.count("#session-name *").await,
        0,
        "markup in the session page's name"
    );
    browser.keep_screenshot("web-session.png").await;

    // A damaged creator link, or a session the server does not have, gets a clear page.
    let damaged = creator_link.replace("#mpcnet1o.", "#mpcnet1o.AAAA");
    let share = damaged.replacen("#", "/share#", 1);
    browser.client.goto(&share).await.expect("share page");
    browser
        .wait_text("#share-error", PAGE_LIMIT, |t| {
            t.contains("not a creator link")
        })
        .await;
    // An invite passed off as a creator link decodes, but holds no creator's key.
    let forged = invite_text.replacen("#mpcnet1.", "/share#mpcnet1o.", 1);
    browser.client.goto(&forged).await.expect("forged link");
    browser
        .wait_text("h1", PAGE_LIMIT, |t| t == "Not this session's creator link")
        .await;
    let forged_live = invite_text.replacen("#mpcnet1.", "#mpcnet1o.", 1);
    browser
        .client
        .goto(&forged_live)
        .await
        .expect("forged live link");
    browser
        .wait_text("#gone", PAGE_LIMIT, |t| t.contains("no creator link"))
        .await;
    assert!(!browser.shown("#command").await, "a command is offered");
    // An invite link edited to carry shell code is refused, not offered as a command to copy.
    let lobby_path = invite_text.split('#').next().expect("path");
    let hostile = format!("{lobby_path}#mpcnet1.x'$(touch${{IFS}}/tmp/owned)'");
    browser.client.goto(&hostile).await.expect("hostile link");
    browser
        .wait_text("#gone", PAGE_LIMIT, |t| t.contains("damaged"))
        .await;
    assert!(!browser.shown("#command").await, "a command is offered");
    assert!(browser.text("#run-command").await.is_empty());
    let unknown = format!("{origin}/s/{}", "a".repeat(26));
    browser.client.goto(&unknown).await.expect("unknown page");
    assert_eq!(browser.text("h1").await, "No such session");
    browser.close().await;

    // Neither the join secret nor the creator's key reached anything the server kept or
    // logged (its database, certificate and log are all in its data folder).
    let server_dir = root.path().join("server");
    assert!(std::fs::metadata(server_dir.join("server.log")).is_ok_and(|log| log.len() > 0));
    let creator_seed = link.creator_key.to_secret_bytes();
    for secret in [invite.secret.to_bytes().as_slice(), creator_seed.as_slice()] {
        assert!(!found_in_files(&server_dir, &written_forms(secret)));
    }
    // The check itself finds a secret where there is one: the invite holds the join secret.
    let invite_file = root.path().join("invite-copy");
    std::fs::create_dir(&invite_file).expect("dir");
    std::fs::write(invite_file.join("invite.txt"), &invite_text).expect("write");
    assert!(found_in_files(
        &invite_file,
        &written_forms(&invite.secret.to_bytes())
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_shows_which_party_failed_and_how_the_others_stopped() {
    if !browser_present() {
        return;
    }
    let root = tempfile::tempdir().expect("tempdir");
    let server = Server::start(&root.path().join("server"), "127.0.0.1:0");
    let program = root.path().join("fails_at_one.py");
    std::fs::write(&program, FAILS_AT_PARTY_ONE).expect("program");
    let browser = Browser::start().await;

    // A program larger than the server takes is refused in the page, before any upload.
    let too_large = root.path().join("too_large.py");
    std::fs::write(&too_large, vec![b'#'; 8 * 1024 * 1024 + 1]).expect("large file");
    let origin = origin(&server);
    browser
        .client
        .goto(&format!("{origin}/"))
        .await
        .expect("create page");
    let too_large = too_large.to_str().expect("utf-8 path");
    browser.type_into("input[name=program]", too_large).await;
    browser
        .find("button[type=submit]")
        .await
        .click()
        .await
        .expect("submit");
    browser
        .wait_text("#create-status", PAGE_LIMIT, |t| {
            t.contains("has 8388609 bytes; this server takes at most 8388608")
        })
        .await;

    // Made from the terminal this time: its invite is the session page's link too.
    let invite = create_session(&server, root.path(), &program, &[]);
    browser.client.goto(&invite).await.expect("session page");
    let command = browser
        .wait_text("#run-command", PAGE_LIMIT, |t| !t.is_empty())
        .await;
    assert_eq!(command, format!("mpcnet run '{invite}'"));
    let commands = PARTIES
        .iter()
        .map(|name| run_command(root.path(), &invite, name, &[]))
        .collect();
    tokio::task::spawn_blocking(move || run_all(commands, RUN_LIMIT))
        .await
        .expect("runs");
    browser
        .wait_text("#phase", PAGE_LIMIT, |t| t == "failed")
        .await;
    // Party 1's program exited with 3; the other two stopped because of it and said why.
    browser
        .wait_text(
            "#parties tr[data-seat=\"1\"] td:last-child",
            PAGE_LIMIT,
            |t| t == "finished with exit code 3",
        )
        .await;
    for seat in [0, 2] {
        let css = format!("#parties tr[data-seat=\"{seat}\"] td:last-child");
        browser
            .wait_text(&css, PAGE_LIMIT, |t| {
                t.starts_with("failed: ")
                    && blamed_party(t).is_some_and(|p| p.starts_with("party 1 ("))
            })
            .await;
    }
    assert_eq!(
        browser.attributes("#timeline li", "data-milestone").await,
        ["full", "sealed", "running", "failed"]
    );
    browser.close().await;
}

/// A bundle made by `mpcnet pack` is created in the page with its entry point (without one the
/// page asks for it); a party's terminal verifies it as the folder's bundle.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bundle_made_by_pack_is_created_in_the_page() {
    if !browser_present() {
        return;
    }
    let root = tempfile::tempdir().expect("tempdir");
    let server = Server::start(&root.path().join("server"), "127.0.0.1:0");
    let bundle = root.path().join("survey.tar");
    let bundle = bundle.to_str().expect("utf-8 path");
    let survey = example("survey");
    let packed = succeed(mpcnet(
        &root.path().join("packer"),
        &["pack", survey.to_str().expect("utf-8"), "--out", bundle],
    ));
    let sha = packed.trim().rsplit_once("sha256 ").expect("sha256").1;
    let browser = Browser::start().await;
    let origin = origin(&server);
    browser
        .client
        .goto(&format!("{origin}/"))
        .await
        .expect("create page");
    browser.type_into("input[name=program]", bundle).await;
    let submit = || async { browser.find("button[type=submit]").await.click().await };
    submit().await.expect("submit");
    browser
        .wait_text("#create-status", PAGE_LIMIT, |t| {
            t.contains("Name the bundle's entry point")
        })
        .await;
    browser.type_into("input[name=main]", "survey.py").await;
    submit().await.expect("submit");
    let invite = browser
        .wait_text("#invite-link", PAGE_LIMIT, |t| !t.is_empty())
        .await;
    let status = status_json(&root.path().join("bob"), &invite);
    assert_eq!(status["program"]["sha256"], sha);
    assert_eq!(status["program"]["main"], "survey.py");
    assert_eq!(status["program"]["file_name"], "survey");
    assert_eq!(status["name"], "survey");
    browser.close().await;
}

/// The catalog's auction chosen in the page: the offer the browser signs carries the bundle's
/// entry point and roles, a terminal verifies the role table, and the session page shows it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_catalogs_auction_is_created_in_the_page_with_its_roles() {
    if !browser_present() {
        return;
    }
    let root = tempfile::tempdir().expect("tempdir");
    let server = Server::start(&root.path().join("server"), "127.0.0.1:0");
    let browser = Browser::start().await;
    let origin = origin(&server);
    browser
        .client
        .goto(&format!("{origin}/"))
        .await
        .expect("create page");
    browser.type_into("input[name=parties]", "3").await;
    browser
        .find("select[name=example] option[value=auction]")
        .await
        .click()
        .await
        .expect("the catalog's auction chosen");
    browser
        .find("button[type=submit]")
        .await
        .click()
        .await
        .expect("submit");
    let invite = browser
        .wait_text("#invite-link", PAGE_LIMIT, |t| !t.is_empty())
        .await;
    let status = status_json(&root.path().join("bob"), &invite);
    assert_eq!(status["program"]["main"], "bidder.py");
    let rows: Vec<(&str, &str)> = status["roles"]
        .as_array()
        .expect("roles")
        .iter()
        .map(|row| {
            let text = |field: &str| row[field].as_str().expect("text");
            (text("seats_text"), text("main"))
        })
        .collect();
    assert_eq!(rows, [("0", "auctioneer.py"), ("1-2", "bidder.py")]);
    let lobby: Invite = invite.parse().expect("invite");
    browser
        .client
        .goto(&format!("{origin}/s/{}", lobby.lobby_id()))
        .await
        .expect("session page");
    browser
        .wait_text("#roles", PAGE_LIMIT, |t| {
            t.contains("seats 0 run auctioneer.py") && t.contains("the other seats run")
        })
        .await;
    browser.close().await;
}

/// A session named in the page for bob and carol, of an example from the server's catalog: the
/// offer the browser signed lists exactly what the Rust parser reads from the same text (after
/// the browser's creator key), only listed keys can join and in the list's seats, and the
/// session page shows who it waits for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_named_in_the_page_seats_only_the_listed_keys() {
    if !browser_present() {
        return;
    }
    let root = tempfile::tempdir().expect("tempdir");
    let server = Server::start(&root.path().join("server"), "127.0.0.1:0");
    let [bob, carol] = ["bob", "carol"].map(|name| identity_line(&root.path().join(name), name));
    let listed = format!("# the others\n{bob}\n\n{carol}\n");
    let browser = Browser::start().await;
    browser
        .client
        .goto(&format!("{}/", origin(&server)))
        .await
        .expect("create page");
    browser
        .find("select[name=example] option[value=secret-mean]")
        .await
        .click()
        .await
        .expect("the catalog's secret-mean chosen");
    browser.type_into("input[name=party-name]", "alice").await;
    browser.type_into("textarea[name=seats]", &listed).await;
    browser
        .find("button[type=submit]")
        .await
        .click()
        .await
        .expect("submit");
    let invite_text = browser
        .wait_text("#invite-link", PAGE_LIMIT, |t| !t.is_empty())
        .await;
    let invite: Invite = invite_text.parse().expect("the page's invite parses");

    let status = status_json(&root.path().join("bob"), &invite_text);
    assert_eq!(status["program"]["file_name"], "secret_mean.py");
    let seats = status["seats"].clone();
    let expected = mpcnet_proto::seats::parse_list(&listed).expect("the Rust parser reads it");
    let shown: Vec<(String, Option<String>)> = seats
        .as_array()
        .expect("seats")
        .iter()
        .map(|seat| {
            let name = seat["name"].as_str().map(str::to_owned);
            (seat["did"].as_str().expect("did").to_owned(), name)
        })
        .collect();
    let creator = (invite.creator.did_key(), None);
    let others = expected.iter().map(|seat| {
        (
            seat.key.did_key(),
            seat.name.as_ref().map(ToString::to_string),
        )
    });
    assert_eq!(
        shown,
        std::iter::once(creator).chain(others).collect::<Vec<_>>()
    );

    let dave = mpcnet(&root.path().join("dave"), &["join", &invite_text]);
    assert_fails(&dave, 1, "this session is for named parties and your key");
    let carol_home = root.path().join("carol");
    let carol_joined = succeed(mpcnet(
        &carol_home,
        &["join", &invite_text, "--name", "carol"],
    ));
    assert_eq!(carol_joined.trim(), "2");

    browser
        .client
        .goto(&invite_text)
        .await
        .expect("session page");
    browser
        .wait_text("#access", PAGE_LIMIT, |t| {
            t.starts_with("only the parties listed")
        })
        .await;
    browser
        .wait_text(
            "#parties tr[data-seat=\"1\"] .party-name",
            PAGE_LIMIT,
            |t| t.starts_with("bob") && t.contains("listed"),
        )
        .await;
    browser
        .wait_text(
            "#parties tr[data-seat=\"2\"] .party-name",
            PAGE_LIMIT,
            |t| t.starts_with("carol"),
        )
        .await;
    browser.close().await;
}

/// The session page names the account each party's identity proof shows.
#[tokio::test(flavor = "multi_thread")]
async fn the_page_shows_the_identity_a_party_proved() {
    if !browser_present() {
        return;
    }
    let root = tempfile::tempdir().expect("tempdir");
    let Some(provider) = crate::oidc::Provider::start(root.path()) else {
        return;
    };
    let server = Server::start(&root.path().join("server"), "127.0.0.1:0");
    let (provider, server, invite) = tokio::task::spawn_blocking(move || {
        let invite = crate::oidc::create_requiring_identity(&provider, &server, root.path());
        (provider, server, (invite, root))
    })
    .await
    .expect("created");
    let browser = Browser::start().await;
    browser.client.goto(&invite.0).await.expect("session page");
    let shown = browser
        .wait_text("#parties tr[data-seat=\"0\"] .identity", PAGE_LIMIT, |t| {
            !t.is_empty()
        })
        .await;
    assert_eq!(shown, format!("alice@uni.example ({})", provider.issuer));
    browser.close().await;
    drop(server);
}

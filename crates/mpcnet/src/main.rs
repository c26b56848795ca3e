//! The `mpcnet` command: parses the command line, runs one subcommand, and turns its outcome
//! into an exit code (0 success, 1 failure, 2 bad usage or input).

mod cli;
mod demo;
mod invite_input;
mod report;
mod roles;
mod run;
mod serve;

use std::io::{IsTerminal as _, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{CommandFactory as _, Parser as _};
use mpcnet_agent::launcher::LauncherError;
use mpcnet_client::oidc::{LoginFlow, ProveWith};
use mpcnet_client::session::{self, SessionPlan};
use mpcnet_client::{Home, SessionError};
use mpcnet_proto::{IdentityRequirement, InviteError};
use mpcnet_server::tls::TlsError;

use crate::cli::{Cli, Command, CreateArgs, IdArgs, JoinArgs, PackArgs, ProveArgs, StatusArgs};

/// An error in what the user gave: exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadInput(pub String);

fn main() -> ExitCode {
    let cli = Cli::parse();
    // iroh-relay warns on every relay client that disconnects; that is routine here.
    let default_log = match cli.command {
        Command::Serve(_) | Command::Relay(_) => "info,iroh_relay::server::client=error",
        _ => "warn,iroh_relay::server::client=error",
    };
    let filter = cli.log.clone().unwrap_or_else(|| default_log.into());
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&filter).unwrap_or_else(|_| default_log.into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();

    // A party's agent moves many tiny messages: one thread means no cross-thread wake-up per
    // message (the cost that dominates on small machines). The server keeps a thread pool.
    let runtime = match cli.command {
        Command::Serve(_) | Command::Relay(_) => tokio::runtime::Runtime::new(),
        _ => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
    };
    let runtime = match runtime {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("mpcnet: error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(dispatch(cli)) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("mpcnet: error: {error:#}");
            ExitCode::from(exit_code(&error))
        }
    }
}

/// 2 for errors in the user's input, 1 for everything else.
fn exit_code(error: &anyhow::Error) -> u8 {
    let bad_input = error.chain().any(|cause| {
        cause.is::<BadInput>()
            || cause.is::<InviteError>()
            || cause
                .downcast_ref::<SessionError>()
                .is_some_and(SessionError::is_bad_input)
            || cause
                .downcast_ref::<LauncherError>()
                .is_some_and(LauncherError::is_bad_input)
            || cause
                .downcast_ref::<TlsError>()
                .is_some_and(TlsError::is_bad_input)
    });
    if bad_input { 2 } else { 1 }
}

async fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    let home_dir = match cli.home {
        Some(dir) => dir,
        None => Home::default_dir()?,
    };
    let success = |result: anyhow::Result<()>| result.map(|()| ExitCode::SUCCESS);
    match cli.command {
        Command::Serve(args) => success(serve::run(args, &home_dir).await),
        Command::Relay(args) => success(serve::run_relay(args, &home_dir).await),
        Command::Id(args) => success(id(&open_home(home_dir)?, args)),
        Command::Create(args) => success(create(&open_home(home_dir)?, *args).await),
        Command::Join(args) => success(join(&open_home(home_dir)?, args).await),
        Command::Status(args) => success(status(&open_home(home_dir)?, args).await),
        Command::Run(args) => run::run(&open_home(home_dir)?, args).await,
        Command::Demo(args) => demo::run(args).await,
        Command::Pack(args) => success(pack(&args)),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "mpcnet", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn open_home(dir: PathBuf) -> anyhow::Result<Home> {
    Ok(Home::open(dir)?)
}

/// The identity a party acts with for `invite`: the creator's key of a creator link, else the
/// home's identity.
fn party_identity(
    home: &Home,
    creator_key: Option<mpcnet_proto::Identity>,
) -> anyhow::Result<mpcnet_proto::Identity> {
    match creator_key {
        Some(key) => {
            eprintln!(
                "mpcnet: acting as the session's creator {} (the key in the creator link)",
                key.public().fingerprint()
            );
            Ok(key)
        }
        None => identity(home),
    }
}

/// The home's identity, saying so on stderr when it was just created.
fn identity(home: &Home) -> anyhow::Result<mpcnet_proto::Identity> {
    let (identity, created) = home.identity()?;
    if created {
        eprintln!(
            "mpcnet: created a new identity {} in {}",
            identity.public().fingerprint(),
            home.dir().display()
        );
    }
    Ok(identity)
}

fn id(home: &Home, args: IdArgs) -> anyhow::Result<()> {
    let identity = identity(home)?;
    let name = mpcnet_proto::Label::new("your party name", &party_name(args.name))
        .map_err(|e| BadInput(e.to_string()))?;
    let line = report::identity_line(&identity, &name);
    if line
        .parse::<mpcnet_proto::Seat>()
        .ok()
        .and_then(|seat| seat.name)
        != Some(name.clone())
    {
        return Err(BadInput(
            "your party name cannot hold \" #\": on the identity line it would begin a comment"
                .into(),
        )
        .into());
    }
    if args.json {
        println!("{}", report::identity_json(&identity, &name, &line));
        return Ok(());
    }
    println!("{line}");
    std::io::stdout().flush()?;
    eprintln!("{}", report::qr_code(&line));
    eprint!("{}", report::identity(&identity));
    eprintln!(
        "Give the line above to a session's creator: `mpcnet create --party LINE` (or a line of\n\
         its --parties-file) lets this identity, and no other, take a seat."
    );
    Ok(())
}

/// How this party proves its identity, from `--prove-with` and `--client-id`.
fn prove_with(args: &ProveArgs) -> Result<Option<ProveWith>, BadInput> {
    let (Some(issuer), Some(client_id)) = (args.prove_with.clone(), args.client_id.clone()) else {
        return Ok(None);
    };
    let check = IdentityRequirement {
        issuer: issuer.clone(),
        email: None,
    };
    check
        .check()
        .map_err(|e| BadInput(format!("--prove-with: {e}")))?;
    let flow = match args.login {
        cli::Login::Device => LoginFlow::Device,
        cli::Login::Loopback => LoginFlow::Loopback,
    };
    Ok(Some(ProveWith {
        issuer,
        client_id,
        flow,
        on_prompt: report::login_prompt,
    }))
}

/// The party name to use: the one given, else the login name, else "party".
fn party_name(given: Option<String>) -> String {
    given
        .or_else(|| std::env::var("USER").ok().filter(|user| !user.is_empty()))
        .unwrap_or_else(|| "party".into())
}

/// The named seats of `args` (the file's, then `--party`'s) with the creator in seat 0, and the
/// party count; no seats for an open session.
fn named_seats(
    creator: &mpcnet_proto::PublicKey,
    args: &CreateArgs,
) -> anyhow::Result<(Vec<mpcnet_proto::Seat>, u16)> {
    let mut listed = Vec::new();
    if let Some(path) = &args.parties_file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| BadInput(format!("cannot read {}: {e}", path.display())))?;
        listed = mpcnet_proto::seats::parse_list(&text)
            .map_err(|e| BadInput(format!("{}: {e}", path.display())))?;
    }
    listed.extend(args.named_parties.iter().cloned());
    if listed.is_empty() && args.parties_file.is_none() {
        let parties = args
            .parties
            .ok_or_else(|| BadInput("--parties, --party or --parties-file is needed".into()))?;
        return Ok((Vec::new(), parties));
    }
    let seats = mpcnet_proto::seats::with_creator(creator, listed)
        .map_err(|e| BadInput(format!("the parties listed: {e}")))?;
    let count = u16::try_from(seats.len()).expect("at most MAX_PARTIES seats");
    match args.parties {
        Some(parties) if parties != count => Err(BadInput(format!(
            "--parties {parties} disagrees with the {count} parties listed (you included)"
        ))
        .into()),
        _ => Ok((seats, count)),
    }
}

async fn create(home: &Home, args: CreateArgs) -> anyhow::Result<()> {
    let identity = identity(home)?;
    let (seats, parties) = named_seats(&identity.public(), &args)?;
    // An example of the catalog, or standalone role files, are put into a directory that lives
    // as long as the creation.
    let fetched = tempfile::tempdir().context("making a directory for the program")?;
    let standalone = args.example.is_none() && args.program.is_none();
    let given_roles = roles::parse(&args.roles, standalone)?;
    let mut main = args.main;
    let (program, mut roles): (PathBuf, Vec<_>) = match (&args.example, args.program) {
        (Some(name), _) => {
            let example = fetch_example(&args.server, name, fetched.path()).await?;
            main = main.or(example.main);
            (example.path, example.roles)
        }
        (None, Some(program)) => (program, given_roles.into_iter().map(|(r, _)| r).collect()),
        (None, None) if !given_roles.is_empty() => {
            let files: Vec<PathBuf> = given_roles.iter().map(|(_, f)| f.clone()).collect();
            let folder = roles::gather(&files, fetched.path())?;
            (folder, given_roles.into_iter().map(|(r, _)| r).collect())
        }
        (None, None) => anyhow::bail!(BadInput(
            "--program FILE, --example NAME or --role SEATS=FILE is needed".into()
        )),
    };
    roles::add_args(&mut roles, &args.role_args)?;
    let plan = SessionPlan {
        server: args.server,
        parties,
        program,
        main,
        name: args.name,
        party_name: party_name(args.party_name),
        args: args.args,
        extra_relays: args.relays,
        seats,
        require_identity: args.require_issuer.map(|issuer| IdentityRequirement {
            issuer,
            email: args.require_email,
        }),
        prove: prove_with(&args.prove)?,
        roles,
    };
    let invite = session::create(&identity, &plan)
        .await
        .context("creating the session")?;
    if args.json {
        println!(
            "{}",
            serde_json::json!({ "invite": invite.to_string(), "lobby_id": invite.lobby_id().to_string() })
        );
    } else {
        println!("{invite}");
    }
    std::io::stdout().flush()?;
    eprintln!("{}", report::qr_code(&invite.to_string()));
    let holder = if plan.seats.is_empty() {
        "it lets its holder join"
    } else {
        "only the keys you listed can join with it"
    };
    eprintln!(
        "Share the invite above privately with the other {} parties: {holder}.\n\
         Each of them runs:   mpcnet join INVITE --name THEIR_NAME\n\
         Then you run:        mpcnet status INVITE   (seals the session once everyone has joined)\n\
         Compare the session fingerprint it shows with the others' before running anything.",
        plan.parties - 1
    );
    Ok(())
}

/// An example of the catalog, saved: its file (a bundle packed), entry point and roles.
struct FetchedExample {
    path: PathBuf,
    main: Option<String>,
    roles: Vec<mpcnet_proto::Role>,
}

/// Fetches the example `name` of `server`'s catalog into `directory`.
async fn fetch_example(
    server: &mpcnet_proto::ServerAddress,
    name: &str,
    directory: &std::path::Path,
) -> anyhow::Result<FetchedExample> {
    let client = mpcnet_client::LobbyClient::new(server)?;
    let catalog = client
        .examples()
        .await
        .context("reading the server's examples")?;
    let Some(example) = catalog.examples.iter().find(|e| e.name == name) else {
        let names: Vec<&str> = catalog.examples.iter().map(|e| e.name.as_str()).collect();
        anyhow::bail!(BadInput(format!(
            "the server has no example {name:?}; it has: {}",
            names.join(", ")
        )));
    };
    let text = client
        .example(example)
        .await
        .context("fetching the example")?;
    // A bundle is saved packed, named as `mpcnet pack` names it (its folder's name and .tar).
    let file_name = match example.main {
        Some(_) => format!("{}.tar", example.file_name),
        None => example.file_name.clone(),
    };
    let path = directory.join(&file_name);
    if path.file_name() != Some(std::ffi::OsStr::new(&file_name)) {
        anyhow::bail!(
            "the server named its example {:?}, not a plain file name",
            example.file_name
        );
    }
    std::fs::write(&path, text).context("saving the example")?;
    Ok(FetchedExample {
        path,
        main: example.main.as_ref().map(ToString::to_string),
        roles: example.roles.clone(),
    })
}

/// `mpcnet pack`: writes the folder's bundle and prints what it holds and its SHA-256.
fn pack(args: &PackArgs) -> anyhow::Result<()> {
    let bundle = mpcnet_proto::Bundle::pack_dir(&args.dir)
        .map_err(|error| BadInput(format!("the program folder cannot be bundled: {error}")))?;
    let out = match &args.out {
        Some(out) => out.clone(),
        None => {
            let dir = std::fs::canonicalize(&args.dir)?;
            let name = dir.file_name().unwrap_or_default().to_string_lossy();
            dir.with_file_name(format!("{name}.tar"))
        }
    };
    let bytes = bundle.to_bytes();
    std::fs::write(&out, &bytes)
        .map_err(|error| BadInput(format!("cannot write {}: {error}", out.display())))?;
    println!(
        "{}: {} files, {} bytes, sha256 {}",
        out.display(),
        bundle.files().count(),
        bytes.len(),
        mpcnet_proto::Sha256Digest::of(&bytes)
    );
    Ok(())
}

async fn join(home: &Home, args: JoinArgs) -> anyhow::Result<()> {
    let (invite, creator_key) = invite_input::read_invite(&args.invite)?;
    let identity = party_identity(home, creator_key)?;
    let name = party_name(args.name);
    let report = session::join(
        home,
        &identity,
        &invite,
        &name,
        args.program.as_deref(),
        None,
        prove_with(&args.prove)?.as_ref(),
    )
    .await
    .context("joining the session")?;
    let index = report
        .you
        .context("the server admitted this party but it is missing from the lobby")?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("{index}");
        std::io::stdout().flush()?;
        eprint!("{}", report::session(&report));
        eprintln!(
            "Joined as party {index}. Read the program before running it: {}",
            report.program.to_review().display()
        );
    }
    Ok(())
}

async fn status(home: &Home, args: StatusArgs) -> anyhow::Result<()> {
    let (invite, creator_key) = invite_input::read_invite(&args.invite)?;
    let identity = party_identity(home, creator_key)?;
    let report = session::status(home, &identity, &invite, args.program.as_deref())
        .await
        .context("checking the session")?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report::session(&report));
        if report.sealed_now {
            eprintln!("mpcnet: every party has joined: you sealed the session.");
        }
    }
    Ok(())
}

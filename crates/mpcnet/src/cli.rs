//! The command line: every subcommand and flag, each flag also settable as an `MPCNET_*` variable.

use std::net::SocketAddr;

use mpcnet_agent::PathPolicy;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use mpcnet_proto::ServerAddress;

/// Run an MPyC program across parties behind NATs, in one step.
///
/// Exit codes: 0 success, 1 failure (network, refusal, verification), 2 bad usage or input.
#[derive(Debug, Parser)]
#[command(
    name = "mpcnet",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    /// The party's home: identity and fetched programs [default: $XDG_DATA_HOME/mpcnet].
    #[arg(long, global = true, env = "MPCNET_HOME", value_name = "DIR")]
    pub home: Option<PathBuf>,

    /// Log filter for stderr, e.g. `debug` or `mpcnet_server=trace` [default: info for serve, warn otherwise].
    #[arg(long, global = true, env = "MPCNET_LOG", value_name = "FILTER")]
    pub log: Option<String>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the lobby server with its relay; the first line printed is the --server value for `create`.
    Serve(ServeArgs),
    /// Run a relay for the sessions of a lobby on another host, admitting only their parties;
    /// the first line printed is the --relay value for `create`.
    Relay(RelayArgs),
    /// Print this party's identity line (did:key, name, fingerprint) to give to a session's
    /// creator, with its QR code on stderr (the identity is created on first use).
    Id(IdArgs),
    /// Create a session and print its invite.
    Create(Box<CreateArgs>),
    /// Join a session with an invite; prints this party's index.
    Join(JoinArgs),
    /// Show a session: parties, keys, sealed or not, program hash. The creator seals a full session here.
    Status(StatusArgs),
    /// Run the session: join if needed, wait for the seal, link with every party, run MPyC over the links.
    Run(RunArgs),
    /// Run a whole session on this machine: a local lobby and relay, N parties, one example program.
    Demo(DemoArgs),
    /// Pack a program folder into a bundle file (what `create --program DIR` uploads), for the
    /// web page's create form or to compare SHA-256s.
    Pack(PackArgs),
    /// Print a shell completion script.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// TCP address for HTTPS (lobby API and relay); QUIC address discovery uses the same port on UDP.
    #[arg(long, env = "MPCNET_LISTEN", default_value = "0.0.0.0:7000")]
    pub listen: SocketAddr,

    /// Directory for the lobby database and the self-signed certificate [default: HOME/server].
    #[arg(long, env = "MPCNET_DATA", value_name = "DIR")]
    pub data: Option<PathBuf>,

    /// Host name or IP address parties use to reach this server (repeatable; the first is printed).
    #[arg(
        long = "public-name",
        env = "MPCNET_PUBLIC_NAME",
        value_delimiter = ',',
        value_name = "NAME"
    )]
    pub public_names: Vec<String>,

    /// PEM certificate chain from a CA; without it a self-signed certificate is made and pinned by invites.
    #[arg(
        long,
        env = "MPCNET_TLS_CERT",
        requires = "tls_key",
        value_name = "FILE"
    )]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key of --tls-cert.
    #[arg(
        long,
        env = "MPCNET_TLS_KEY",
        requires = "tls_cert",
        value_name = "FILE"
    )]
    pub tls_key: Option<PathBuf>,

    /// Address of the Prometheus /metrics endpoint, or `off`.
    #[arg(long, env = "MPCNET_METRICS_LISTEN", default_value = "127.0.0.1:9470", value_parser = parse_optional_address)]
    pub metrics_listen: OptionalAddress,

    /// How long a lobby lives after its creation, e.g. `24h` or `30m`.
    #[arg(long, env = "MPCNET_LOBBY_TTL", default_value = "24h", value_parser = humantime::parse_duration)]
    pub lobby_ttl: Duration,

    /// The largest program file a lobby accepts, in bytes.
    #[arg(long, env = "MPCNET_MAX_PROGRAM_BYTES", default_value_t = mpcnet_proto::bundle::MAX_BUNDLE_BYTES)]
    pub max_program_bytes: usize,

    /// The most lobbies alive at once; more are refused (503) until some expire.
    #[arg(long, env = "MPCNET_MAX_LOBBIES", default_value_t = 10_000)]
    pub max_lobbies: u64,

    /// The most live lobbies one IP address may create; more are refused (429) until some expire.
    #[arg(long, env = "MPCNET_MAX_LOBBIES_PER_IP", default_value_t = 20)]
    pub max_lobbies_per_ip: usize,

    #[command(flatten)]
    pub connections: ConnectionArgs,

    /// Program bytes stored over all live lobbies; more are refused (503) until some expire.
    #[arg(long, env = "MPCNET_MAX_STORED_PROGRAM_BYTES", default_value_t = 1 << 30)]
    pub max_stored_program_bytes: u64,

    /// Program bytes the live lobbies one IP address created may hold (429 beyond).
    #[arg(long, env = "MPCNET_MAX_PROGRAM_BYTES_PER_IP", default_value_t = 64 << 20)]
    pub max_program_bytes_per_ip: u64,

    #[command(flatten)]
    pub relay_rate: RelayRateArgs,

    /// Relay clients connected at once over the sessions one IP address created.
    #[arg(long, env = "MPCNET_RELAY_CLIENTS_PER_IP", default_value_t = 256)]
    pub relay_clients_per_ip: usize,

    /// Bytes relayed for the live sessions one IP address created; past it their relay ends.
    #[arg(long, env = "MPCNET_RELAY_BYTES_PER_IP", default_value_t = 64 << 30)]
    pub relay_bytes_per_ip: u64,

    /// Do not serve QUIC address discovery on UDP.
    #[arg(long, env = "MPCNET_NO_ADDRESS_DISCOVERY")]
    pub no_address_discovery: bool,
}

#[derive(Debug, Args)]
pub struct RelayArgs {
    /// TCP address for HTTPS (the relay).
    #[arg(long, env = "MPCNET_LISTEN", default_value = "0.0.0.0:7001")]
    pub listen: SocketAddr,

    /// The lobby whose sealed sessions this relay serves, as `mpcnet serve` printed it
    /// (https://HOST:PORT#sha256=PIN); it names each session's parties.
    #[arg(long, env = "MPCNET_LOBBY", value_name = "URL")]
    pub lobby: ServerAddress,

    /// Directory for the self-signed certificate [default: HOME/relay].
    #[arg(long, env = "MPCNET_DATA", value_name = "DIR")]
    pub data: Option<PathBuf>,

    /// Host name or IP address parties use to reach this relay (repeatable; the first is printed).
    #[arg(
        long = "public-name",
        env = "MPCNET_PUBLIC_NAME",
        value_delimiter = ',',
        value_name = "NAME"
    )]
    pub public_names: Vec<String>,

    #[command(flatten)]
    pub connections: ConnectionArgs,

    #[command(flatten)]
    pub relay_rate: RelayRateArgs,
}

/// The connection limits of a server (lobby or relay).
#[derive(Debug, Args)]
pub struct ConnectionArgs {
    /// The most connections held at once (for a lobby server, API and relay together).
    #[arg(long, env = "MPCNET_MAX_CONNECTIONS", default_value_t = 4096)]
    pub max_connections: usize,

    /// The most connections held at once from one IP address.
    #[arg(long, env = "MPCNET_MAX_CONNECTIONS_PER_IP", default_value_t = 64)]
    pub max_connections_per_ip: usize,

    /// New connections one IP address may open per second (five times as many at once); more are closed before TLS.
    #[arg(long, env = "MPCNET_MAX_NEW_CONNECTIONS_PER_IP", default_value_t = 50)]
    pub max_new_connections_per_ip: u32,
}

impl ConnectionArgs {
    pub fn limits(&self) -> mpcnet_server::ConnectionLimits {
        let new_per_ip = self.max_new_connections_per_ip;
        mpcnet_server::ConnectionLimits {
            total: self.max_connections,
            per_ip: self.max_connections_per_ip,
            new_per_ip: mpcnet_server::Rate::new(new_per_ip, new_per_ip.saturating_mul(5)),
        }
    }
}

/// How fast one relay client may send.
#[derive(Debug, Args)]
pub struct RelayRateArgs {
    /// Bytes per second one relay client may send (its excess waits).
    #[arg(long, env = "MPCNET_RELAY_RATE", default_value_t = 25_000_000)]
    pub relay_rate: u32,

    /// Bytes one relay client may send at once after a quiet spell.
    #[arg(long, env = "MPCNET_RELAY_BURST", default_value_t = 16 << 20)]
    pub relay_burst: u32,
}

impl RelayRateArgs {
    pub fn rate(&self) -> mpcnet_server::Rate {
        mpcnet_server::Rate::new(self.relay_rate, self.relay_burst)
    }
}

/// A socket address, or none (`off`).
#[derive(Debug, Clone, Copy)]
pub struct OptionalAddress(pub Option<SocketAddr>);

fn parse_optional_address(text: &str) -> Result<OptionalAddress, String> {
    if text == "off" {
        return Ok(OptionalAddress(None));
    }
    text.parse()
        .map(|address| OptionalAddress(Some(address)))
        .map_err(|e| format!("{e}"))
}

#[derive(Debug, Args)]
pub struct IdArgs {
    /// Your name as a party, put on the identity line [default: $USER].
    #[arg(long, env = "MPCNET_PARTY_NAME")]
    pub name: Option<String>,

    /// Print JSON.
    #[arg(long, env = "MPCNET_JSON")]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The lobby server, as `mpcnet serve` printed it (https://HOST:PORT#sha256=PIN).
    #[arg(long, env = "MPCNET_SERVER", value_name = "URL")]
    pub server: ServerAddress,

    /// Parties in all, you included [default with --party or --parties-file: as many as listed].
    #[arg(
        long,
        env = "MPCNET_PARTIES",
        value_parser = clap::value_parser!(u16).range(2..=64),
        required_unless_present_any = ["named_parties", "parties_file"]
    )]
    pub parties: Option<u16>,

    /// Only this party may take the next seat: its identity as `mpcnet id` prints it
    /// (`did:key:z6Mk… [name]`); repeat in seat order. You are party 0. Names given here cannot
    /// contain commas (a parties file's can).
    #[arg(
        long = "party",
        env = "MPCNET_NAMED_PARTIES",
        value_name = "DID_KEY [NAME]",
        value_delimiter = ','
    )]
    pub named_parties: Vec<mpcnet_proto::Seat>,

    /// The parties who alone may join, one per line in seat order (`did:key:z6Mk… [name]`,
    /// `#` comments); your own key may come first or be left out (you are party 0). Seats
    /// named by --party come after the file's.
    #[arg(long, env = "MPCNET_PARTIES_FILE", value_name = "FILE")]
    pub parties_file: Option<PathBuf>,

    /// The MPyC program every party runs: one file, or a folder (its modules and data files
    /// too), packed as a bundle.
    #[arg(
        long,
        env = "MPCNET_PROGRAM",
        value_name = "FILE|DIR",
        required_unless_present_any = ["example", "roles"]
    )]
    pub program: Option<PathBuf>,

    /// Run one of the server's example programs instead (e.g. secret-mean; an unknown name
    /// lists them).
    #[arg(
        long,
        env = "MPCNET_EXAMPLE",
        value_name = "NAME",
        conflicts_with = "program"
    )]
    pub example: Option<String>,

    /// The bundle's entry point, a path inside the folder [default: the folder's only `.py`
    /// file at its top]. With a file, that file is a bundle `mpcnet pack` made.
    #[arg(long, env = "MPCNET_MAIN", value_name = "PATH")]
    pub main: Option<String>,

    /// An asymmetric program: these seats run another entry point (`SEATS=PATH`, seats as
    /// `0`, `1,2` or `1-3`); repeat for each role. PATH is inside the --program folder; without
    /// --program it is a file of yours, and the role files are packed into one bundle. Seats in
    /// no role run --main. (In the variable: one role per line.)
    #[arg(
        long = "role",
        env = "MPCNET_ROLES",
        value_name = "SEATS=PATH",
        value_delimiter = '\n',
        conflicts_with = "example"
    )]
    pub roles: Vec<String>,

    /// A public argument of one role, in place of the session's (`SEATS=ARG`, the seats of
    /// one --role exactly); repeat for more, in order. (In the variable: one per line.)
    #[arg(
        long = "role-arg",
        env = "MPCNET_ROLE_ARGS",
        value_name = "SEATS=ARG",
        value_delimiter = '\n',
        allow_hyphen_values = true
    )]
    pub role_args: Vec<String>,

    /// The session's name, shown to every party [default: the program's file name].
    #[arg(long, env = "MPCNET_SESSION_NAME")]
    pub name: Option<String>,

    /// Your name as a party [default: $USER].
    #[arg(long, env = "MPCNET_PARTY_NAME")]
    pub party_name: Option<String>,

    /// Print JSON (invite, lobby id) instead of the bare invite.
    #[arg(long, env = "MPCNET_JSON")]
    pub json: bool,

    /// A relay besides the lobby server's, as `mpcnet relay` printed it
    /// (https://HOST:PORT#sha256=PIN); repeat for more. Links move to another relay when one dies.
    #[arg(
        long = "relay",
        env = "MPCNET_RELAYS",
        value_name = "URL",
        value_delimiter = ','
    )]
    pub relays: Vec<ServerAddress>,

    /// Require every party (you included) to prove an account at this OpenID issuer, spelled
    /// exactly as its tokens' `iss` (signed into the offer).
    #[arg(long, env = "MPCNET_REQUIRE_ISSUER", value_name = "URL")]
    pub require_issuer: Option<String>,

    /// Require the proven account's verified email to match: an address, or `*@DOMAIN`.
    #[arg(
        long,
        env = "MPCNET_REQUIRE_EMAIL",
        value_name = "PATTERN",
        requires = "require_issuer"
    )]
    pub require_email: Option<String>,

    #[command(flatten)]
    pub prove: ProveArgs,

    /// Public arguments every party passes to the program.
    #[arg(last = true, value_name = "PROGRAM ARGS")]
    pub args: Vec<String>,
}

#[derive(Debug, Args)]
pub struct PackArgs {
    /// The program folder.
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,

    /// Where to write the bundle [default: DIR.tar beside the folder].
    #[arg(long, short, env = "MPCNET_PACK_OUT", value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// Where to read an invite from.
#[derive(Debug, Args)]
pub struct InviteArg {
    /// The invite; `-` reads it from stdin, a path reads it from that file.
    #[arg(env = "MPCNET_INVITE", value_name = "INVITE", hide_env_values = true)]
    pub invite: Option<String>,
}

#[derive(Debug, Args)]
pub struct JoinArgs {
    #[command(flatten)]
    pub invite: InviteArg,

    /// Your name as a party [default: $USER].
    #[arg(long, env = "MPCNET_PARTY_NAME")]
    pub name: Option<String>,

    /// Use this local copy of the program (it must match the signed hash) instead of fetching
    /// it; for a bundle, its folder or packed file.
    #[arg(long, env = "MPCNET_PROGRAM", value_name = "FILE|DIR")]
    pub program: Option<PathBuf>,

    /// Print the session as JSON.
    #[arg(long, env = "MPCNET_JSON")]
    pub json: bool,

    #[command(flatten)]
    pub prove: ProveArgs,
}

/// How a party proves an account when it joins (an OpenID Connect ID token, device flow).
#[derive(Debug, Args)]
pub struct ProveArgs {
    /// Prove an account at this OpenID issuer: mpcnet shows a URL and a code to approve the
    /// login with, and signs the ID token it gets into your join record.
    #[arg(
        long,
        env = "MPCNET_PROVE_WITH",
        value_name = "ISSUER_URL",
        requires = "client_id"
    )]
    pub prove_with: Option<String>,

    /// The OAuth client id registered at the issuer for mpcnet (the token's audience).
    #[arg(long, env = "MPCNET_CLIENT_ID", value_name = "ID")]
    pub client_id: Option<String>,

    /// How you approve the login: `device` (a URL and a code, on any device) or `loopback`
    /// (a browser on this machine, redirected back to mpcnet on 127.0.0.1, with PKCE).
    #[arg(long, env = "MPCNET_LOGIN", value_enum, default_value_t = Login::Device)]
    pub login: Login,
}

/// How the user approves an identity proof's login.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Login {
    /// The OAuth device authorization grant (RFC 8628).
    Device,
    /// The authorization code flow with PKCE and a loopback redirect (RFC 8252).
    Loopback,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub invite: InviteArg,

    /// Check this local copy of the program instead of fetching it (for a bundle, its folder
    /// or packed file).
    #[arg(long, env = "MPCNET_PROGRAM", value_name = "FILE|DIR")]
    pub program: Option<PathBuf>,

    /// Print JSON with a stable shape.
    #[arg(long, env = "MPCNET_JSON")]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub invite: InviteArg,

    /// Use this local copy of the program (it must match the signed hash) instead of fetching
    /// it; for a bundle, its folder or packed file.
    #[arg(long, env = "MPCNET_PROGRAM", value_name = "FILE|DIR")]
    pub program: Option<PathBuf>,

    /// The Python that runs MPyC [default: python3 on PATH].
    #[arg(long, env = "MPCNET_PYTHON", value_name = "PATH")]
    pub python: Option<PathBuf>,

    /// Run the program without asking (it is still shown first).
    #[arg(long, short = 'y', env = "MPCNET_YES")]
    pub yes: bool,

    /// Your name as a party, if this run joins [default: $USER].
    #[arg(long, env = "MPCNET_PARTY_NAME")]
    pub name: Option<String>,

    #[command(flatten)]
    pub prove: ProveArgs,

    /// Which paths peer links may take.
    #[arg(long, env = "MPCNET_PATH", value_enum, default_value_t = PathPolicy::Auto)]
    pub path: PathPolicy,

    /// Local address for direct paths, e.g. 127.0.0.1:0 for parties on one machine [default: all interfaces].
    #[arg(long, env = "MPCNET_BIND", value_name = "ADDR")]
    pub bind: Option<SocketAddr>,

    /// How long to wait for the session to fill and for every party to link.
    #[arg(long, env = "MPCNET_TIMEOUT", default_value = "5m", value_parser = humantime::parse_duration)]
    pub timeout: Duration,

    /// How long to wait at the end for the other parties to finish.
    #[arg(long, env = "MPCNET_FINISH_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub finish_timeout: Duration,

    /// How long a party may stay unreachable mid-run (an outage, a network change) before the
    /// run gives up on it: the MPC waits that long for any path to come back.
    #[arg(long, env = "MPCNET_PATIENCE", default_value = "2m", value_parser = humantime::parse_duration)]
    pub patience: Duration,

    /// Private arguments for this party's program from FILE, one per line, after the session's
    /// public ones (unlike arguments after `--`, they are not in the process list).
    #[arg(long, env = "MPCNET_PRIVATE_ARGS_FILE", value_name = "FILE")]
    pub private_args_file: Option<PathBuf>,

    /// Private arguments for this party's program, after the session's public ones (and the
    /// file's). Every local user can read them in the process list: prefer --private-args-file.
    #[arg(last = true, value_name = "PRIVATE ARGS")]
    pub private_args: Vec<String>,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// How many parties.
    #[arg(long, env = "MPCNET_DEMO_PARTIES", default_value_t = 3, value_parser = clap::value_parser!(u16).range(2..=8))]
    pub parties: u16,

    /// Which of the project's example programs to run.
    #[arg(long, env = "MPCNET_DEMO_PROGRAM", value_enum, default_value_t = DemoProgram::SecretMean)]
    pub program: DemoProgram,

    /// Which paths the links may take.
    #[arg(long, env = "MPCNET_PATH", value_enum, default_value_t = PathPolicy::Auto)]
    pub path: PathPolicy,

    /// The Python that runs MPyC [default: python3 if it has mpyc, else a venv made in ~/.cache/mpcnet].
    #[arg(long, env = "MPCNET_PYTHON", value_name = "PATH")]
    pub python: Option<PathBuf>,
}

/// The example programs built into the binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DemoProgram {
    /// Sum and mean of private inputs (known answer: 5 m (m + 1) for m parties).
    SecretMean,
    /// 300 sequential secure comparisons.
    ManyRounds,
    /// Vectors of 20,000 secret integers, element-wise sum.
    BulkTransfer,
    /// Two sessions in one run (sum, then max).
    TwoSessions,
    /// A bundle: weighted survey (known answer for 3 parties: weighted_total=72).
    Survey,
    /// A bundle with roles: sealed-bid auction, party 0 the auctioneer (3 parties: winner=2 bid=174).
    Auction,
}

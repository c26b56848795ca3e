//! A party's side of mpcnet's coordination plane.
//!
//! - [`home`]: the party's directory (`MPCNET_HOME`): its identity key and fetched programs.
//! - [`lobby_client`]: the lobby API over HTTPS, trusting only the certificate the invite pins.
//! - [`oidc`]: identity proofs: an issuer's keys, the device flow, checking every party's proof.
//! - [`session`]: the flows a user runs: create a session, join it, check its status (and,
//!   as the creator, seal it once full).

pub mod home;
pub mod lobby_client;
mod loopback;
pub mod oidc;
mod pinned_tls;
pub mod session;

pub use home::{Home, HomeError};
pub use lobby_client::{ClientError, LobbyClient};
pub use pinned_tls::servers_verifier;
pub use session::{SessionError, SessionReport};

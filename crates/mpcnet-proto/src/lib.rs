//! mpcnet's coordination data and its verification: everything two parties must agree on, with
//! no network I/O and no clock (only [`bundle`] touches the file system: packing and unpacking
//! a program folder).
//!
//! The lobby server stores and forwards these values; it can refuse service but never
//! forge them. Every party verifies what it receives against the creator key and the
//! join secret carried by its invite:
//!
//! - [`identity`]: Ed25519 party keys and short fingerprints; [`did_key`]: their `did:key` names.
//! - [`invite`]: the one-line invite (server address, certificate pin, lobby, creator, join secret).
//! - [`bundle`]: a program folder as one deterministic archive; its checks, packing and unpacking.
//! - [`offer`]: what the creator proposes (size, program hash, public args, relay), signed by the creator.
//! - [`identity_proof`]: an OpenID Connect ID token binding an account to a party's key and lobby.
//! - [`join`]: a party's join record, signed by the party and by the key derived from the join secret.
//! - [`roles`]: an asymmetric program's seats, each with its own entry point and arguments.
//! - [`seats`]: the parties a creator names in advance (by key), in their seats' order.
//! - [`manifest`]: the sealed, ordered list of parties, signed by the creator.
//! - [`lobby`]: the state machine the server runs and the checks every client repeats.
//! - [`announcement`]: a party's signed direct addresses, shared through the lobby.
//! - [`api`]: the JSON shapes of the lobby HTTP API.
//! - [`link_report`]: a running agent's per-peer link status.
//! - [`run_report`]: a party's signed report on its run (state, link paths, RTT) for the session page.
//! - [`statement`]: what announcements and run reports share: signed by a member about itself.

pub mod announcement;
pub mod api;
pub mod bundle;
pub mod did_key;
pub mod digest;
pub mod identity;
pub mod identity_proof;
pub mod invite;
pub mod join;
pub mod label;
pub mod link_report;
pub mod lobby;
pub mod manifest;
pub mod offer;
pub mod roles;
pub mod run_report;
pub mod seats;
pub mod signed;
pub mod statement;

pub use announcement::{EndpointAnnouncement, SignedAnnouncement};
pub use bundle::{Bundle, BundleError, BundlePath};
pub use digest::{Fingerprint, Sha256Digest};
pub use identity::{Identity, PublicKey};
pub use identity_proof::{IdentityProof, IdentityRequirement, ProvenIdentity};
pub use invite::{CertPin, CreatorLink, Invite, InviteError, ServerAddress};
pub use join::{JoinRecord, JoinSecret, LobbyId, SignedJoin};
pub use label::Label;
pub use lobby::{Lobby, LobbyError, LobbySnapshot, Party, VerifiedLobby};
pub use manifest::{Manifest, SignedManifest};
pub use offer::{LobbyOffer, ProgramInfo, SignedOffer};
pub use roles::Role;
pub use run_report::{RunReport, SignedRunReport};
pub use seats::Seat;
pub use signed::VerifyError;
pub use statement::PartyStatement;

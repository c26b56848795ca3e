//! Integration tests of the `mpcnet` binary (one test binary, modules by subject).

mod bundles;
mod lobby;
mod named;
mod oidc;
mod relays;
mod roles;
mod run;
mod support;
mod web;

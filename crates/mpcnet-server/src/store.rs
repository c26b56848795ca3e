//! The lobby store: SQLite in WAL mode, so a restarted server loses no lobby.
//!
//! The store keeps exactly what the parties signed. Reads hand it back as stored (the
//! parties verify it themselves); writes go through [`Lobby`], so the server never stores
//! a step a party would refuse.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

use mpcnet_proto::api::SessionView;
use mpcnet_proto::lobby::Admission;
use mpcnet_proto::signed::Signed;
use mpcnet_proto::{
    EndpointAnnouncement, Lobby, LobbyError, LobbyId, LobbySnapshot, Party, PartyStatement,
    PublicKey, RunReport, SignedJoin, SignedManifest,
};
use rusqlite::{Connection, OptionalExtension, params};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS lobbies (
    id          TEXT PRIMARY KEY,
    offer       TEXT NOT NULL,      -- JSON SignedOffer, as the creator signed it
    program     BLOB NOT NULL,
    created_at  INTEGER NOT NULL,   -- Unix seconds
    expires_at  INTEGER NOT NULL,
    manifest    TEXT,               -- JSON SignedManifest, once sealed
    creator_address TEXT            -- who created it (IPv6 by /64), for per-address budgets
);
CREATE TABLE IF NOT EXISTS joins (
    lobby_id    TEXT NOT NULL REFERENCES lobbies(id) ON DELETE CASCADE,
    seat        INTEGER NOT NULL,   -- the party index the creator seals (join order, or the named seat)
    party_key   TEXT NOT NULL,      -- hex key, indexed for the relay's admission check
    record      TEXT NOT NULL,      -- JSON SignedJoin
    PRIMARY KEY (lobby_id, seat),
    UNIQUE (lobby_id, party_key)
);
CREATE INDEX IF NOT EXISTS joins_by_party ON joins(party_key);
CREATE TABLE IF NOT EXISTS endpoints (
    lobby_id    TEXT NOT NULL REFERENCES lobbies(id) ON DELETE CASCADE,
    party_key   TEXT NOT NULL,
    record      TEXT NOT NULL,      -- JSON SignedAnnouncement, the party's latest
    PRIMARY KEY (lobby_id, party_key)
);
CREATE TABLE IF NOT EXISTS run_reports (
    lobby_id    TEXT NOT NULL REFERENCES lobbies(id) ON DELETE CASCADE,
    party_key   TEXT NOT NULL,
    record      TEXT NOT NULL,      -- JSON SignedRunReport, the party's latest
    PRIMARY KEY (lobby_id, party_key)
);
";

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("no such lobby (it may have expired)")]
    NotFound,
    #[error("a lobby with this id exists already")]
    Exists,
    #[error("the server holds as many lobbies as it may; try again later")]
    Full,
    #[error("the party sent a later statement than this one already")]
    Stale,
    #[error("this party sends statements faster than it may; slow down")]
    TooFast,
    #[error("the server stores as many program bytes as it may; try again later")]
    ProgramsFull,
    #[error(
        "the live sessions of this address hold as many program bytes as one address may ({limit})"
    )]
    ProgramsPerCreator { limit: u64 },
    #[error(transparent)]
    Lobby(#[from] LobbyError),
    #[error("stored lobby {id} is damaged: {why}")]
    Corrupt { id: LobbyId, why: String },
    #[error("database: {0}")]
    Database(#[from] rusqlite::Error),
}

/// A handle to the lobby database; clones share one connection and one cache.
#[derive(Clone, Debug)]
pub struct Store {
    connection: Arc<Mutex<Connection>>,
    /// Each live lobby as last verified: a lobby is verified once per change (when restored
    /// after a start, then by each admit and seal), never once per reader or statement.
    verified: Arc<Mutex<HashMap<LobbyId, Lobby>>>,
}

impl Store {
    /// Opens (creating if needed) the database at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let connection = Connection::open(path)?;
        connection.pragma_update(None, "journal_mode", "WAL")?;
        connection.pragma_update(None, "synchronous", "NORMAL")?;
        connection.pragma_update(None, "foreign_keys", true)?;
        connection.busy_timeout(std::time::Duration::from_secs(5))?;
        connection.execute_batch(SCHEMA)?;
        add_creator_address(&connection)?;
        Ok(Self {
            connection: Arc::new(Mutex::new(connection)),
            verified: Arc::default(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves SQLite consistent (transactions roll back), so go on.
        crate::lock(&self.connection)
    }

    fn verified_cache(&self) -> std::sync::MutexGuard<'_, HashMap<LobbyId, Lobby>> {
        crate::lock(&self.verified)
    }

    /// Lobby `id` as verified, if it is live: from the cache, else restored (and verified) from
    /// the database. Call with the connection locked, so no change runs in between.
    fn restore(
        &self,
        connection: &Connection,
        id: &LobbyId,
        now: u64,
    ) -> Result<Lobby, StoreError> {
        let live = connection
            .query_row(
                "SELECT 1 FROM lobbies WHERE id = ?1 AND expires_at > ?2",
                params![id.to_string(), now as i64],
                |_| Ok(()),
            )
            .optional()?;
        if live.is_none() {
            return Err(StoreError::NotFound);
        }
        if let Some(lobby) = self.verified_cache().get(id) {
            return Ok(lobby.clone());
        }
        let lobby = restore(connection, id, now)?;
        self.verified_cache().insert(*id, lobby.clone());
        Ok(lobby)
    }

    /// Keeps `lobby` as the verified state of `id` (after a change was committed).
    fn keep_verified(&self, id: &LobbyId, lobby: Lobby) {
        self.verified_cache().insert(*id, lobby);
    }

    /// Stores a new lobby with its program, made by `creator`, within `budget`.
    pub fn insert(
        &self,
        lobby: &Lobby,
        program: &[u8],
        creator: Option<IpAddr>,
        budget: ProgramBudget,
        (now, expires_at): (u64, u64),
    ) -> Result<(), StoreError> {
        let snapshot = lobby.snapshot();
        let id = lobby.verified().offer.lobby_id;
        let creator = creator.map(|address| crate::quota::counted_as(address).to_string());
        let mut connection = self.lock();
        let transaction = connection.transaction()?;
        budget.check(&transaction, creator.as_deref(), program.len() as u64, now)?;
        let inserted = transaction.execute(
            "INSERT OR IGNORE INTO lobbies (id, offer, program, created_at, expires_at, creator_address)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![id.to_string(), to_json(&snapshot.offer), program, now as i64, expires_at as i64, creator],
        )?;
        if inserted == 0 {
            return Err(StoreError::Exists);
        }
        for (join, party) in snapshot.joins.iter().zip(&lobby.verified().parties) {
            insert_join(&transaction, &id, party, join)?;
        }
        transaction.commit()?;
        Ok(())
    }

    /// Whether `adding` more program bytes from `creator` fit `budget` at `now`: the check
    /// `insert` makes, asked early so a create that cannot fit is refused before its body is read.
    pub fn program_fits(
        &self,
        creator: Option<IpAddr>,
        adding: u64,
        budget: ProgramBudget,
        now: u64,
    ) -> Result<(), StoreError> {
        let creator = creator.map(|address| crate::quota::counted_as(address).to_string());
        budget.check(&self.lock(), creator.as_deref(), adding, now)
    }

    /// The lobby exactly as stored, if it exists and has not expired.
    pub fn snapshot(&self, id: &LobbyId, now: u64) -> Result<LobbySnapshot, StoreError> {
        load_snapshot(&self.lock(), id, now)
    }

    /// Whether lobby `id` exists and has not expired.
    pub fn is_live(&self, id: &LobbyId, now: u64) -> Result<bool, StoreError> {
        let found = self
            .lock()
            .query_row(
                "SELECT 1 FROM lobbies WHERE id = ?1 AND expires_at > ?2",
                params![id.to_string(), now as i64],
                |_| Ok(()),
            )
            .optional()?;
        Ok(found.is_some())
    }

    /// The program file of a live lobby.
    pub fn program(&self, id: &LobbyId, now: u64) -> Result<Vec<u8>, StoreError> {
        self.lock()
            .query_row(
                "SELECT program FROM lobbies WHERE id = ?1 AND expires_at > ?2",
                params![id.to_string(), now as i64],
                |row| row.get(0),
            )
            .optional()?
            .ok_or(StoreError::NotFound)
    }

    /// Admits a party, atomically with respect to every other change of the lobby.
    pub fn admit(&self, id: &LobbyId, join: SignedJoin, now: u64) -> Result<Admission, StoreError> {
        let mut connection = self.lock();
        let transaction = connection.transaction()?;
        let mut lobby = self.restore(&transaction, id, now)?;
        let admission = lobby.admit(join)?;
        if !admission.repeated {
            let parties = &lobby.verified().parties;
            let position = parties
                .iter()
                .position(|party| party.index == admission.index)
                .expect("an admitted party is seated");
            insert_join(
                &transaction,
                id,
                &parties[position],
                &lobby.snapshot().joins[position],
            )?;
            transaction.commit()?;
            self.keep_verified(id, lobby);
        }
        Ok(admission)
    }

    /// Stores the creator's seal.
    pub fn seal(&self, id: &LobbyId, manifest: SignedManifest, now: u64) -> Result<(), StoreError> {
        let mut connection = self.lock();
        let transaction = connection.transaction()?;
        let mut lobby = self.restore(&transaction, id, now)?;
        lobby.seal(manifest)?;
        let manifest = lobby.snapshot().manifest.as_ref().map(to_json);
        transaction.execute(
            "UPDATE lobbies SET manifest = ?2 WHERE id = ?1",
            params![id.to_string(), manifest],
        )?;
        transaction.commit()?;
        self.keep_verified(id, lobby);
        Ok(())
    }

    /// Keeps a member's latest statement of kind `T` (announcement or run report), if
    /// `within_rate` allows one more from its (verified) party.
    pub fn put_statement<T: StoredStatement>(
        &self,
        id: &LobbyId,
        signed: &Signed<T>,
        now: u64,
        within_rate: impl FnOnce(PublicKey) -> bool,
    ) -> Result<(), StoreError> {
        let mut connection = self.lock();
        let transaction = connection.transaction()?;
        let checked = self
            .restore(&transaction, id, now)?
            .verified()
            .check_statement(signed)?;
        if !within_rate(*checked.party()) {
            return Err(StoreError::TooFast);
        }
        let kept: Option<String> = transaction
            .query_row(
                &format!(
                    "SELECT record FROM {} WHERE lobby_id = ?1 AND party_key = ?2",
                    T::TABLE
                ),
                params![id.to_string(), checked.party().to_string()],
                |row| row.get(0),
            )
            .optional()?;
        if let Some(kept) = kept {
            let kept: Signed<T> =
                from_json(&kept).map_err(|why| StoreError::Corrupt { id: *id, why })?;
            // What is kept was checked when it was stored.
            if kept
                .decode_unverified()
                .is_ok_and(|kept| !checked.supersedes(&kept))
            {
                return Err(StoreError::Stale);
            }
        }
        transaction.execute(
            &format!(
                "INSERT INTO {} (lobby_id, party_key, record) VALUES (?1, ?2, ?3)
                 ON CONFLICT (lobby_id, party_key) DO UPDATE SET record = excluded.record",
                T::TABLE
            ),
            params![id.to_string(), checked.party().to_string(), to_json(signed)],
        )?;
        transaction.commit()?;
        Ok(())
    }

    /// The latest statement of kind `T` of every party of a live lobby that made one.
    pub fn statements<T: StoredStatement>(
        &self,
        id: &LobbyId,
        now: u64,
    ) -> Result<Vec<Signed<T>>, StoreError> {
        let connection = self.lock();
        load_snapshot(&connection, id, now)?;
        load_statements(&connection, id)
    }

    /// What the session page shows: the lobby, when it expires and its parties' run reports.
    pub fn view(&self, id: &LobbyId, now: u64) -> Result<SessionView, StoreError> {
        let connection = self.lock();
        let lobby = self.restore(&connection, id, now)?;
        let expires_at: i64 = connection.query_row(
            "SELECT expires_at FROM lobbies WHERE id = ?1",
            params![id.to_string()],
            |row| row.get(0),
        )?;
        let reports = lobby
            .verified()
            .members_statements(&load_statements::<RunReport>(&connection, id)?);
        Ok(SessionView::new(
            lobby.verified(),
            &reports,
            expires_at.unsigned_abs(),
        ))
    }

    /// If lobby `id` is sealed and live, who created it (`Some(None)`: not known); `None` if
    /// it is not. A session's relay serves only such a lobby.
    pub fn sealed_creator(
        &self,
        id: &LobbyId,
        now: u64,
    ) -> Result<Option<Option<IpAddr>>, StoreError> {
        let found: Option<Option<String>> = self
            .lock()
            .query_row(
                "SELECT creator_address FROM lobbies
                 WHERE id = ?1 AND expires_at > ?2 AND manifest IS NOT NULL",
                params![id.to_string(), now as i64],
                |row| row.get(0),
            )
            .optional()?;
        Ok(found.map(|address| address.and_then(|text| text.parse().ok())))
    }

    /// Whether `party` is a party of lobby `id`, sealed and still live: the admission rule of
    /// the session's relay (agents connect to it only once their session is sealed).
    pub fn is_session_member(
        &self,
        id: &LobbyId,
        party: &PublicKey,
        now: u64,
    ) -> Result<bool, StoreError> {
        let found = self
            .lock()
            .query_row(
                "SELECT 1 FROM joins JOIN lobbies ON lobbies.id = joins.lobby_id
                 WHERE joins.lobby_id = ?1 AND joins.party_key = ?2 AND lobbies.expires_at > ?3
                   AND lobbies.manifest IS NOT NULL",
                params![id.to_string(), party.to_string(), now as i64],
                |_| Ok(()),
            )
            .optional()?;
        Ok(found.is_some())
    }

    /// The parties of lobby `id` in seat order, if it is sealed and still live (`None` if not):
    /// what a relay on another host asks before it admits a client (`mpcnet relay`).
    pub fn session_members(
        &self,
        id: &LobbyId,
        now: u64,
    ) -> Result<Option<Vec<PublicKey>>, StoreError> {
        if self.sealed_creator(id, now)?.is_none() {
            return Ok(None);
        }
        let connection = self.lock();
        let mut query =
            connection.prepare("SELECT party_key FROM joins WHERE lobby_id = ?1 ORDER BY seat")?;
        let keys = query
            .query_map(params![id.to_string()], |row| row.get::<_, String>(0))?
            .map(|key| {
                let key = key?;
                key.parse().map_err(|_| StoreError::Corrupt {
                    id: *id,
                    why: format!("a party key that does not parse: {key}"),
                })
            })
            .collect::<Result<Vec<PublicKey>, StoreError>>()?;
        Ok(Some(keys))
    }

    /// Deletes expired lobbies; returns how many.
    pub fn delete_expired(&self, now: u64) -> Result<usize, StoreError> {
        let connection = self.lock();
        let deleted = connection.execute(
            "DELETE FROM lobbies WHERE expires_at <= ?1",
            params![now as i64],
        )?;
        if deleted > 0 {
            self.verified_cache().clear();
        }
        Ok(deleted)
    }

    /// How many lobbies are live.
    pub fn live_lobbies(&self, now: u64) -> Result<u64, StoreError> {
        let count: i64 = self.lock().query_row(
            "SELECT COUNT(*) FROM lobbies WHERE expires_at > ?1",
            params![now as i64],
            |row| row.get(0),
        )?;
        Ok(count.unsigned_abs())
    }
}

/// How many program bytes the live lobbies may hold, in all and of one creating address.
#[derive(Debug, Clone, Copy)]
pub struct ProgramBudget {
    pub total: u64,
    pub per_creator: u64,
}

impl ProgramBudget {
    fn check(
        &self,
        connection: &Connection,
        creator: Option<&str>,
        adding: u64,
        now: u64,
    ) -> Result<(), StoreError> {
        let held: i64 = connection.query_row(
            "SELECT COALESCE(SUM(length(program)), 0) FROM lobbies WHERE expires_at > ?1",
            params![now as i64],
            |row| row.get(0),
        )?;
        if held.unsigned_abs().saturating_add(adding) > self.total {
            return Err(StoreError::ProgramsFull);
        }
        let Some(creator) = creator else {
            return Ok(());
        };
        let held: i64 = connection.query_row(
            "SELECT COALESCE(SUM(length(program)), 0) FROM lobbies
             WHERE expires_at > ?1 AND creator_address = ?2",
            params![now as i64, creator],
            |row| row.get(0),
        )?;
        if held.unsigned_abs().saturating_add(adding) > self.per_creator {
            return Err(StoreError::ProgramsPerCreator {
                limit: self.per_creator,
            });
        }
        Ok(())
    }
}

/// Adds the `creator_address` column to a database made before it existed.
fn add_creator_address(connection: &Connection) -> Result<(), StoreError> {
    let has_it = connection
        .prepare("SELECT 1 FROM pragma_table_info('lobbies') WHERE name = 'creator_address'")?
        .exists([])?;
    if !has_it {
        connection.execute_batch("ALTER TABLE lobbies ADD COLUMN creator_address TEXT")?;
    }
    Ok(())
}

/// Stores `party`'s join in its seat (the seats of a named session may be taken in any order).
fn insert_join(
    connection: &Connection,
    id: &LobbyId,
    party: &Party,
    join: &SignedJoin,
) -> Result<(), StoreError> {
    connection.execute(
        "INSERT INTO joins (lobby_id, seat, party_key, record) VALUES (?1, ?2, ?3, ?4)",
        params![
            id.to_string(),
            i64::from(party.index),
            party.key.to_string(),
            to_json(join)
        ],
    )?;
    Ok(())
}

/// A party statement and the table that keeps the latest of each party.
pub trait StoredStatement: PartyStatement + Send + 'static {
    const TABLE: &'static str;
    /// Whether the session page shows it, so that a new one is news for its live pages.
    const SHOWN_ON_PAGE: bool;
}

impl StoredStatement for EndpointAnnouncement {
    const TABLE: &'static str = "endpoints";
    const SHOWN_ON_PAGE: bool = false;
}

impl StoredStatement for RunReport {
    const TABLE: &'static str = "run_reports";
    const SHOWN_ON_PAGE: bool = true;
}

fn load_statements<T: StoredStatement>(
    connection: &Connection,
    id: &LobbyId,
) -> Result<Vec<Signed<T>>, StoreError> {
    let mut statement = connection.prepare_cached(&format!(
        "SELECT record FROM {} WHERE lobby_id = ?1 ORDER BY party_key",
        T::TABLE
    ))?;
    statement
        .query_map(params![id.to_string()], |row| row.get::<_, String>(0))?
        .map(|record| from_json(&record?).map_err(|why| StoreError::Corrupt { id: *id, why }))
        .collect()
}

fn load_snapshot(
    connection: &Connection,
    id: &LobbyId,
    now: u64,
) -> Result<LobbySnapshot, StoreError> {
    let corrupt = |why: String| StoreError::Corrupt { id: *id, why };
    let row: Option<(String, Option<String>)> = connection
        .query_row(
            "SELECT offer, manifest FROM lobbies WHERE id = ?1 AND expires_at > ?2",
            params![id.to_string(), now as i64],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .optional()?;
    let (offer, manifest) = row.ok_or(StoreError::NotFound)?;
    let mut statement =
        connection.prepare_cached("SELECT record FROM joins WHERE lobby_id = ?1 ORDER BY seat")?;
    let joins = statement
        .query_map(params![id.to_string()], |row| row.get::<_, String>(0))?
        .map(|record| from_json(&record?).map_err(corrupt))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(LobbySnapshot {
        offer: from_json(&offer).map_err(corrupt)?,
        joins,
        manifest: manifest
            .map(|m| from_json(&m))
            .transpose()
            .map_err(corrupt)?,
    })
}

fn restore(connection: &Connection, id: &LobbyId, now: u64) -> Result<Lobby, StoreError> {
    let snapshot = load_snapshot(connection, id, now)?;
    Lobby::restore(snapshot).map_err(|e| StoreError::Corrupt {
        id: *id,
        why: e.to_string(),
    })
}

fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("plain data always serializes")
}

fn from_json<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, String> {
    serde_json::from_str(text).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use mpcnet_proto::offer::ProgramInfo;
    use mpcnet_proto::{Identity, JoinSecret, Label, LobbyOffer, SignedOffer};

    use super::*;

    /// Stores a sealed lobby of two (`creator` and a stranger) living from `now` to `expires_at`.
    fn store_sealed(store: &Store, creator: &Identity, now: u64, expires_at: u64) -> LobbyId {
        let (lobby, secret) = lobby(creator);
        let id = lobby.verified().offer.lobby_id;
        let budget = ProgramBudget {
            total: 1 << 20,
            per_creator: 1 << 20,
        };
        store
            .insert(&lobby, b"x", None, budget, (now, expires_at))
            .expect("insert");
        let offer = &lobby.snapshot().offer;
        let other = SignedJoin::new(
            &Identity::generate(),
            Label::new("name", "bob").expect("label"),
            &secret,
            offer,
        );
        store.admit(&id, other, now).expect("admit");
        let manifest = store.snapshot(&id, now).expect("snapshot").seal(creator);
        store.seal(&id, manifest, now).expect("seal");
        id
    }

    fn lobby(creator: &Identity) -> (Lobby, JoinSecret) {
        let label = |text: &str| Label::new("name", text).expect("label");
        let secret = JoinSecret::generate();
        let offer = LobbyOffer {
            lobby_id: secret.lobby_id(),
            name: label("ttl"),
            parties: 2,
            creator: creator.public(),
            join_key: secret.join_key().public(),
            program: ProgramInfo::describe(label("p.py"), b"x"),
            args: Vec::new(),
            relay_url: "https://127.0.0.1:7000/".parse().expect("url"),
            extra_relays: Vec::new(),
            seats: Vec::new(),
            require_identity: None,
            roles: Vec::new(),
        };
        let offer = SignedOffer::create(&offer, creator).expect("offer");
        let creator_join = SignedJoin::new(creator, label("alice"), &secret, &offer);
        (Lobby::create(offer, creator_join).expect("lobby"), secret)
    }

    #[test]
    fn expired_lobbies_vanish_from_reads_the_relay_and_the_database() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("db")).expect("store");
        let (short, long) = (Identity::generate(), Identity::generate());
        let short_id = store_sealed(&store, &short, 100, 200);
        let long_id = store_sealed(&store, &long, 100, 10_000);

        assert!(store.snapshot(&short_id, 199).is_ok());
        assert!((store.is_session_member(&short_id, &short.public(), 199)).expect("query"));
        assert!(
            !(store.is_session_member(&long_id, &short.public(), 199)).expect("query"),
            "a party of one session is no member of another"
        );
        assert!(matches!(
            store.snapshot(&short_id, 200),
            Err(StoreError::NotFound)
        ));
        assert!(matches!(
            store.program(&short_id, 200),
            Err(StoreError::NotFound)
        ));
        assert!(!(store.is_session_member(&short_id, &short.public(), 200)).expect("query"));
        assert_eq!(store.sealed_creator(&short_id, 200).expect("query"), None);

        assert_eq!(store.live_lobbies(200).expect("count"), 1);
        assert_eq!(store.delete_expired(200).expect("delete"), 1);
        assert_eq!(store.delete_expired(200).expect("delete"), 0);
        assert!((store.is_session_member(&long_id, &long.public(), 200)).expect("query"));
        let joins: i64 = store
            .lock()
            .query_row("SELECT COUNT(*) FROM joins", [], |row| row.get(0))
            .expect("count");
        assert_eq!(joins, 2, "the expired lobby's joins are deleted with it");
    }
}

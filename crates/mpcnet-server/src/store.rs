//! The lobby store: SQLite in WAL mode, so a restarted server loses no lobby.
//!
//! The store keeps exactly what the parties signed. Reads hand it back as stored (the
//! parties verify it themselves); writes go through [`Lobby`], so the server never stores
//! a step a party would refuse.

use std::path::Path;
use std::sync::{Arc, Mutex};

use mpcnet_proto::api::SessionView;
use mpcnet_proto::lobby::Admission;
use mpcnet_proto::signed::Signed;
use mpcnet_proto::{
    EndpointAnnouncement, Lobby, LobbyError, LobbyId, LobbySnapshot, PartyStatement, PublicKey,
    RunReport, SignedJoin, SignedManifest,
};
use rusqlite::{Connection, OptionalExtension, params};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS lobbies (
    id          TEXT PRIMARY KEY,
    offer       TEXT NOT NULL,      -- JSON SignedOffer, as the creator signed it
    program     BLOB NOT NULL,
    created_at  INTEGER NOT NULL,   -- Unix seconds
    expires_at  INTEGER NOT NULL,
    manifest    TEXT                -- JSON SignedManifest, once sealed
);
CREATE TABLE IF NOT EXISTS joins (
    lobby_id    TEXT NOT NULL REFERENCES lobbies(id) ON DELETE CASCADE,
    seat        INTEGER NOT NULL,   -- join order: the party index the creator seals
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
    #[error(transparent)]
    Lobby(#[from] LobbyError),
    #[error("stored lobby {id} is damaged: {why}")]
    Corrupt { id: LobbyId, why: String },
    #[error("database: {0}")]
    Database(#[from] rusqlite::Error),
}

/// A handle to the lobby database; clones share one connection.
#[derive(Clone, Debug)]
pub struct Store {
    connection: Arc<Mutex<Connection>>,
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
        Ok(Self {
            connection: Arc::new(Mutex::new(connection)),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves SQLite consistent (transactions roll back), so go on.
        self.connection
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Stores a new lobby with its program.
    pub fn insert(
        &self,
        lobby: &Lobby,
        program: &[u8],
        now: u64,
        expires_at: u64,
    ) -> Result<(), StoreError> {
        let snapshot = lobby.snapshot();
        let id = lobby.verified().offer.lobby_id;
        let mut connection = self.lock();
        let transaction = connection.transaction()?;
        let inserted = transaction.execute(
            "INSERT OR IGNORE INTO lobbies (id, offer, program, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![id.to_string(), to_json(&snapshot.offer), program, now as i64, expires_at as i64],
        )?;
        if inserted == 0 {
            return Err(StoreError::Exists);
        }
        for (seat, (join, party)) in snapshot
            .joins
            .iter()
            .zip(&lobby.verified().parties)
            .enumerate()
        {
            insert_join(&transaction, &id, seat, &party.key, join)?;
        }
        transaction.commit()?;
        Ok(())
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
        let mut lobby = restore(&transaction, id, now)?;
        let admission = lobby.admit(join)?;
        if !admission.repeated {
            let seat = usize::from(admission.index);
            let party = &lobby.verified().parties[seat];
            insert_join(
                &transaction,
                id,
                seat,
                &party.key,
                &lobby.snapshot().joins[seat],
            )?;
            transaction.commit()?;
        }
        Ok(admission)
    }

    /// Stores the creator's seal.
    pub fn seal(&self, id: &LobbyId, manifest: SignedManifest, now: u64) -> Result<(), StoreError> {
        let mut connection = self.lock();
        let transaction = connection.transaction()?;
        let mut lobby = restore(&transaction, id, now)?;
        lobby.seal(manifest)?;
        let manifest = lobby.snapshot().manifest.as_ref().map(to_json);
        transaction.execute(
            "UPDATE lobbies SET manifest = ?2 WHERE id = ?1",
            params![id.to_string(), manifest],
        )?;
        transaction.commit()?;
        Ok(())
    }

    /// Keeps a member's latest statement of kind `T` (announcement or run report).
    pub fn put_statement<T: StoredStatement>(
        &self,
        id: &LobbyId,
        signed: &Signed<T>,
        now: u64,
    ) -> Result<(), StoreError> {
        let mut connection = self.lock();
        let transaction = connection.transaction()?;
        let checked = restore(&transaction, id, now)?
            .verified()
            .check_statement(signed)?;
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
        let lobby = restore(&connection, id, now)?;
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

    /// Whether `party` is a party of a sealed lobby that is still live: the relay's admission
    /// rule (agents connect to the relay only once their session is sealed).
    pub fn is_member(&self, party: &PublicKey, now: u64) -> Result<bool, StoreError> {
        let found = self
            .lock()
            .query_row(
                "SELECT 1 FROM joins JOIN lobbies ON lobbies.id = joins.lobby_id
                 WHERE joins.party_key = ?1 AND lobbies.expires_at > ?2
                   AND lobbies.manifest IS NOT NULL LIMIT 1",
                params![party.to_string(), now as i64],
                |_| Ok(()),
            )
            .optional()?;
        Ok(found.is_some())
    }

    /// Deletes expired lobbies; returns how many.
    pub fn delete_expired(&self, now: u64) -> Result<usize, StoreError> {
        Ok(self.lock().execute(
            "DELETE FROM lobbies WHERE expires_at <= ?1",
            params![now as i64],
        )?)
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

fn insert_join(
    connection: &Connection,
    id: &LobbyId,
    seat: usize,
    party: &PublicKey,
    join: &SignedJoin,
) -> Result<(), StoreError> {
    connection.execute(
        "INSERT INTO joins (lobby_id, seat, party_key, record) VALUES (?1, ?2, ?3, ?4)",
        params![
            id.to_string(),
            seat as i64,
            party.to_string(),
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
        store.insert(&lobby, b"x", now, expires_at).expect("insert");
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
        store_sealed(&store, &long, 100, 10_000);

        assert!(store.snapshot(&short_id, 199).is_ok());
        assert!(store.is_member(&short.public(), 199).expect("query"));
        assert!(matches!(
            store.snapshot(&short_id, 200),
            Err(StoreError::NotFound)
        ));
        assert!(matches!(
            store.program(&short_id, 200),
            Err(StoreError::NotFound)
        ));
        assert!(!store.is_member(&short.public(), 200).expect("query"));

        assert_eq!(store.live_lobbies(200).expect("count"), 1);
        assert_eq!(store.delete_expired(200).expect("delete"), 1);
        assert_eq!(store.delete_expired(200).expect("delete"), 0);
        assert!(store.is_member(&long.public(), 200).expect("query"));
        let joins: i64 = store
            .lock()
            .query_row("SELECT COUNT(*) FROM joins", [], |row| row.get(0))
            .expect("count");
        assert_eq!(joins, 2, "the expired lobby's joins are deleted with it");
    }
}

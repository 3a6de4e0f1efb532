/**
 * The registry's SQLite schema, versioned with `PRAGMA user_version`. Each
 * entry of MIGRATIONS moves the schema up one version inside a transaction;
 * add new versions at the end and never edit a released one.
 */
import type Database from 'better-sqlite3'
import { RegistryError, RegistryErrorCode } from './errors.js'

const MIGRATIONS: readonly string[] = [
  // 1: initial schema.
  `
  CREATE TABLE counters (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
  );
  INSERT INTO counters (name, value) VALUES ('next_node', 1);

  CREATE TABLE nodes (
    id         INTEGER PRIMARY KEY,
    public_key TEXT NOT NULL UNIQUE,
    owner      TEXT,
    real_addr  TEXT,
    is_public  INTEGER NOT NULL DEFAULT 0,
    hostname   TEXT,
    tags       TEXT NOT NULL DEFAULT '[]',
    polo_score INTEGER NOT NULL DEFAULT 0,
    task_exec  INTEGER NOT NULL DEFAULT 0,
    last_seen  INTEGER NOT NULL,
    online     INTEGER NOT NULL DEFAULT 1,
    created    INTEGER NOT NULL
  );
  -- Offline nodes have no hostname, so this makes hostnames unique among online nodes.
  CREATE UNIQUE INDEX nodes_hostname ON nodes (hostname) WHERE hostname IS NOT NULL;
  CREATE INDEX nodes_online_last_seen ON nodes (online, last_seen);

  -- Every key a node has used, never pruned; retired = replaced by rotate_key.
  CREATE TABLE key_index (
    public_key TEXT PRIMARY KEY,
    node_id    INTEGER NOT NULL REFERENCES nodes (id),
    retired    INTEGER NOT NULL DEFAULT 0,
    created    INTEGER NOT NULL
  );

  -- Unordered pairs stored as (min, max).
  CREATE TABLE trust_pairs (
    node_a  INTEGER NOT NULL REFERENCES nodes (id),
    node_b  INTEGER NOT NULL REFERENCES nodes (id),
    origin  TEXT NOT NULL,
    created INTEGER NOT NULL,
    PRIMARY KEY (node_a, node_b),
    CHECK (node_a < node_b)
  );

  -- One side's declaration "from trusts to"; a pair needs both directions.
  CREATE TABLE trust_reports (
    from_id INTEGER NOT NULL REFERENCES nodes (id),
    to_id   INTEGER NOT NULL REFERENCES nodes (id),
    created INTEGER NOT NULL,
    PRIMARY KEY (from_id, to_id)
  );

  CREATE TABLE handshake_requests (
    from_id       INTEGER NOT NULL REFERENCES nodes (id),
    to_id         INTEGER NOT NULL REFERENCES nodes (id),
    justification TEXT NOT NULL,
    timestamp     INTEGER NOT NULL,
    received      INTEGER NOT NULL,
    polled        INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (from_id, to_id)
  );
  CREATE INDEX handshake_requests_to ON handshake_requests (to_id, polled);

  CREATE TABLE handshake_responses (
    from_id   INTEGER NOT NULL REFERENCES nodes (id),
    to_id     INTEGER NOT NULL REFERENCES nodes (id),
    accept    INTEGER NOT NULL,
    timestamp INTEGER NOT NULL,
    PRIMARY KEY (from_id, to_id)
  );
  CREATE INDEX handshake_responses_to ON handshake_responses (to_id);

  CREATE TABLE beacons (
    id        INTEGER PRIMARY KEY,
    addr      TEXT NOT NULL,
    last_seen INTEGER NOT NULL
  );
  `,
]

export const SCHEMA_VERSION = MIGRATIONS.length

/** Brings the database up to SCHEMA_VERSION; refuses one written by newer code. */
export function migrateSchema(db: Database.Database): void {
  const current = db.pragma('user_version', { simple: true }) as number
  if (current > SCHEMA_VERSION) {
    throw new RegistryError(
      RegistryErrorCode.STORE,
      `registry store has schema version ${current}; this pilot-tun understands up to ${SCHEMA_VERSION}`,
      { hint: 'run a newer pilot-tun, or point --store at another file' },
    )
  }
  for (let version = current; version < SCHEMA_VERSION; version++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[version]!)
      db.pragma(`user_version = ${version + 1}`)
    })()
  }
}

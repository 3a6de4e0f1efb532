/**
 * The registry's SQLite schema, versioned with `PRAGMA user_version`. Each
 * entry of MIGRATIONS moves the schema up one version inside a transaction;
 * add new versions at the end and never edit a released one. The PostgreSQL
 * store's versions mean the same (1 nodes, keys, trust, handshakes, beacons;
 * 2 networks, audit, nonces; 3 rate_windows and maintenance).
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
  // 2: networks (issue 13): members with roles, invites, used request nonces, audit chains.
  `
  INSERT INTO counters (name, value) VALUES ('next_network', 1);

  CREATE TABLE networks (
    id              INTEGER PRIMARY KEY,
    name            TEXT NOT NULL UNIQUE,
    join_rule       TEXT NOT NULL,
    -- token rule only: scrypt of the token with this network's own random salt (hex); never the token.
    token_salt      TEXT,
    token_hash      TEXT,
    max_members     INTEGER NOT NULL,
    allowed_ports   TEXT NOT NULL DEFAULT '[]',
    members_resolve INTEGER NOT NULL,
    created         INTEGER NOT NULL
  );

  CREATE TABLE network_members (
    network_id INTEGER NOT NULL REFERENCES networks (id),
    node_id    INTEGER NOT NULL REFERENCES nodes (id),
    role       TEXT NOT NULL,
    joined     INTEGER NOT NULL,
    PRIMARY KEY (network_id, node_id)
  );
  CREATE INDEX network_members_node ON network_members (node_id);

  CREATE TABLE network_invites (
    network_id INTEGER NOT NULL REFERENCES networks (id),
    nonce      TEXT NOT NULL,
    inviter_id INTEGER NOT NULL,
    invitee_id INTEGER NOT NULL,
    expires    INTEGER NOT NULL,
    signature  TEXT NOT NULL,
    used       INTEGER NOT NULL DEFAULT 0,
    created    INTEGER NOT NULL,
    PRIMARY KEY (network_id, nonce)
  );
  CREATE INDEX network_invites_invitee ON network_invites (network_id, invitee_id);

  -- (node, nonce) of every signed network write, kept past the ±300 s window (pruned by the reaper).
  CREATE TABLE used_nonces (
    node_id INTEGER NOT NULL,
    nonce   TEXT NOT NULL,
    seen    INTEGER NOT NULL,
    PRIMARY KEY (node_id, nonce)
  );
  CREATE INDEX used_nonces_seen ON used_nonces (seen);

  -- Append-only hash chains, one per network; chain 0 holds trust changes (audit-chain.ts).
  CREATE TABLE audit_log (
    network_id INTEGER NOT NULL,
    seq        INTEGER NOT NULL,
    time       INTEGER NOT NULL,
    actor      INTEGER NOT NULL,
    actor_key  TEXT NOT NULL,
    action     TEXT NOT NULL,
    subject    INTEGER NOT NULL,
    detail     TEXT NOT NULL,
    signed     TEXT NOT NULL,
    signature  TEXT NOT NULL,
    prev       TEXT NOT NULL,
    hash       TEXT NOT NULL,
    PRIMARY KEY (network_id, seq)
  );
  `,
  // 3 (issue 14): state that was one process's memory, shared by every front end of a database.
  `
  -- Fixed-window counters (takeRateToken), e.g. the network token-guess bounds token:<node> and token:*.
  CREATE TABLE rate_windows (
    key          TEXT PRIMARY KEY,
    window_start INTEGER NOT NULL,
    count        INTEGER NOT NULL
  );

  -- When each periodic job (the reaper: 'reap') last ran, so one front end runs it per interval.
  CREATE TABLE maintenance (
    name     TEXT PRIMARY KEY,
    last_run INTEGER NOT NULL
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

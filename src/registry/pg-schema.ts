/**
 * The registry's PostgreSQL schema (issue 14), versioned in a `schema_version`
 * table. Versions mean what they mean in the SQLite schema (schema.ts):
 * 1 nodes, keys, trust, handshake inboxes and beacons; 2 networks, members,
 * invites, write nonces and audit chains; 3 shared rate windows and
 * maintenance times. Add new versions at the end; never edit a released one.
 *
 * Differences from SQLite, by design: node and network IDs come from
 * SEQUENCEs (several front ends allocate at once; a rolled-back allocation
 * leaves a gap, never a reuse), flags are BOOLEAN, milliseconds BIGINT, and
 * rows whose SQLite order came from `rowid` carry a BIGSERIAL `ord` instead.
 *
 * Several front ends may start at once: each migration runs in its own
 * transaction under one advisory lock, and re-reads the version after taking it.
 */
import type { PoolClient } from 'pg'
import { RegistryError, RegistryErrorCode } from './errors.js'

/** The key of the advisory lock migrations run under (any constant; "ptmg"). */
const MIGRATION_LOCK = 0x70746d67

const MIGRATIONS: readonly string[] = [
  // 1: nodes, keys, trust, handshake inboxes, beacons.
  `
  CREATE SEQUENCE node_ids START 1 MINVALUE 1 MAXVALUE 4294967295;

  CREATE TABLE nodes (
    id         BIGINT PRIMARY KEY,
    public_key TEXT NOT NULL UNIQUE,
    owner      TEXT,
    real_addr  TEXT,
    is_public  BOOLEAN NOT NULL DEFAULT false,
    hostname   TEXT,
    tags       TEXT NOT NULL DEFAULT '[]',
    polo_score INTEGER NOT NULL DEFAULT 0,
    task_exec  BOOLEAN NOT NULL DEFAULT false,
    last_seen  BIGINT NOT NULL,
    online     BOOLEAN NOT NULL DEFAULT true,
    created    BIGINT NOT NULL
  );
  -- Offline nodes have no hostname, so this makes hostnames unique among online nodes.
  CREATE UNIQUE INDEX nodes_hostname ON nodes (hostname) WHERE hostname IS NOT NULL;
  CREATE INDEX nodes_online_last_seen ON nodes (online, last_seen);

  -- Every key a node has used, never pruned; retired = replaced by rotate_key.
  CREATE TABLE key_index (
    public_key TEXT PRIMARY KEY,
    node_id    BIGINT NOT NULL REFERENCES nodes (id),
    retired    BOOLEAN NOT NULL DEFAULT false,
    created    BIGINT NOT NULL
  );

  -- Unordered pairs stored as (min, max).
  CREATE TABLE trust_pairs (
    node_a  BIGINT NOT NULL REFERENCES nodes (id),
    node_b  BIGINT NOT NULL REFERENCES nodes (id),
    origin  TEXT NOT NULL,
    created BIGINT NOT NULL,
    PRIMARY KEY (node_a, node_b),
    CHECK (node_a < node_b)
  );

  CREATE TABLE trust_reports (
    from_id BIGINT NOT NULL REFERENCES nodes (id),
    to_id   BIGINT NOT NULL REFERENCES nodes (id),
    created BIGINT NOT NULL,
    PRIMARY KEY (from_id, to_id)
  );

  CREATE TABLE handshake_requests (
    from_id       BIGINT NOT NULL REFERENCES nodes (id),
    to_id         BIGINT NOT NULL REFERENCES nodes (id),
    justification TEXT NOT NULL,
    timestamp     BIGINT NOT NULL,
    received      BIGINT NOT NULL,
    polled        BOOLEAN NOT NULL DEFAULT false,
    PRIMARY KEY (from_id, to_id)
  );
  CREATE INDEX handshake_requests_to ON handshake_requests (to_id, polled);

  CREATE TABLE handshake_responses (
    from_id   BIGINT NOT NULL REFERENCES nodes (id),
    to_id     BIGINT NOT NULL REFERENCES nodes (id),
    accept    BOOLEAN NOT NULL,
    timestamp BIGINT NOT NULL,
    ord       BIGSERIAL,
    PRIMARY KEY (from_id, to_id)
  );
  CREATE INDEX handshake_responses_to ON handshake_responses (to_id);

  CREATE TABLE beacons (
    id        BIGINT PRIMARY KEY,
    addr      TEXT NOT NULL,
    last_seen BIGINT NOT NULL
  );
  `,
  // 2: networks (issue 13): members with roles, invites, used request nonces, audit chains.
  `
  CREATE SEQUENCE network_ids START 1 MINVALUE 1;

  CREATE TABLE networks (
    id              INTEGER PRIMARY KEY,
    name            TEXT NOT NULL UNIQUE,
    join_rule       TEXT NOT NULL,
    token_salt      TEXT,
    token_hash      TEXT,
    max_members     INTEGER NOT NULL,
    allowed_ports   TEXT NOT NULL DEFAULT '[]',
    members_resolve BOOLEAN NOT NULL,
    created         BIGINT NOT NULL
  );

  CREATE TABLE network_members (
    network_id INTEGER NOT NULL REFERENCES networks (id),
    node_id    BIGINT NOT NULL REFERENCES nodes (id),
    role       TEXT NOT NULL,
    joined     BIGINT NOT NULL,
    PRIMARY KEY (network_id, node_id)
  );
  CREATE INDEX network_members_node ON network_members (node_id);

  CREATE TABLE network_invites (
    network_id INTEGER NOT NULL REFERENCES networks (id),
    nonce      TEXT NOT NULL,
    inviter_id BIGINT NOT NULL,
    invitee_id BIGINT NOT NULL,
    expires    BIGINT NOT NULL,
    signature  TEXT NOT NULL,
    used       BOOLEAN NOT NULL DEFAULT false,
    created    BIGINT NOT NULL,
    ord        BIGSERIAL,
    PRIMARY KEY (network_id, nonce)
  );
  CREATE INDEX network_invites_invitee ON network_invites (network_id, invitee_id);

  CREATE TABLE used_nonces (
    node_id BIGINT NOT NULL,
    nonce   TEXT NOT NULL,
    seen    BIGINT NOT NULL,
    PRIMARY KEY (node_id, nonce)
  );
  CREATE INDEX used_nonces_seen ON used_nonces (seen);

  -- Append-only hash chains, one per network; chain 0 holds trust changes (audit-chain.ts).
  -- The primary key is what keeps a chain linear with several front ends appending.
  CREATE TABLE audit_log (
    network_id INTEGER NOT NULL,
    seq        BIGINT NOT NULL,
    time       BIGINT NOT NULL,
    actor      BIGINT NOT NULL,
    actor_key  TEXT NOT NULL,
    action     TEXT NOT NULL,
    subject    BIGINT NOT NULL,
    detail     TEXT NOT NULL,
    signed     TEXT NOT NULL,
    signature  TEXT NOT NULL,
    prev       TEXT NOT NULL,
    hash       TEXT NOT NULL,
    PRIMARY KEY (network_id, seq)
  );
  `,
  // 3: state several front ends share: fixed-window rate counters and maintenance run times.
  `
  CREATE TABLE rate_windows (
    key          TEXT PRIMARY KEY,
    window_start BIGINT NOT NULL,
    count        INTEGER NOT NULL
  );

  CREATE TABLE maintenance (
    name     TEXT PRIMARY KEY,
    last_run BIGINT NOT NULL
  );
  `,
]

export const PG_SCHEMA_VERSION = MIGRATIONS.length

/** The version stored in the database (0 for an empty one). */
export async function readSchemaVersion(client: Pick<PoolClient, 'query'>): Promise<number> {
  const exists = await client.query<{ t: string | null }>(`SELECT to_regclass('schema_version')::text AS t`)
  if (exists.rows[0]?.t == null) return 0
  const r = await client.query<{ v: number | null }>('SELECT max(version)::int AS v FROM schema_version')
  return r.rows[0]?.v ?? 0
}

/** Brings the database up to PG_SCHEMA_VERSION; refuses one written by newer code. */
export async function migratePgSchema(client: PoolClient): Promise<void> {
  for (;;) {
    await client.query('BEGIN')
    try {
      await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK])
      await client.query('CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied BIGINT NOT NULL)')
      const current = await readSchemaVersion(client)
      if (current > PG_SCHEMA_VERSION) {
        throw new RegistryError(
          RegistryErrorCode.STORE,
          `registry store has schema version ${current}; this pilot-tun understands up to ${PG_SCHEMA_VERSION}`,
          { hint: 'run a newer pilot-tun, or point --store at another database' },
        )
      }
      if (current === PG_SCHEMA_VERSION) {
        await client.query('COMMIT')
        return
      }
      await client.query(MIGRATIONS[current]!)
      await client.query('INSERT INTO schema_version (version, applied) VALUES ($1, $2)', [current + 1, Date.now()])
      await client.query('COMMIT')
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined)
      throw err
    }
  }
}

/*
 * schema.c - the store's schema as forward migrations.
 *
 * store_migrations[i] takes a store from PRAGMA user_version i to i + 1.
 * store_migrate (store.c) runs the missing ones in one BEGIN IMMEDIATE
 * transaction and then sets user_version, so a store is always at exactly
 * one version. Migrations are append-only: a released entry is never edited;
 * a change is a new entry (ALTER TABLE ADD COLUMN, a new table, or a view
 * dropped and recreated). docs/store.md documents every column.
 *
 * Conventions: times are ISO-8601 UTC text with milliseconds
 * ("2025-01-31T12:00:00.123Z"); a NaN loss, grad_norm or metric value is
 * stored as NULL (SQLite turns a bound NaN into NULL) and +/-Inf as the
 * IEEE infinities, which SQLite keeps and compares (SQL spells them 9e999
 * and -9e999).
 */
#include "store/store_int.h"

/* Version 0 -> 1: runs, steps, nan_events, metrics, run_summary. */
static const char migration_1[] =
    "CREATE TABLE runs (\n"
    "    id           INTEGER PRIMARY KEY,\n"
    "    pipeline     TEXT NOT NULL,\n"
    "    name         TEXT NOT NULL,\n"
    "    strategy     TEXT NOT NULL,\n"
    "    status       TEXT NOT NULL DEFAULT 'queued' CHECK (status IN\n"
    "                 ('queued', 'running', 'finished', 'diverged', 'failed', 'interrupted')),\n"
    "    config_json  TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(config_json)),\n"
    "    config_hash  TEXT,\n"
    "    seed         INTEGER,\n"
    "    host         TEXT,\n"
    "    created_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),\n"
    "    started_at   TEXT,\n"
    "    finished_at  TEXT,\n"
    "    orch_version TEXT,\n"
    "    error        TEXT\n"
    ");\n"
    "CREATE INDEX runs_pipeline ON runs (pipeline);\n"
    "CREATE INDEX runs_status ON runs (status);\n"
    "\n"
    "CREATE TABLE steps (\n"
    "    run_id    INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,\n"
    "    step      INTEGER NOT NULL,\n"
    "    loss      REAL,\n"
    "    grad_norm REAL,\n"
    "    lr        REAL,\n"
    "    wall_ms   REAL,\n"
    "    finite    INTEGER GENERATED ALWAYS AS (loss IS NOT NULL AND grad_norm IS NOT NULL\n"
    "              AND abs(loss) < 9e999 AND abs(grad_norm) < 9e999) VIRTUAL,\n"
    "    PRIMARY KEY (run_id, step)\n"
    ") WITHOUT ROWID;\n"
    "\n"
    "CREATE TABLE nan_events (\n"
    "    id            INTEGER PRIMARY KEY,\n"
    "    run_id        INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,\n"
    "    step          INTEGER NOT NULL,\n"
    "    phase         TEXT NOT NULL CHECK (phase IN ('forward', 'backward', 'update')),\n"
    "    stage         TEXT NOT NULL,\n"
    "    tensor        TEXT,\n"
    "    nan_count     INTEGER NOT NULL DEFAULT 0 CHECK (nan_count >= 0),\n"
    "    inf_count     INTEGER NOT NULL DEFAULT 0 CHECK (inf_count >= 0),\n"
    "    input_absmax  REAL,\n"
    "    inputs_finite INTEGER CHECK (inputs_finite IN (0, 1))\n"
    ");\n"
    "CREATE INDEX nan_events_run_step ON nan_events (run_id, step, id);\n"
    "\n"
    "CREATE TABLE metrics (\n"
    "    run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,\n"
    "    step   INTEGER NOT NULL,\n"
    "    name   TEXT NOT NULL,\n"
    "    value  REAL,\n"
    "    PRIMARY KEY (run_id, name, step)\n"
    ") WITHOUT ROWID;\n"
    "\n"
    "CREATE VIEW run_summary AS\n"
    "SELECT r.id AS run_id,\n"
    "       r.pipeline,\n"
    "       r.name,\n"
    "       r.strategy,\n"
    "       json_extract(r.config_json, '$.optimizer.lr') AS lr,\n"
    "       json_extract(r.config_json, '$.precision') AS precision,\n"
    "       r.seed,\n"
    "       r.status,\n"
    "       (SELECT count(*) FROM steps s WHERE s.run_id = r.id) AS steps,\n"
    "       (SELECT max(s.step) FROM steps s WHERE s.run_id = r.id) AS last_step,\n"
    "       (SELECT s.loss FROM steps s WHERE s.run_id = r.id\n"
    "         ORDER BY s.step DESC LIMIT 1) AS final_loss,\n"
    "       (SELECT min(s.loss) FROM steps s WHERE s.run_id = r.id\n"
    "         AND abs(s.loss) < 9e999) AS best_loss,\n"
    "       (SELECT max(s.grad_norm) FROM steps s WHERE s.run_id = r.id) AS max_grad_norm,\n"
    "       (SELECT count(*) FROM steps s WHERE s.run_id = r.id AND NOT s.finite)\n"
    "         AS nonfinite_steps,\n"
    "       (SELECT min(s.step) FROM steps s WHERE s.run_id = r.id AND NOT s.finite)\n"
    "         AS first_nonfinite_step,\n"
    "       e.step AS first_nan_step,\n"
    "       e.phase AS first_nan_phase,\n"
    "       e.stage AS first_nan_stage,\n"
    "       e.tensor AS first_nan_tensor,\n"
    "       (SELECT count(*) FROM nan_events n WHERE n.run_id = r.id) AS nan_events,\n"
    "       json_extract(r.config_json, '$.tags') AS tags,\n"
    "       r.created_at,\n"
    "       r.started_at,\n"
    "       r.finished_at\n"
    "  FROM runs r\n"
    "  LEFT JOIN nan_events e ON e.id = (SELECT n.id FROM nan_events n WHERE n.run_id = r.id\n"
    "                                     ORDER BY n.step, n.id LIMIT 1)\n"
    " ORDER BY r.id;\n";

/* Version 1 -> 2: the run lifecycle (runs.pid, runs.heartbeat_at),
 * per-stage statistics, checkpoint artifacts, and run_summary recreated
 * with steps_per_s, frozen_changed, last_checkpoint_step, pid, host and
 * heartbeat_at appended. Frozen-parameter changes are recorded as
 * nan_events rows with tensor 'frozen_changed'; they are not NaN events, so
 * the view's first_nan_* and nan_events leave them out (they count in
 * frozen_changed). Rows written by version 1 get NULL pid and heartbeat_at. */
static const char migration_2[] =
    "ALTER TABLE runs ADD COLUMN pid INTEGER;\n"
    "ALTER TABLE runs ADD COLUMN heartbeat_at TEXT;\n"
    "\n"
    "CREATE TABLE stage_stats (\n"
    "    run_id     INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,\n"
    "    step       INTEGER NOT NULL,\n"
    "    stage      TEXT NOT NULL,\n"
    "    act_absmax REAL,\n"
    "    act_rms    REAL,\n"
    "    grad_norm  REAL,\n"
    "    PRIMARY KEY (run_id, step, stage)\n"
    ") WITHOUT ROWID;\n"
    "\n"
    "CREATE TABLE artifacts (\n"
    "    id         INTEGER PRIMARY KEY,\n"
    "    run_id     INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,\n"
    "    step       INTEGER NOT NULL,\n"
    "    kind       TEXT NOT NULL CHECK (kind IN ('checkpoint')),\n"
    "    path       TEXT NOT NULL,\n"
    "    sha256     TEXT NOT NULL,\n"
    "    bytes      INTEGER CHECK (bytes >= 0),\n"
    "    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))\n"
    ");\n"
    "CREATE UNIQUE INDEX artifacts_run_kind_step ON artifacts (run_id, kind, step);\n"
    "\n"
    "CREATE VIEW run_checkpoints AS\n"
    "SELECT run_id, step, path, sha256, bytes, created_at FROM artifacts\n"
    " WHERE kind = 'checkpoint' ORDER BY run_id, step;\n"
    "\n"
    "DROP VIEW run_summary;\n"
    "CREATE VIEW run_summary AS\n"
    "SELECT r.id AS run_id,\n"
    "       r.pipeline,\n"
    "       r.name,\n"
    "       r.strategy,\n"
    "       json_extract(r.config_json, '$.optimizer.lr') AS lr,\n"
    "       json_extract(r.config_json, '$.precision') AS precision,\n"
    "       r.seed,\n"
    "       r.status,\n"
    "       (SELECT count(*) FROM steps s WHERE s.run_id = r.id) AS steps,\n"
    "       (SELECT max(s.step) FROM steps s WHERE s.run_id = r.id) AS last_step,\n"
    "       (SELECT s.loss FROM steps s WHERE s.run_id = r.id\n"
    "         ORDER BY s.step DESC LIMIT 1) AS final_loss,\n"
    "       (SELECT min(s.loss) FROM steps s WHERE s.run_id = r.id\n"
    "         AND abs(s.loss) < 9e999) AS best_loss,\n"
    "       (SELECT max(s.grad_norm) FROM steps s WHERE s.run_id = r.id) AS max_grad_norm,\n"
    "       (SELECT count(*) FROM steps s WHERE s.run_id = r.id AND NOT s.finite)\n"
    "         AS nonfinite_steps,\n"
    "       (SELECT min(s.step) FROM steps s WHERE s.run_id = r.id AND NOT s.finite)\n"
    "         AS first_nonfinite_step,\n"
    "       e.step AS first_nan_step,\n"
    "       e.phase AS first_nan_phase,\n"
    "       e.stage AS first_nan_stage,\n"
    "       e.tensor AS first_nan_tensor,\n"
    "       (SELECT count(*) FROM nan_events n WHERE n.run_id = r.id\n"
    "         AND n.tensor IS NOT 'frozen_changed') AS nan_events,\n"
    "       json_extract(r.config_json, '$.tags') AS tags,\n"
    "       r.created_at,\n"
    "       r.started_at,\n"
    "       r.finished_at,\n"
    "       (SELECT 1000.0 * count(s.wall_ms) / nullif(sum(s.wall_ms), 0) FROM steps s\n"
    "         WHERE s.run_id = r.id) AS steps_per_s,\n"
    "       (SELECT count(*) FROM nan_events n WHERE n.run_id = r.id\n"
    "         AND n.tensor = 'frozen_changed') AS frozen_changed,\n"
    "       (SELECT max(a.step) FROM artifacts a WHERE a.run_id = r.id\n"
    "         AND a.kind = 'checkpoint') AS last_checkpoint_step,\n"
    "       r.pid,\n"
    "       r.host,\n"
    "       r.heartbeat_at\n"
    "  FROM runs r\n"
    "  LEFT JOIN nan_events e ON e.id = (SELECT n.id FROM nan_events n WHERE n.run_id = r.id\n"
    "                                     AND n.tensor IS NOT 'frozen_changed'\n"
    "                                     ORDER BY n.step, n.id LIMIT 1)\n"
    " ORDER BY r.id;\n";

/* Version 2 -> 3: run ids are never reused; frozen-parameter changes and
 * the detach feature cache entries each run used get tables of their own.
 *
 * Run ids: runs.id becomes INTEGER PRIMARY
 * KEY AUTOINCREMENT, which SQLite allows only by rebuilding the table: a
 * copy with every row and column (same order, same ids), the old table
 * dropped and the copy renamed. store_migrate runs this with foreign keys
 * off (the DROP would otherwise cascade into every table pointing at runs)
 * and checks them before the COMMIT; the other tables keep pointing at
 * runs(id) by name. run_summary reads runs, so it is dropped first (a
 * RENAME re-checks the views) and recreated. sqlite_sequence
 * starts at the highest id copied.
 *
 * frozen_changes: version 2 stored a frozen-parameter change as a
 * nan_events row with tensor 'frozen_changed' (stage the parameter); those
 * rows move to the new table, in their order, and leave nan_events, so
 * nan_events holds NaN events only and no query filters a magic name.
 * run_summary.frozen_changed counts the new table.
 *
 * run_features: which feature cache entry (PATH.features/KEY.f32) each run
 * used, so `orch rm` removes exactly the entries no remaining run uses.
 * Stores of version 2 have no rows for their entries; rm keeps those. */
static const char migration_3[] =
    "DROP VIEW run_summary;\n"
    "CREATE TABLE runs_v3 (\n"
    "    id           INTEGER PRIMARY KEY AUTOINCREMENT,\n"
    "    pipeline     TEXT NOT NULL,\n"
    "    name         TEXT NOT NULL,\n"
    "    strategy     TEXT NOT NULL,\n"
    "    status       TEXT NOT NULL DEFAULT 'queued' CHECK (status IN\n"
    "                 ('queued', 'running', 'finished', 'diverged', 'failed', 'interrupted')),\n"
    "    config_json  TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(config_json)),\n"
    "    config_hash  TEXT,\n"
    "    seed         INTEGER,\n"
    "    host         TEXT,\n"
    "    created_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),\n"
    "    started_at   TEXT,\n"
    "    finished_at  TEXT,\n"
    "    orch_version TEXT,\n"
    "    error        TEXT,\n"
    "    pid          INTEGER,\n"
    "    heartbeat_at TEXT\n"
    ");\n"
    "INSERT INTO runs_v3 (id, pipeline, name, strategy, status, config_json, config_hash, seed,\n"
    "                     host, created_at, started_at, finished_at, orch_version, error, pid,\n"
    "                     heartbeat_at)\n"
    "SELECT id, pipeline, name, strategy, status, config_json, config_hash, seed, host,\n"
    "       created_at, started_at, finished_at, orch_version, error, pid, heartbeat_at\n"
    "  FROM runs ORDER BY id;\n"
    "DROP TABLE runs;\n"
    "ALTER TABLE runs_v3 RENAME TO runs;\n"
    "CREATE INDEX runs_pipeline ON runs (pipeline);\n"
    "CREATE INDEX runs_status ON runs (status);\n"
    "\n"
    "CREATE TABLE frozen_changes (\n"
    "    id        INTEGER PRIMARY KEY,\n"
    "    run_id    INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,\n"
    "    step      INTEGER NOT NULL,\n"
    "    parameter TEXT NOT NULL\n"
    ");\n"
    "CREATE INDEX frozen_changes_run_step ON frozen_changes (run_id, step, id);\n"
    "INSERT INTO frozen_changes (run_id, step, parameter)\n"
    "SELECT run_id, step, stage FROM nan_events WHERE tensor = 'frozen_changed'\n"
    " ORDER BY run_id, step, id;\n"
    "DELETE FROM nan_events WHERE tensor = 'frozen_changed';\n"
    "\n"
    "CREATE TABLE run_features (\n"
    "    run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,\n"
    "    key    TEXT NOT NULL CHECK (length(key) = 32),\n"
    "    PRIMARY KEY (run_id, key)\n"
    ") WITHOUT ROWID;\n"
    "CREATE INDEX run_features_key ON run_features (key);\n"
    "\n"
    /* Migration 2's view text again, on purpose: shipped migrations are frozen history. */
    "CREATE VIEW run_summary AS\n"
    "SELECT r.id AS run_id,\n"
    "       r.pipeline,\n"
    "       r.name,\n"
    "       r.strategy,\n"
    "       json_extract(r.config_json, '$.optimizer.lr') AS lr,\n"
    "       json_extract(r.config_json, '$.precision') AS precision,\n"
    "       r.seed,\n"
    "       r.status,\n"
    "       (SELECT count(*) FROM steps s WHERE s.run_id = r.id) AS steps,\n"
    "       (SELECT max(s.step) FROM steps s WHERE s.run_id = r.id) AS last_step,\n"
    "       (SELECT s.loss FROM steps s WHERE s.run_id = r.id\n"
    "         ORDER BY s.step DESC LIMIT 1) AS final_loss,\n"
    "       (SELECT min(s.loss) FROM steps s WHERE s.run_id = r.id\n"
    "         AND abs(s.loss) < 9e999) AS best_loss,\n"
    "       (SELECT max(s.grad_norm) FROM steps s WHERE s.run_id = r.id) AS max_grad_norm,\n"
    "       (SELECT count(*) FROM steps s WHERE s.run_id = r.id AND NOT s.finite)\n"
    "         AS nonfinite_steps,\n"
    "       (SELECT min(s.step) FROM steps s WHERE s.run_id = r.id AND NOT s.finite)\n"
    "         AS first_nonfinite_step,\n"
    "       e.step AS first_nan_step,\n"
    "       e.phase AS first_nan_phase,\n"
    "       e.stage AS first_nan_stage,\n"
    "       e.tensor AS first_nan_tensor,\n"
    "       (SELECT count(*) FROM nan_events n WHERE n.run_id = r.id) AS nan_events,\n"
    "       json_extract(r.config_json, '$.tags') AS tags,\n"
    "       r.created_at,\n"
    "       r.started_at,\n"
    "       r.finished_at,\n"
    "       (SELECT 1000.0 * count(s.wall_ms) / nullif(sum(s.wall_ms), 0) FROM steps s\n"
    "         WHERE s.run_id = r.id) AS steps_per_s,\n"
    "       (SELECT count(*) FROM frozen_changes f WHERE f.run_id = r.id) AS frozen_changed,\n"
    "       (SELECT max(a.step) FROM artifacts a WHERE a.run_id = r.id\n"
    "         AND a.kind = 'checkpoint') AS last_checkpoint_step,\n"
    "       r.pid,\n"
    "       r.host,\n"
    "       r.heartbeat_at\n"
    "  FROM runs r\n"
    "  LEFT JOIN nan_events e ON e.id = (SELECT n.id FROM nan_events n WHERE n.run_id = r.id\n"
    "                                     ORDER BY n.step, n.id LIMIT 1)\n"
    " ORDER BY r.id;\n";

/* Version 4: what computed a run. kernels is "blis VERSION SUBCONFIG",
 * kernels_why the reason for that sub-configuration, cpu the model and
 * family, threads the kernel thread count; runs of older stores keep NULL
 * (unknown), which compare shows as such. */
static const char migration_4[] = "ALTER TABLE runs ADD COLUMN kernels TEXT;\n"
                                  "ALTER TABLE runs ADD COLUMN kernels_why TEXT;\n"
                                  "ALTER TABLE runs ADD COLUMN cpu TEXT;\n"
                                  "ALTER TABLE runs ADD COLUMN threads INTEGER;\n";

/* Version 5: sweeps (store/sweeps.h), a run's uuid, status 'skipped'.
 *
 * runs is rebuilt as migration 3 did (store_migrate runs this with foreign
 * keys off, so dropping the old table deletes no steps, artifacts or other
 * child rows, and checks every reference before the COMMIT; see
 * https://www.sqlite.org/lang_altertable.html section 7): status gains
 * 'skipped' (a sweep's run not run because a dependency failed) and uuid
 * is added, a random UUID v4 as 36 characters of text that names the run
 * across stores (orch merge); rows of older stores get a fresh one here,
 * new rows get one from the column's default. Every row keeps its id, and
 * sqlite_sequence keeps the highest id ever given (rows removed by orch rm
 * included), so ids are still never reused.
 *
 * sweeps: one row per sweep run by `orch sweep`, found again by (name,
 * hash); the coordinator's host, pid and heartbeat tell a live coordinator
 * from a dead one. sweep_runs: which run holds which point of the sweep,
 * and the rank and host it was last handed to, and how many times.
 *
 * run_summary gains uuid, sweep_id, point and rank at its end. */
#define UUID_V4_SQL                                                                                \
    "(lower(hex(randomblob(4))) || '-' || lower(hex(randomblob(2))) || '-4' ||\n"                  \
    "      substr(lower(hex(randomblob(2))), 2) || '-' ||\n"                                       \
    "      substr('89ab', 1 + (abs(random()) % 4), 1) || substr(lower(hex(randomblob(2))), 2) "    \
    "||\n"                                                                                         \
    "      '-' || lower(hex(randomblob(6))))"
static const char migration_5[] =
    "DROP VIEW run_summary;\n"
    "CREATE TABLE runs_v5 (\n"
    "    id           INTEGER PRIMARY KEY AUTOINCREMENT,\n"
    "    pipeline     TEXT NOT NULL,\n"
    "    name         TEXT NOT NULL,\n"
    "    strategy     TEXT NOT NULL,\n"
    "    status       TEXT NOT NULL DEFAULT 'queued' CHECK (status IN\n"
    "                 ('queued', 'running', 'finished', 'diverged', 'failed', 'interrupted',\n"
    "                  'skipped')),\n"
    "    config_json  TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(config_json)),\n"
    "    config_hash  TEXT,\n"
    "    seed         INTEGER,\n"
    "    host         TEXT,\n"
    "    created_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),\n"
    "    started_at   TEXT,\n"
    "    finished_at  TEXT,\n"
    "    orch_version TEXT,\n"
    "    error        TEXT,\n"
    "    pid          INTEGER,\n"
    "    heartbeat_at TEXT,\n"
    "    kernels      TEXT,\n"
    "    kernels_why  TEXT,\n"
    "    cpu          TEXT,\n"
    "    threads      INTEGER,\n"
    "    uuid         TEXT NOT NULL UNIQUE DEFAULT " UUID_V4_SQL "\n"
    "                 CHECK (length(uuid) = 36)\n"
    ");\n"
    "INSERT INTO runs_v5 (id, pipeline, name, strategy, status, config_json, config_hash, seed,\n"
    "                     host, created_at, started_at, finished_at, orch_version, error, pid,\n"
    "                     heartbeat_at, kernels, kernels_why, cpu, threads)\n"
    "SELECT id, pipeline, name, strategy, status, config_json, config_hash, seed, host,\n"
    "       created_at, started_at, finished_at, orch_version, error, pid, heartbeat_at,\n"
    "       kernels, kernels_why, cpu, threads\n"
    "  FROM runs ORDER BY id;\n"
    "DELETE FROM sqlite_sequence WHERE name = 'runs_v5';\n"
    "INSERT INTO sqlite_sequence (name, seq)\n"
    "SELECT 'runs_v5', seq FROM sqlite_sequence WHERE name = 'runs';\n"
    "DROP TABLE runs;\n"
    "ALTER TABLE runs_v5 RENAME TO runs;\n"
    "CREATE INDEX runs_pipeline ON runs (pipeline);\n"
    "CREATE INDEX runs_status ON runs (status);\n"
    "\n"
    "CREATE TABLE sweeps (\n"
    "    id               INTEGER PRIMARY KEY AUTOINCREMENT,\n"
    "    name             TEXT NOT NULL,\n"
    "    file             TEXT,\n"
    "    hash             TEXT NOT NULL,\n"
    "    status           TEXT NOT NULL DEFAULT 'running' CHECK (status IN\n"
    "                     ('running', 'finished', 'interrupted')),\n"
    "    coordinator_host TEXT,\n"
    "    coordinator_pid  INTEGER,\n"
    "    heartbeat_at     TEXT,\n"
    "    created_at       TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),\n"
    "    finished_at      TEXT,\n"
    "    UNIQUE (name, hash)\n"
    ");\n"
    "\n"
    "CREATE TABLE sweep_runs (\n"
    "    sweep_id INTEGER NOT NULL REFERENCES sweeps (id) ON DELETE CASCADE,\n"
    "    point    TEXT NOT NULL,\n"
    "    run_id   INTEGER NOT NULL UNIQUE REFERENCES runs (id) ON DELETE CASCADE,\n"
    "    rank     INTEGER,\n"
    "    host     TEXT,\n"
    "    attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),\n"
    "    PRIMARY KEY (sweep_id, point)\n"
    ") WITHOUT ROWID;\n"
    "\n"
    /* Migration 3's view text with four columns appended. */
    "CREATE VIEW run_summary AS\n"
    "SELECT r.id AS run_id,\n"
    "       r.pipeline,\n"
    "       r.name,\n"
    "       r.strategy,\n"
    "       json_extract(r.config_json, '$.optimizer.lr') AS lr,\n"
    "       json_extract(r.config_json, '$.precision') AS precision,\n"
    "       r.seed,\n"
    "       r.status,\n"
    "       (SELECT count(*) FROM steps s WHERE s.run_id = r.id) AS steps,\n"
    "       (SELECT max(s.step) FROM steps s WHERE s.run_id = r.id) AS last_step,\n"
    "       (SELECT s.loss FROM steps s WHERE s.run_id = r.id\n"
    "         ORDER BY s.step DESC LIMIT 1) AS final_loss,\n"
    "       (SELECT min(s.loss) FROM steps s WHERE s.run_id = r.id\n"
    "         AND abs(s.loss) < 9e999) AS best_loss,\n"
    "       (SELECT max(s.grad_norm) FROM steps s WHERE s.run_id = r.id) AS max_grad_norm,\n"
    "       (SELECT count(*) FROM steps s WHERE s.run_id = r.id AND NOT s.finite)\n"
    "         AS nonfinite_steps,\n"
    "       (SELECT min(s.step) FROM steps s WHERE s.run_id = r.id AND NOT s.finite)\n"
    "         AS first_nonfinite_step,\n"
    "       e.step AS first_nan_step,\n"
    "       e.phase AS first_nan_phase,\n"
    "       e.stage AS first_nan_stage,\n"
    "       e.tensor AS first_nan_tensor,\n"
    "       (SELECT count(*) FROM nan_events n WHERE n.run_id = r.id) AS nan_events,\n"
    "       json_extract(r.config_json, '$.tags') AS tags,\n"
    "       r.created_at,\n"
    "       r.started_at,\n"
    "       r.finished_at,\n"
    "       (SELECT 1000.0 * count(s.wall_ms) / nullif(sum(s.wall_ms), 0) FROM steps s\n"
    "         WHERE s.run_id = r.id) AS steps_per_s,\n"
    "       (SELECT count(*) FROM frozen_changes f WHERE f.run_id = r.id) AS frozen_changed,\n"
    "       (SELECT max(a.step) FROM artifacts a WHERE a.run_id = r.id\n"
    "         AND a.kind = 'checkpoint') AS last_checkpoint_step,\n"
    "       r.pid,\n"
    "       r.host,\n"
    "       r.heartbeat_at,\n"
    "       r.uuid,\n"
    "       w.sweep_id,\n"
    "       w.point,\n"
    "       w.rank\n"
    "  FROM runs r\n"
    "  LEFT JOIN nan_events e ON e.id = (SELECT n.id FROM nan_events n WHERE n.run_id = r.id\n"
    "                                     ORDER BY n.step, n.id LIMIT 1)\n"
    "  LEFT JOIN sweep_runs w ON w.run_id = r.id\n"
    " ORDER BY r.id;\n";

/* Version 6: data-parallel runs (one run over many MPI ranks) record
 * where each NaN event was found: the rank and its host. NULL for runs on
 * one rank and rows of older stores. run_summary is unchanged. */
static const char migration_6[] = "ALTER TABLE nan_events ADD COLUMN rank INTEGER;\n"
                                  "ALTER TABLE nan_events ADD COLUMN host TEXT;\n";

/* Version 7: the data a run computed on and how its evaluation went.
 * run_inputs holds every data file of a run (role 'train' or 'eval', the
 * path as the run resolved it, its sha256 and size), run_classes the class
 * names of a classifier's data; runs.data_hash is the hash over the run's
 * inputs (core/data_identity.h; NULL without files), written when the run
 * begins, runs.end_reason why a finished run stopped early (early
 * stopping). run_summary gains data_hash, final_eval_loss (eval/loss at the
 * last evaluated step), best_eval_accuracy, best_eval_step (the step of the
 * best eval/accuracy, or of the lowest eval/loss without accuracy; the
 * first such step on a tie) and end_reason at its end. Self-contained:
 * later migrations build on it without editing it. */
static const char migration_7[] =
    "CREATE TABLE run_inputs (\n"
    "    run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,\n"
    "    role   TEXT NOT NULL CHECK (role IN ('train', 'eval')),\n"
    "    path   TEXT NOT NULL,\n"
    "    sha256 TEXT NOT NULL,\n"
    "    bytes  INTEGER NOT NULL CHECK (bytes >= 0),\n"
    "    PRIMARY KEY (run_id, role, path)\n"
    ") WITHOUT ROWID;\n"
    "\n"
    "CREATE TABLE run_classes (\n"
    "    run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,\n"
    "    id     INTEGER NOT NULL CHECK (id >= 0),\n"
    "    name   TEXT NOT NULL,\n"
    "    PRIMARY KEY (run_id, id)\n"
    ") WITHOUT ROWID;\n"
    "\n"
    "ALTER TABLE runs ADD COLUMN data_hash TEXT;\n"
    "ALTER TABLE runs ADD COLUMN end_reason TEXT;\n"
    "\n"
    "DROP VIEW run_summary;\n"
    "CREATE VIEW run_summary AS\n"
    "SELECT r.id AS run_id,\n"
    "       r.pipeline,\n"
    "       r.name,\n"
    "       r.strategy,\n"
    "       json_extract(r.config_json, '$.optimizer.lr') AS lr,\n"
    "       json_extract(r.config_json, '$.precision') AS precision,\n"
    "       r.seed,\n"
    "       r.status,\n"
    "       (SELECT count(*) FROM steps s WHERE s.run_id = r.id) AS steps,\n"
    "       (SELECT max(s.step) FROM steps s WHERE s.run_id = r.id) AS last_step,\n"
    "       (SELECT s.loss FROM steps s WHERE s.run_id = r.id\n"
    "         ORDER BY s.step DESC LIMIT 1) AS final_loss,\n"
    "       (SELECT min(s.loss) FROM steps s WHERE s.run_id = r.id\n"
    "         AND abs(s.loss) < 9e999) AS best_loss,\n"
    "       (SELECT max(s.grad_norm) FROM steps s WHERE s.run_id = r.id) AS max_grad_norm,\n"
    "       (SELECT count(*) FROM steps s WHERE s.run_id = r.id AND NOT s.finite)\n"
    "         AS nonfinite_steps,\n"
    "       (SELECT min(s.step) FROM steps s WHERE s.run_id = r.id AND NOT s.finite)\n"
    "         AS first_nonfinite_step,\n"
    "       e.step AS first_nan_step,\n"
    "       e.phase AS first_nan_phase,\n"
    "       e.stage AS first_nan_stage,\n"
    "       e.tensor AS first_nan_tensor,\n"
    "       (SELECT count(*) FROM nan_events n WHERE n.run_id = r.id) AS nan_events,\n"
    "       json_extract(r.config_json, '$.tags') AS tags,\n"
    "       r.created_at,\n"
    "       r.started_at,\n"
    "       r.finished_at,\n"
    "       (SELECT 1000.0 * count(s.wall_ms) / nullif(sum(s.wall_ms), 0) FROM steps s\n"
    "         WHERE s.run_id = r.id) AS steps_per_s,\n"
    "       (SELECT count(*) FROM frozen_changes f WHERE f.run_id = r.id) AS frozen_changed,\n"
    "       (SELECT max(a.step) FROM artifacts a WHERE a.run_id = r.id\n"
    "         AND a.kind = 'checkpoint') AS last_checkpoint_step,\n"
    "       r.pid,\n"
    "       r.host,\n"
    "       r.heartbeat_at,\n"
    "       r.uuid,\n"
    "       w.sweep_id,\n"
    "       w.point,\n"
    "       w.rank,\n"
    "       r.data_hash,\n"
    "       (SELECT m.value FROM metrics m WHERE m.run_id = r.id AND m.name = 'eval/loss'\n"
    "         ORDER BY m.step DESC LIMIT 1) AS final_eval_loss,\n"
    "       (SELECT max(m.value) FROM metrics m WHERE m.run_id = r.id\n"
    "         AND m.name = 'eval/accuracy') AS best_eval_accuracy,\n"
    "       coalesce((SELECT m.step FROM metrics m WHERE m.run_id = r.id\n"
    "                  AND m.name = 'eval/accuracy' AND m.value IS NOT NULL\n"
    "                  ORDER BY m.value DESC, m.step LIMIT 1),\n"
    "                (SELECT m.step FROM metrics m WHERE m.run_id = r.id\n"
    "                  AND m.name = 'eval/loss' AND m.value IS NOT NULL\n"
    "                  ORDER BY m.value, m.step LIMIT 1)) AS best_eval_step,\n"
    "       r.end_reason\n"
    "  FROM runs r\n"
    "  LEFT JOIN nan_events e ON e.id = (SELECT n.id FROM nan_events n WHERE n.run_id = r.id\n"
    "                                     ORDER BY n.step, n.id LIMIT 1)\n"
    "  LEFT JOIN sweep_runs w ON w.run_id = r.id\n"
    " ORDER BY r.id;\n";

/* Version 8: the pipeline files of each run as they were run (the main
 * file and every module it required; docs/bundles.md), so a bundle
 * carries them whatever edits came later. Content-addressed: the runs of
 * a sweep, or reruns of an unchanged file, share one copy. A file no run
 * refers to any more is removed by orch rm. */
static const char migration_8[] =
    "CREATE TABLE source_files (\n"
    "    sha256  TEXT PRIMARY KEY CHECK (length(sha256) = 64),\n"
    "    bytes   INTEGER NOT NULL CHECK (bytes >= 0),\n"
    "    content BLOB NOT NULL\n"
    ") WITHOUT ROWID;\n"
    "\n"
    "CREATE TABLE run_sources (\n"
    "    run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,\n"
    "    ord    INTEGER NOT NULL CHECK (ord >= 0),\n"
    "    path   TEXT NOT NULL,\n"
    "    sha256 TEXT NOT NULL REFERENCES source_files (sha256),\n"
    "    PRIMARY KEY (run_id, path)\n"
    ") WITHOUT ROWID;\n"
    "CREATE INDEX run_sources_sha256 ON run_sources (sha256);\n";

const char *const store_migrations[] = {
    migration_1, migration_2, migration_3, migration_4,
    migration_5, migration_6, migration_7, migration_8,
};

const int store_n_migrations = (int)(sizeof store_migrations / sizeof store_migrations[0]);

_Static_assert(sizeof store_migrations / sizeof store_migrations[0] == ORCH_STORE_SCHEMA_VERSION,
               "a migration was added: bump ORCH_STORE_SCHEMA_VERSION and docs/store.md");

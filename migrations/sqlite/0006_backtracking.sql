-- Backtracking: a verdict undone when a worker in its agreeing group is
-- caught; the task is decided again (re-opened where the rest no longer
-- suffices) and the client sees the revision.
ALTER TABLE tasks ADD COLUMN revisions BIGINT NOT NULL DEFAULT 0;
CREATE TABLE task_revisions (
    task_id    BIGINT NOT NULL REFERENCES tasks(id),
    revision   BIGINT NOT NULL,
    verdict    TEXT NOT NULL,
    caught     TEXT NOT NULL,
    revised_at BIGINT NOT NULL,
    PRIMARY KEY (task_id, revision)
);
-- A re-opened bid reserves again; what its closes refunded so far.
ALTER TABLE bids ADD COLUMN refunded BIGINT NOT NULL DEFAULT 0;
-- Known answers harvested from client tasks verified at very high
-- credibility, reused as spot checks (their evidence withheld meanwhile).
CREATE TABLE harvest (
    task_id    BIGINT PRIMARY KEY REFERENCES tasks(id),
    model      TEXT NOT NULL,
    input      TEXT NOT NULL,
    reference  TEXT NOT NULL,
    uses       BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL
);
CREATE INDEX harvest_model ON harvest (model, created_at);

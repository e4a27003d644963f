-- Spot checks: tasks whose answer the market knows, mixed into the work.
-- A check is a task of a bid the market itself places (kind 'check'),
-- funded from the operator's fee income; its known answer stays here.
ALTER TABLE bids ADD COLUMN kind TEXT NOT NULL DEFAULT 'client';
ALTER TABLE workers ADD COLUMN checks_passed BIGINT NOT NULL DEFAULT 0;
ALTER TABLE workers ADD COLUMN checks_failed BIGINT NOT NULL DEFAULT 0;
ALTER TABLE workers ADD COLUMN caught_at BIGINT;
CREATE TABLE checks (
    task_id   BIGINT PRIMARY KEY REFERENCES tasks(id),
    item      TEXT NOT NULL,
    reference TEXT NOT NULL
);

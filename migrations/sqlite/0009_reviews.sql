-- Human review. A bid with a review price sends a task without consensus
-- to review instead of failing it; a review is an assignment of kind
-- 'review' held by a verified person (so it is paid, settled and audited
-- like a result), and never takes a replica's slot.
ALTER TABLE bids ADD COLUMN review_price BIGINT;
ALTER TABLE assignments ADD COLUMN kind TEXT NOT NULL DEFAULT 'result';
-- The tasks waiting for reviewers, oldest first.
CREATE INDEX tasks_in_review ON tasks (id) WHERE status = 'review';
-- Who may review, as the operator signed it: the latest mark of an account
-- at a moment says whether it was verified then.
CREATE TABLE reviewer_marks (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    account    TEXT NOT NULL,
    verified   BIGINT NOT NULL,
    signer     TEXT NOT NULL,
    body       BLOB NOT NULL,
    signed_at  BIGINT NOT NULL,
    nonce      TEXT NOT NULL,
    signature  TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX reviewer_marks_account ON reviewer_marks (account, signed_at, id);

-- Settlement state (see market/src/settle.rs).

-- One row: the Stellar sequence number the next settlement transaction
-- uses. NULL means unknown: read it from the operator's account before
-- signing (or start at 1 when no Horizon / RPC server is configured).
-- Updating this row first is also the lock that serialises settlers, in
-- every process on the database.
CREATE TABLE settlement_state (
    id          BIGINT PRIMARY KEY,
    next_tx_seq BIGINT,
    updated_at  BIGINT NOT NULL
);
INSERT INTO settlement_state (id, next_tx_seq, updated_at) VALUES (1, NULL, 0);

-- Workers whose payout the network refused (no account, no trustline):
-- their earnings stay unpaid until retry_at, then are retried on their own.
CREATE TABLE payout_holds (
    worker     TEXT PRIMARY KEY,
    reason     TEXT NOT NULL,
    record_seq BIGINT NOT NULL,
    retry_at   BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE INDEX assignments_unpaid ON assignments (status, payout_seq);
CREATE INDEX assignments_payout ON assignments (payout_seq);
CREATE INDEX ledger_assignment ON ledger_entries (assignment_id);
CREATE INDEX settlements_status ON settlements (status, seq);

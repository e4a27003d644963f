-- Deposits: payments into the operator's account on the network, each
-- credited exactly once (keyed by the network's operation id), or refused
-- with its reason; the cursor moves in the same transaction.
CREATE TABLE deposits (
    id           TEXT PRIMARY KEY,
    account      TEXT,
    sender       TEXT NOT NULL,
    amount       BIGINT NOT NULL,
    asset        TEXT NOT NULL,
    memo         TEXT,
    tx_hash      TEXT NOT NULL,
    status       TEXT NOT NULL,
    reason       TEXT,
    created_at   BIGINT NOT NULL
);
CREATE INDEX deposits_account ON deposits (account, created_at);
CREATE INDEX deposits_sender ON deposits (sender, created_at);
CREATE TABLE deposit_cursor (
    id     BIGINT PRIMARY KEY,
    cursor TEXT NOT NULL
);
-- The memo a client gives an exchange so its payment is credited to it.
CREATE TABLE deposit_codes (
    code    TEXT PRIMARY KEY,
    account TEXT NOT NULL UNIQUE
);
-- Withdrawals: a client's available balance paid out to its own account
-- through the settlement records; the signed request is kept as evidence.
CREATE TABLE withdrawals (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    account    TEXT NOT NULL,
    amount     BIGINT NOT NULL,
    body       BLOB NOT NULL,
    signed_at  BIGINT NOT NULL,
    nonce      TEXT NOT NULL,
    signature  TEXT NOT NULL,
    payout_seq BIGINT,
    created_at BIGINT NOT NULL
);
CREATE INDEX withdrawals_account ON withdrawals (account, id);

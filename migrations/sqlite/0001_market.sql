-- Tally market schema (SQLite dialect). Times are unix milliseconds UTC,
-- money is integer stroops, ids are 64-bit integers.

CREATE TABLE models (
    hash        TEXT PRIMARY KEY,
    bytes       BLOB NOT NULL,
    size        BIGINT NOT NULL,
    uploaded_by TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE inputs (
    hash       TEXT PRIMARY KEY,
    bytes      BLOB NOT NULL,
    width      BIGINT NOT NULL,
    height     BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE offers (
    worker     TEXT PRIMARY KEY,
    models     TEXT NOT NULL,
    min_price  BIGINT NOT NULL,
    capacity   BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE workers (
    account   TEXT PRIMARY KEY,
    agreed    BIGINT NOT NULL DEFAULT 0,
    disagreed BIGINT NOT NULL DEFAULT 0,
    timed_out BIGINT NOT NULL DEFAULT 0,
    last_seen BIGINT NOT NULL
);

CREATE TABLE bids (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    client       TEXT NOT NULL,
    model        TEXT NOT NULL REFERENCES models(hash),
    price        BIGINT NOT NULL,
    replicas     BIGINT NOT NULL,
    quorum       BIGINT NOT NULL,
    max_replicas BIGINT NOT NULL,
    params       TEXT NOT NULL,
    fee_bps      BIGINT NOT NULL,
    reserved     BIGINT NOT NULL,
    spent        BIGINT NOT NULL DEFAULT 0,
    status       TEXT NOT NULL,
    deadline_at  BIGINT NOT NULL,
    created_at   BIGINT NOT NULL,
    closed_at    BIGINT
);

CREATE TABLE tasks (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    bid_id       BIGINT NOT NULL REFERENCES bids(id),
    input        TEXT NOT NULL REFERENCES inputs(hash),
    model        TEXT NOT NULL,
    price        BIGINT NOT NULL,
    status       TEXT NOT NULL,
    wanted       BIGINT NOT NULL,
    taken        BIGINT NOT NULL DEFAULT 0,
    max_replicas BIGINT NOT NULL,
    verdict      TEXT,
    created_at   BIGINT NOT NULL,
    finished_at  BIGINT
);
CREATE INDEX tasks_pool ON tasks (status, price DESC, id);
CREATE INDEX tasks_bid ON tasks (bid_id);

CREATE TABLE assignments (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id          BIGINT NOT NULL REFERENCES tasks(id),
    worker           TEXT NOT NULL,
    status           TEXT NOT NULL,
    lease_expires_at BIGINT NOT NULL,
    created_at       BIGINT NOT NULL,
    finished_at      BIGINT,
    body             BLOB,
    signed_at        BIGINT,
    nonce            TEXT,
    signature        TEXT,
    elapsed_ms       DOUBLE PRECISION,
    reason           TEXT,
    payout_seq       BIGINT,
    UNIQUE (task_id, worker)
);
CREATE INDEX assignments_lease ON assignments (status, lease_expires_at);
CREATE INDEX assignments_worker ON assignments (worker, status);

CREATE TABLE nonces (
    account TEXT NOT NULL,
    nonce   TEXT NOT NULL,
    seen_at BIGINT NOT NULL,
    PRIMARY KEY (account, nonce)
);
CREATE INDEX nonces_age ON nonces (seen_at);

-- Double-entry ledger: every posting's entries sum to zero.
CREATE TABLE ledger_entries (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    posting       BIGINT NOT NULL,
    kind          TEXT NOT NULL,
    book          TEXT NOT NULL,
    owner         TEXT NOT NULL,
    amount        BIGINT NOT NULL,
    bid_id        BIGINT,
    task_id       BIGINT,
    assignment_id BIGINT,
    settlement    BIGINT,
    created_at    BIGINT NOT NULL
);
CREATE INDEX ledger_owner ON ledger_entries (owner, book);
CREATE INDEX ledger_posting ON ledger_entries (posting);

CREATE TABLE balances (
    book   TEXT NOT NULL,
    owner  TEXT NOT NULL,
    amount BIGINT NOT NULL,
    PRIMARY KEY (book, owner)
);

CREATE TABLE postings (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    kind       TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- Settlement records: append-only, hash-chained.
CREATE TABLE settlements (
    seq          BIGINT PRIMARY KEY,
    prev_hash    TEXT NOT NULL,
    hash         TEXT NOT NULL,
    network      TEXT NOT NULL,
    source       TEXT NOT NULL,
    asset        TEXT NOT NULL,
    payouts      TEXT NOT NULL,
    envelope_xdr TEXT NOT NULL,
    tx_hash      TEXT NOT NULL,
    tx_seq       BIGINT NOT NULL,
    max_time     BIGINT NOT NULL,
    status       TEXT NOT NULL,
    result_code  TEXT,
    attempts     BIGINT NOT NULL DEFAULT 0,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);

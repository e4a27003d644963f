-- Indexes a status change does not have to rewrite. An assignment changes
-- status three or four times in its life; before, every change rewrote
-- three indexes that led with or included the status. Now the live leases
-- and the unpaid agreeing results are partial indexes (an assignment enters
-- and leaves each once), and a worker's assignments are indexed by worker
-- alone, which never changes.
DROP INDEX assignments_lease;
CREATE INDEX assignments_leased ON assignments (lease_expires_at) WHERE status = 'leased';
DROP INDEX assignments_worker;
CREATE INDEX assignments_worker ON assignments (worker);
CREATE INDEX assignments_worker_leased ON assignments (worker) WHERE status = 'leased';
DROP INDEX assignments_unpaid;
CREATE INDEX assignments_unpaid ON assignments (id) WHERE status = 'agreed' AND payout_seq IS NULL;
DROP INDEX assignments_payout;
CREATE INDEX assignments_payout ON assignments (payout_seq) WHERE payout_seq IS NOT NULL;
-- Covered by tasks_bid_status (bid_id, status).
DROP INDEX tasks_bid;
-- Only the invariant check groups by posting, and it reads every entry anyway.
DROP INDEX ledger_posting;

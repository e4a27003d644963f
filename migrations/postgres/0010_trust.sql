-- Trust against workers who look.
-- A result weighs the check record its worker had when it was submitted
-- (a later rise never upgrades it), and that record also says whether its
-- earnings are on probation.
ALTER TABLE assignments ADD COLUMN checks_at_submit BIGINT;
-- When a task was first decided: its evidence is published in the batch
-- after (never while a check could still be told from client work), and
-- its earnings settle only once it is published.
ALTER TABLE tasks ADD COLUMN decided_at BIGINT;
UPDATE tasks SET decided_at = finished_at WHERE finished_at IS NOT NULL;
-- What a client bid reserved to pay for the spot checks that displace its
-- claims, and what of it checks have spent.
ALTER TABLE bids ADD COLUMN check_allowance BIGINT NOT NULL DEFAULT 0;
ALTER TABLE bids ADD COLUMN check_spent BIGINT NOT NULL DEFAULT 0;

-- Voting as spot-checking: a worker is also caught when a credible
-- majority out-votes it on client work. The public task that caught it
-- (a spot check it failed, or the client task where it was out-voted).
ALTER TABLE workers ADD COLUMN caught_by BIGINT;

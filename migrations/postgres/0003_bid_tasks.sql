-- Closing a bid asks whether any of its tasks is still open: answer that
-- from the index instead of scanning the bid's tasks.
CREATE INDEX tasks_bid_status ON tasks (bid_id, status);

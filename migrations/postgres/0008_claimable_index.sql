-- Claims look for tasks with a free slot, best price first, per model. The
-- pool index leads with the status, so every look walked all open and
-- running tasks (most of them with every replica already out) and sorted
-- them: with a few thousand tasks queued a look cost 10-20 ms of database
-- time. This index holds only the tasks a claim may take, in the order a
-- claim takes them.
CREATE INDEX tasks_claimable ON tasks (model, price DESC, id)
  WHERE status IN ('open', 'running') AND taken < wanted;

-- Due jobs in the order the workers take them, without sorting the waiting ones on each claim
-- (a 50,000-product push can leave thousands waiting): per channel for the claims, and across
-- channels for "when is the next one due". They replace jobs_due, whose entries moved on every
-- state change.
CREATE INDEX jobs_waiting_by_channel ON jobs (channel, next_attempt_at, id) WHERE state IN ('pending', 'retrying');
CREATE INDEX jobs_waiting_by_due ON jobs (next_attempt_at, id) WHERE state IN ('pending', 'retrying');
DROP INDEX jobs_due;

-- Catalog pushes go out in jobs of a whole batch of products: the hash of the value last
-- queued for each product, so a batch that waited (retries) never overwrites a newer value, and
-- a product already queued with the same value is not queued twice.
ALTER TABLE mappings ADD COLUMN planned_hash TEXT;

-- Irrigation: what the scheduler, the run monitor and the outbox need beyond the foundation.

-- Every occurrence of a schedule at or before this instant has been dealt with: fired, or
-- deliberately skipped and recorded (missed while no scheduler ran, valve busy, no valve).
-- NULL: since created_at. Distinct from last_fired_at, which only moves when a run starts.
ALTER TABLE schedules ADD COLUMN handled_through timestamptz;

-- The run monitor's sweep looks at live runs only.
CREATE INDEX irrigation_runs_live ON irrigation_runs (state, ends_at)
    WHERE state IN ('planned', 'starting', 'open', 'closing');

-- Closes in flight for a controller channel (superseded by a new open, deduplicated when a
-- valve is reported open with no run).
CREATE INDEX commands_channel_in_flight ON commands (controller_id, valve)
    WHERE state IN ('pending', 'sent');

-- Queue order of commands: created_at can tie (one clock reading per transaction), and a close
-- queued before an open for the same channel must reach the controller first.
ALTER TABLE commands ADD COLUMN seq bigint GENERATED ALWAYS AS IDENTITY;
CREATE INDEX commands_run_seq ON commands (run_id, seq);

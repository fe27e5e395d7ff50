-- 0002: what exactly-once needs once run listings no longer name their input videos, and copies.
-- run_window_from/to: the run start attempt in Mosaic's clock (unix ms; to = 0 while unanswered);
-- a run that start created has started_at inside it. run_params: fingerprint of the agent and
-- run parameters the run was started with (copies need the same). copy_of: the job whose outputs
-- this job reuses (0 = none).
ALTER TABLE jobs ADD COLUMN run_window_from INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN run_window_to   INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN run_params      TEXT    NOT NULL DEFAULT '';
ALTER TABLE jobs ADD COLUMN copy_of         INTEGER NOT NULL DEFAULT 0;

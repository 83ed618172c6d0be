-- The audit trail (docs/operations.md): each event row says who acted (the caller's subject and
-- role, a host or customer id, the token's id; or a named part of the service, `system:*`), the
-- request it came in, and its trace. `actor_sub` is the subject alone, for the audit's filter.
ALTER TABLE events
  ADD COLUMN actor json,
  ADD COLUMN actor_sub text,
  ADD COLUMN request_id text,
  ADD COLUMN traceparent text;
CREATE INDEX events_actor ON events (actor_sub, ms, seq) WHERE actor_sub IS NOT NULL;
CREATE INDEX events_subject ON events (subject, ms, seq);
CREATE INDEX events_time ON events (time);

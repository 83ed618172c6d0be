-- API clients (docs/api.md, "API clients"): integration partners and internal services registered
-- by an admin, each with its own identity (client credentials), role, narrowing and quota. Only a
-- salted scrypt hash of the secret is kept (`scrypt$N$r$p$salt$hash`, base64url). Deleting a client
-- removes its row; its tokens are revoked in Redis (the revocations every process checks).
CREATE TABLE api_clients (
  id               text PRIMARY KEY,
  name             text NOT NULL,
  role             text NOT NULL CHECK (role IN ('customer', 'host', 'ops')),
  host_id          text,
  scopes           text[],
  cities           text[],
  quota_per_minute integer NOT NULL CHECK (quota_per_minute > 0),
  burst            integer NOT NULL CHECK (burst > 0 AND burst <= quota_per_minute),
  secret_hash      text NOT NULL,
  created_by       text NOT NULL,
  created_at       timestamptz NOT NULL DEFAULT now(),
  CHECK ((role = 'host') = (host_id IS NOT NULL)),
  CHECK (cities IS NULL OR role = 'ops')
);

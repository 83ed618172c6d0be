-- Outbound webhooks (docs/webhooks.md): subscriptions, one delivery per (subscription, event),
-- and every attempt. Deliveries of one subscription go out in `seq` order.
CREATE TABLE webhook_subscriptions (
  id                    text PRIMARY KEY,
  owner_id              text NOT NULL,
  owner_role            text NOT NULL,
  host_id               text,
  url                   text NOT NULL,
  types                 text[],
  cities                text[],
  secret                text NOT NULL,
  previous_secret       text,
  previous_secret_until timestamptz,
  status                text NOT NULL DEFAULT 'active',
  disabled_reason       text,
  disabled_at           timestamptz,
  created_at            timestamptz NOT NULL DEFAULT now(),
  updated_at            timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_subscriptions_owner ON webhook_subscriptions (owner_id);

CREATE SEQUENCE webhook_replays;

CREATE TABLE webhook_deliveries (
  seq             bigserial PRIMARY KEY,
  subscription_id text NOT NULL REFERENCES webhook_subscriptions (id) ON DELETE CASCADE,
  message_id      text NOT NULL,
  city            text NOT NULL,
  stream_id       text NOT NULL,
  type            text NOT NULL,
  body            jsonb NOT NULL,
  replay          bigint NOT NULL DEFAULT 0,
  status          text NOT NULL DEFAULT 'pending', -- pending | delivered | dead
  attempts        integer NOT NULL DEFAULT 0,
  next_attempt_at timestamptz NOT NULL DEFAULT now(),
  created_at      timestamptz NOT NULL DEFAULT now(),
  delivered_at    timestamptz,
  UNIQUE (subscription_id, message_id, replay)
);
CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (subscription_id, seq) WHERE status = 'pending';

CREATE TABLE webhook_attempts (
  delivery_seq bigint NOT NULL REFERENCES webhook_deliveries (seq) ON DELETE CASCADE,
  attempt      integer NOT NULL,
  at           timestamptz NOT NULL DEFAULT now(),
  http_status  integer,
  latency_ms   integer NOT NULL,
  error        text,
  PRIMARY KEY (delivery_seq, attempt)
);

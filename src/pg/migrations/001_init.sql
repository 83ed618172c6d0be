-- Durable truth, fed by the city event streams (architecture.md §5). Rows are projections of events:
-- each carries the full document of the entity as the last applied event left it (`doc`), plus
-- the typed columns that queries, constraints and reports need.
CREATE EXTENSION IF NOT EXISTS btree_gist;

CREATE TABLE cities (
  id            text PRIMARY KEY,
  name          text NOT NULL,
  time_zone     text NOT NULL,
  turnaround_ms integer NOT NULL
);

CREATE TABLE hosts (
  id         text PRIMARY KEY,
  created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE vehicles (
  id             text PRIMARY KEY,
  city           text NOT NULL,
  host_id        text NOT NULL,
  category       text NOT NULL,
  seats          integer NOT NULL,
  transmission   text NOT NULL,
  fuel           text NOT NULL,
  make           text NOT NULL,
  model          text NOT NULL,
  lat            double precision NOT NULL,
  lng            double precision NOT NULL,
  price_per_hour numeric(12, 2) NOT NULL,
  listing        text NOT NULL,
  status         text NOT NULL,
  version        bigint NOT NULL,
  created_at     timestamptz NOT NULL,
  updated_at     timestamptz NOT NULL
);
CREATE INDEX vehicles_city ON vehicles (city, status);
CREATE INDEX vehicles_host ON vehicles (host_id);

CREATE TABLE bookings (
  id          text PRIMARY KEY,
  city        text NOT NULL,
  vehicle_id  text NOT NULL,
  customer_id text NOT NULL,
  status      text NOT NULL,
  period      tstzrange NOT NULL,
  doc         jsonb NOT NULL,
  created_at  timestamptz NOT NULL,
  updated_at  timestamptz NOT NULL,
  -- The second, independent guard: Redis must never have accepted an overlap. Deferred, so the
  -- steps inside one applied batch may pass through each other; checked at commit.
  CONSTRAINT bookings_no_overlap EXCLUDE USING gist (vehicle_id WITH =, period WITH &&)
    WHERE (status IN ('confirmed', 'active')) DEFERRABLE INITIALLY DEFERRED
);
CREATE INDEX bookings_vehicle ON bookings (vehicle_id);
CREATE INDEX bookings_customer ON bookings (customer_id);
CREATE INDEX bookings_city_period ON bookings USING gist (city, period);

CREATE TABLE holds (
  id          text PRIMARY KEY,
  city        text NOT NULL,
  vehicle_id  text NOT NULL,
  customer_id text NOT NULL,
  status      text NOT NULL,
  period      tstzrange NOT NULL,
  expires_at  timestamptz NOT NULL,
  doc         jsonb NOT NULL,
  created_at  timestamptz NOT NULL,
  updated_at  timestamptz NOT NULL
);
CREATE INDEX holds_vehicle ON holds (vehicle_id);

CREATE TABLE blocks (
  id         text PRIMARY KEY,
  city       text NOT NULL,
  vehicle_id text NOT NULL,
  reason     text NOT NULL,
  status     text NOT NULL,
  period     tstzrange NOT NULL, -- upper bound open for an accident until cleared
  doc        jsonb NOT NULL,
  created_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL
);
CREATE INDEX blocks_vehicle ON blocks (vehicle_id);

-- One row per booking.conflicted; the resolver (offers, outcome) fills in the rest.
CREATE TABLE conflicts (
  booking_id    text NOT NULL,
  stream_id     text NOT NULL,
  city          text NOT NULL,
  vehicle_id    text NOT NULL,
  host_id       text,
  cause         text NOT NULL,
  caused_by     text,
  conflicted_at timestamptz NOT NULL,
  resolution    text,
  resolved_at   timestamptz,
  PRIMARY KEY (booking_id, stream_id)
);
CREATE INDEX conflicts_city ON conflicts (city, conflicted_at);

CREATE TABLE offers (
  id          text PRIMARY KEY,
  booking_id  text NOT NULL,
  city        text NOT NULL,
  vehicle_id  text NOT NULL,
  hold_id     text,
  incentive   jsonb,
  status      text NOT NULL,
  created_at  timestamptz NOT NULL,
  updated_at  timestamptz NOT NULL
);
CREATE INDEX offers_booking ON offers (booking_id);

-- The full event log: audit and replay. Unique per city and stream id: re-delivery is harmless.
CREATE TABLE events (
  city       text NOT NULL,
  stream_id  text NOT NULL,
  ms         bigint NOT NULL,
  seq        bigint NOT NULL,
  type       text NOT NULL,
  vehicle_id text NOT NULL,
  subject    text NOT NULL,
  version    bigint NOT NULL,
  time       timestamptz NOT NULL,
  status     text NOT NULL,
  cmd        text NOT NULL,
  data       jsonb NOT NULL,
  state      jsonb,
  PRIMARY KEY (city, ms, seq)
);
CREATE INDEX events_vehicle ON events (vehicle_id, ms, seq);
CREATE INDEX events_type_time ON events (type, time);

-- The last stream id applied per city, written in the same transaction as the batch.
CREATE TABLE sync_cursors (
  city       text PRIMARY KEY,
  last_ms    bigint NOT NULL,
  last_seq   bigint NOT NULL,
  applied    bigint NOT NULL DEFAULT 0,
  updated_at timestamptz NOT NULL DEFAULT now()
);

-- Events that could not be applied (e.g. an overlap Redis should never have accepted). Loud.
CREATE TABLE dead_letters (
  city       text NOT NULL,
  stream_id  text NOT NULL,
  event      jsonb NOT NULL,
  error      text NOT NULL,
  sqlstate   text,
  attempts   integer NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (city, stream_id)
);

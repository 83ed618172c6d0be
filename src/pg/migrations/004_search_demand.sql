-- Searches per city, category and hour of the window asked for: how many, how many found fewer
-- vehicles than they asked for (`short`), how many found none (`empty`). Unserved demand for the
-- forecast (docs/prediction.md). Written set-wise by each API process every few seconds.
CREATE TABLE search_demand (
  city     text NOT NULL,
  category text NOT NULL,
  hour     timestamptz NOT NULL,
  searches integer NOT NULL DEFAULT 0,
  short    integer NOT NULL DEFAULT 0,
  empty    integer NOT NULL DEFAULT 0,
  PRIMARY KEY (city, category, hour)
);

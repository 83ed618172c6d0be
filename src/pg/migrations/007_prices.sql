-- Prices (docs/api.md, "Prices"): a city's currency, a vehicle's daily cap, and the price each hold,
-- booking and offer was fixed at, as typed columns beside the documents that hold them whole
-- (`doc->'price'`). Amounts are integers in minor units of the currency (INR: paise; JPY: yen).
ALTER TABLE cities ADD COLUMN currency text;

ALTER TABLE vehicles ADD COLUMN price_per_day numeric(12, 2);

ALTER TABLE bookings
  ADD COLUMN currency text,
  ADD COLUMN price_total bigint;
UPDATE bookings SET currency = doc->'price'->>'currency', price_total = (doc->'price'->>'total')::bigint
WHERE doc ? 'price';

ALTER TABLE holds
  ADD COLUMN currency text,
  ADD COLUMN price_total bigint;
UPDATE holds SET currency = doc->'price'->>'currency', price_total = (doc->'price'->>'total')::bigint
WHERE doc ? 'price';

-- An offer: the alternative's price for the offered window, and what the customer pays if they take it.
ALTER TABLE offers
  ADD COLUMN currency text,
  ADD COLUMN price_total bigint,
  ADD COLUMN customer_pays bigint;

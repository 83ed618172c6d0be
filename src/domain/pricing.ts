/**
 * Prices (docs/api.md, "Prices"): the one pricing rule, in integer minor units of the city's
 * currency. The scripts hold its twin (src/redis/lua/includes/pricing.lua), which prices holds,
 * bookings, extensions and offers at the moment they are made; this copy prices search hits and
 * the reference model, and test/unit/pricing.test.ts and the model property test hold the two equal.
 *
 * The rule: a window [from, to) is cut into 24 h periods from its start (the last one partial);
 * each period costs its started hours × the hourly rate, capped by the daily rate when the vehicle
 * has one. Windows are whole minutes, so a started hour is any part of one: 61 minutes are 2 hours.
 */
/** An hour (calendar.ts's HOUR_MS; not imported: the calendar's entries carry prices, so it imports this). */
const HOUR_MS = 3_600_000;

/** One period of the rule; the daily rate caps each. */
export const PRICE_PERIOD_MS = 24 * HOUR_MS;

/**
 * ISO 4217 minor units of the currencies the service prices in: an amount is an integer count
 * of 10^-exponent of the currency (INR 2: paise; JPY 0: yen).
 */
export const CURRENCY_EXPONENTS: Readonly<Record<string, number>> = {
  AED: 2,
  AUD: 2,
  BRL: 2,
  EGP: 2,
  EUR: 2,
  GBP: 2,
  IDR: 2,
  INR: 2,
  JPY: 0,
  MXN: 2,
  SGD: 2,
  THB: 2,
  TRY: 2,
  USD: 2,
  ZAR: 2,
};

/** The minor-unit exponent of an ISO 4217 code the service knows; anything else is a configuration fault. */
export function currencyExponent(code: string): number {
  const e = Object.hasOwn(CURRENCY_EXPONENTS, code) ? CURRENCY_EXPONENTS[code] : undefined;
  if (e === undefined) throw new Error(`unknown currency ${JSON.stringify(code)} (ISO 4217, see domain/pricing.ts)`);
  return e;
}

/** What the scripts price in: the city's currency and its exponent. */
export interface Pricing {
  currency: string;
  exponent: number;
}

export function pricingOf(city: { currency: string }): Pricing {
  return { currency: city.currency, exponent: currencyExponent(city.currency) };
}

/**
 * A price in the API's unit (the currency's major unit, a decimal as the vehicle spec has it) to
 * minor units: rounded to the nearest (the Lua twin: `math.floor(major * 10 ^ exponent + 0.5)`).
 */
export function toMinor(major: number, exponent: number): number {
  return Math.floor(major * 10 ** exponent + 0.5);
}

/** `major` rounded to a whole number of minor units, still in major units (demo and simulated prices). */
export function minorRound(major: number, exponent: number): number {
  return toMinor(major, exponent) / 10 ** exponent;
}

/** Is `major` a whole number of minor units (binary fractions tolerated: 0.1 + 0.2 is 0.3)? */
export function isWholeMinor(major: number, exponent: number): boolean {
  const scaled = major * 10 ** exponent;
  return Math.abs(Math.round(scaled) - scaled) < 1e-6;
}

export interface PriceItem {
  from: number;
  to: number;
  /** Started hours in [from, to). */
  hours: number;
  /** hourly: the hourly rate; daily_cap: the daily rate. */
  unitAmount: number;
  /** hourly: hours × unitAmount; daily_cap: unitAmount × the 24 h periods in [from, to). */
  amount: number;
  kind: 'hourly' | 'daily_cap';
}

/** A hold's, a booking's or an offer's price, fixed when it was made: integers in minor units. */
export interface Price {
  currency: string;
  /** The sum of the breakdown's amounts, plus the adjustment's. */
  total: number;
  breakdown: PriceItem[];
  /** A booking moved by an accepted offer: what the customer pays minus the alternative's price. */
  adjustment?: { amount: number; offerId: string };
}

/** One period (at most 24 h) of `ms`: its started hours, by the hour, capped by the day. */
function periodAmount(hour: number, day: number | undefined, ms: number): number {
  const byHour = Math.ceil(ms / HOUR_MS) * hour;
  return day !== undefined && day < byHour ? day : byHour;
}

/**
 * The rule's total for [from, to), rates in minor units (`day` undefined: no cap). Arithmetic only,
 * no allocation: the search prices every hit with it.
 */
export function windowTotal(hour: number, day: number | undefined, from: number, to: number): number {
  const span = to - from;
  if (!(span > 0)) return 0;
  const full = Math.floor(span / PRICE_PERIOD_MS);
  const rest = span - full * PRICE_PERIOD_MS;
  return full * periodAmount(hour, day, PRICE_PERIOD_MS) + (rest > 0 ? periodAmount(hour, day, rest) : 0);
}

/** An item of `periods` whole periods, or of one partial period (`periods` 0). */
function item(hour: number, day: number | undefined, from: number, to: number, periods: number): PriceItem {
  const hours = Math.ceil((to - from) / HOUR_MS);
  const capped = day !== undefined && day < (periods > 0 ? 24 : hours) * hour;
  if (capped) return { from, to, hours, unitAmount: day, amount: day * Math.max(1, periods), kind: 'daily_cap' };
  return { from, to, hours, unitAmount: hour, amount: hours * hour, kind: 'hourly' };
}

/** The breakdown of [from, to): the whole 24 h periods as one item, then the partial one. */
export function windowItems(hour: number, day: number | undefined, from: number, to: number): PriceItem[] {
  const span = to - from;
  if (!(span > 0)) return [];
  const full = Math.floor(span / PRICE_PERIOD_MS);
  const cut = from + full * PRICE_PERIOD_MS;
  const items: PriceItem[] = [];
  if (full > 0) items.push(item(hour, day, from, cut, full));
  if (cut < to) items.push(item(hour, day, cut, to, 0));
  return items;
}

/** The price of [from, to) at these rates (minor units). */
export function priceWindow(currency: string, hour: number, day: number | undefined, from: number, to: number): Price {
  const breakdown = windowItems(hour, day, from, to);
  return { currency, total: breakdown.reduce((n, i) => n + i.amount, 0), breakdown };
}

/** A vehicle's rates in minor units (spec prices are major units). */
export function ratesOf(
  v: { pricePerHour: number; pricePerDay?: number | undefined },
  exponent: number,
): { hour: number; day: number | undefined } {
  return {
    hour: toMinor(v.pricePerHour, exponent),
    day: v.pricePerDay === undefined ? undefined : toMinor(v.pricePerDay, exponent),
  };
}

/**
 * An extension's price: the added time [oldTo, newTo) is priced on its own, at the rates of the
 * moment of the extension (its own 24 h periods from the old end), and added to what was fixed.
 */
export function extendPrice(
  price: Price,
  hour: number,
  day: number | undefined,
  oldTo: number,
  newTo: number,
): { price: Price; added: number } {
  const more = windowItems(hour, day, oldTo, newTo);
  const added = more.reduce((n, i) => n + i.amount, 0);
  return { price: { ...price, total: price.total + added, breakdown: [...price.breakdown, ...more] }, added };
}

/**
 * What a displaced customer pays for an offer: the booked price, less the money the incentive
 * gives back (a credit or a downgrade's refund; a free upgrade changes nothing: the booked price
 * stands), never below zero. Incentive amounts are major units (domain/offers.ts).
 */
export function customerPays(booked: number, incentive: { kind: string; amount: number }, exponent: number): number {
  if (incentive.kind === 'free_upgrade') return booked;
  return Math.max(0, booked - toMinor(incentive.amount, exponent));
}

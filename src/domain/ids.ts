/**
 * Entity ids carry their city: `<prefix>_<city>_<random>`. Any process can route a booking,
 * hold or block id to its city's keys (one Redis slot) without a lookup table that spans cities.
 */
export const ID_PREFIXES = { vehicle: 'veh', hold: 'hld', booking: 'bkg', block: 'blk', offer: 'ofr' } as const;
export type IdKind = keyof typeof ID_PREFIXES;

const ID_PATTERN = /^(veh|hld|bkg|blk|ofr)_([a-z0-9]{2,16})_([0-9A-Za-z]{6,40})$/;

/** How every id of `kind` in `city` begins (`veh_blr_`): a cheap test for ids already known well-formed. */
export const idPrefix = (kind: IdKind, city: string): string => `${ID_PREFIXES[kind]}_${city}_`;

export function parseId(id: string): { kind: IdKind; city: string } | undefined {
  const m = ID_PATTERN.exec(id);
  if (!m) return undefined;
  const kind = (Object.keys(ID_PREFIXES) as IdKind[]).find((k) => ID_PREFIXES[k] === m[1]);
  return kind && m[2] ? { kind, city: m[2] } : undefined;
}

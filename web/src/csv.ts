/**
 * CSV files as a host exports them from a spreadsheet, read with papaparse (RFC 4180: quoted
 * fields with commas, doubled quotes and line breaks; CRLF or LF; a UTF-8 byte-order mark).
 * Blank rows are skipped, names and cells trimmed; rows keep the number a spreadsheet shows.
 */
import Papa from 'papaparse';

export interface CsvRecord {
  /** The row as a spreadsheet numbers it (the first is 1: the header, unless blank rows precede it). */
  row: number;
  cells: Record<string, string>;
}

export interface CsvTable {
  header: string[];
  records: CsvRecord[];
  /** Rows that cannot be read as records (a quote left open, fewer or more cells than the header). */
  problems: { row: number; text: string }[];
}

export function parseCsv(text: string): CsvTable {
  const parsed = Papa.parse<string[]>(text.replace(/^\uFEFF/, ''), { header: false, delimiter: ',' });
  const problems = new Map<number, string>();
  const problem = (row: number, text: string) =>
    problems.set(row, problems.has(row) ? `${problems.get(row)}; ${text}` : text);
  for (const e of parsed.errors) problem((e.row ?? 0) + 1, e.message);
  const rows = parsed.data
    .map((cells, i) => ({ row: i + 1, cells: cells.map((c) => c.trim()) }))
    .filter((r) => r.cells.some((c) => c !== ''));
  const header = rows.shift()?.cells ?? [];
  const records: CsvRecord[] = [];
  for (const { row, cells } of rows) {
    // Empty cells past the header's (a spreadsheet's trailing commas) are no problem.
    let count = cells.length;
    while (count > header.length && cells[count - 1] === '') count--;
    if (count !== header.length) problem(row, `${count} cells where the header has ${header.length}`);
    if (problems.has(row)) continue;
    records.push({ row, cells: Object.fromEntries(header.map((h, i) => [h, cells[i] ?? ''])) });
  }
  return { header, records, problems: [...problems].sort(([a], [b]) => a - b).map(([row, text]) => ({ row, text })) };
}

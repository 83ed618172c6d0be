/** The console's CSV reading (web/src/csv.ts, papaparse): what spreadsheets write, read as they mean it. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseCsv } from '../../web/src/csv.ts';

const HEADER = 'city,make,model,pricePerHour';

test('quoted fields keep their commas, doubled quotes and line breaks', () => {
  const t = parseCsv(`${HEADER}\nblr,"Tata, Motors","Nexon ""EV""",12.5\nblr,Kia,"Seltos\nGTX",20\n`);
  assert.deepEqual(t.header, ['city', 'make', 'model', 'pricePerHour']);
  assert.deepEqual(t.problems, []);
  assert.deepEqual(
    t.records.map((r) => r.cells),
    [
      { city: 'blr', make: 'Tata, Motors', model: 'Nexon "EV"', pricePerHour: '12.5' },
      { city: 'blr', make: 'Kia', model: 'Seltos\nGTX', pricePerHour: '20' },
    ],
  );
});

test('CRLF line ends and a byte-order mark (a spreadsheet saving as UTF-8 CSV)', () => {
  const t = parseCsv(`\uFEFF${HEADER}\r\nblr,Maruti,Ciaz,1\r\ndel,Honda,City,2\r\n`);
  assert.deepEqual(t.header, ['city', 'make', 'model', 'pricePerHour'], 'the first column is `city`, no BOM');
  assert.deepEqual(
    t.records.map((r) => [r.row, r.cells.city, r.cells.pricePerHour]),
    [
      [2, 'blr', '1'],
      [3, 'del', '2'],
    ],
    'no \\r left on the last cell',
  );
});

test('blank rows are skipped, rows keep their spreadsheet numbers, names and cells are trimmed', () => {
  const t = parseCsv(`\n city , make ,model,pricePerHour\n\nblr , Maruti,Ciaz,1\n   \n,,,\ndel,Honda,City,2\n\n`);
  assert.deepEqual(t.header, ['city', 'make', 'model', 'pricePerHour']);
  assert.deepEqual(t.problems, []);
  assert.deepEqual(
    t.records.map((r) => [r.row, r.cells.city, r.cells.make]),
    [
      [4, 'blr', 'Maruti'],
      [7, 'del', 'Honda'],
    ],
  );
});

test('a row with too few or too many cells, or an open quote, is a problem of its row; the others are read', () => {
  const t = parseCsv(`${HEADER}\nblr,Maruti,Ciaz\nblr,Kia,Seltos,20,extra\nblr,Kia,Sonet,9,,\ndel,"Honda,City,2\n`);
  assert.deepEqual(
    t.records.map((r) => [r.row, r.cells.model]),
    [[4, 'Sonet']],
    "trailing empty cells (a spreadsheet's commas) are fine",
  );
  assert.deepEqual(
    t.problems.map((p) => p.row),
    [2, 3, 5],
  );
  assert.match(t.problems.find((p) => p.row === 2)?.text ?? '', /3 cells where the header has 4/);
  assert.match(t.problems.find((p) => p.row === 5)?.text ?? '', /quote/i);
});

test('an empty file has no header and no records', () => {
  assert.deepEqual(parseCsv(''), { header: [], records: [], problems: [] });
  assert.deepEqual(parseCsv('\r\n\n'), { header: [], records: [], problems: [] });
});

/**
 * `npm run code-stats`: how much the code leans on escape hatches — `as` casts (not `as const`),
 * non-null assertions (`!`), functions over 80 lines — counted over src/, test/ and bench/.
 * Biome finds the last two; casts are counted on the source with comments and strings removed.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';

const root = path.resolve(process.argv.slice(2).find((a) => !a.startsWith('--')) ?? '.');
const dirs = ['src', 'test', 'bench'];

function files(dir: string): string[] {
  let out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) out = out.concat(files(p));
    else if (/\.ts$/.test(name) && !name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

/** The code without comments and string or template contents (so words in them do not count). */
function codeOnly(text: string): string {
  return text
    .replace(/\/\*[\s\S]*?\*\//g, '')
    .replace(/\/\/[^\n]*/g, '')
    .replace(/'(?:\\.|[^'\\\n])*'/g, "''")
    .replace(/"(?:\\.|[^"\\\n])*"/g, '""')
    .replace(/`(?:\\.|[^`\\])*`/g, '``');
}

const castsByFile = new Map<string, number>();
const byDir: Record<string, { casts: number; nonNull: number; longFunctions: number }> = {};
for (const d of dirs) byDir[d] = { casts: 0, nonNull: 0, longFunctions: 0 };
for (const d of dirs) {
  const base = path.join(root, d);
  try {
    statSync(base);
  } catch {
    continue;
  }
  for (const f of files(base)) {
    const code = codeOnly(readFileSync(f, 'utf8'));
    // `x as T` (a cast), but not `as const`, nor `import { a as b }` / `* as ns` / `export { a as b }`.
    for (const m of code.matchAll(/[\w)\]}>'"`]\s+as\s+(?!const\b)[\w{[(]/g)) {
      const line = code.slice(code.lastIndexOf('\n', m.index) + 1, code.indexOf('\n', m.index));
      if (/^\s*(import|export)\b/.test(line) || /\*\s+as\s/.test(line) || /\{[^}]*\bas\b[^}]*\}\s*from/.test(line))
        continue;
      byDir[d]!.casts++;
      castsByFile.set(f, (castsByFile.get(f) ?? 0) + 1);
    }
  }
}
const biome = path.join(process.cwd(), 'node_modules', '.bin', 'biome');
let json = '';
try {
  json = execFileSync(
    biome,
    [
      'lint',
      '--reporter=json',
      '--max-diagnostics=10000',
      ...dirs.filter((d) => {
        try {
          statSync(path.join(root, d));
          return true;
        } catch {
          return false;
        }
      }),
    ],
    { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] },
  );
} catch (err) {
  json = (err as { stdout?: string }).stdout ?? '';
}
const diagnostics = (
  JSON.parse(json || '{"diagnostics":[]}') as { diagnostics: { category: string; location: { path: string } }[] }
).diagnostics;
for (const x of diagnostics) {
  const d = dirs.find((dir) => x.location.path.startsWith(`${dir}/`) || x.location.path.includes(`/${dir}/`));
  if (!d) continue;
  if (x.category === 'lint/style/noNonNullAssertion') byDir[d]!.nonNull++;
  if (x.category === 'lint/complexity/noExcessiveLinesPerFunction') byDir[d]!.longFunctions++;
}
const total = Object.values(byDir).reduce(
  (a, b) => ({
    casts: a.casts + b.casts,
    nonNull: a.nonNull + b.nonNull,
    longFunctions: a.longFunctions + b.longFunctions,
  }),
  { casts: 0, nonNull: 0, longFunctions: 0 },
);
console.log(JSON.stringify({ root, byDir, total }, null, 2));
if (process.argv.includes('--files')) {
  const top = [...castsByFile].sort((a, b) => b[1] - a[1]).filter(([f]) => f.includes(`${path.sep}src${path.sep}`));
  for (const [f, n] of top) console.log(`${String(n).padStart(4)} casts  ${path.relative(root, f)}`);
}

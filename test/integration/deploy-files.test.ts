/**
 * The dashboard and the alert rules users load (`deploy/`, docs/operations.md) against the service
 * they watch: `fleet serve` as users run it (two API processes, METRICS_PORT), exercised until its
 * labelled series exist, then every PromQL expression of both files parsed with Prometheus's own
 * grammar (@prometheus-io/lezer-promql, the parser of Prometheus's UI) and every metric it names
 * looked up in what `/metrics` exposes; the rules file held to Prometheus's rule format, each
 * alert's runbook to a heading of docs/operations.md.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { parser } from '@prometheus-io/lezer-promql';
import { parse as parseYaml } from 'yaml';
import { freePort } from '../support/redis.ts';
import { startServe, type ServedFleet } from '../support/serve.ts';
import { startStores, type Stores } from '../support/stores.ts';
import { setTimeout as sleep } from 'node:timers/promises';

const DASHBOARD = 'deploy/grafana/fleet-inventory.json';
const RULES = 'deploy/prometheus/alerts.yml';
const RUNBOOK = 'docs/operations.md';

let stores: Stores;
let fleet: ServedFleet;
let metricsUrl: string;

before(async () => {
  stores = await startStores({ redis: { external: 'never' } });
  const metricsPort = await freePort();
  fleet = await startServe(
    {
      REDIS_URL: stores.server.url,
      DATABASE_URL: stores.db.url,
      WEB_CONCURRENCY: '2',
      METRICS_PORT: String(metricsPort),
      JWT_SECRET: 'deploy-files-test-secret-of-32-bytes-or-more',
      // A few anonymous requests reach the budget: the refusals' series exists.
      RATE_LIMIT_ANONYMOUS: '2',
    },
    ['--demo', '--vehicles-per-city', '4'],
  );
  metricsUrl = `http://127.0.0.1:${metricsPort}/metrics`;
});

after(async () => {
  await fleet?.stop();
  await stores?.stop();
});

// ---------------------------------------------------------------------------------------------
// What the service exposes

interface Family {
  type: string;
  /** Label names seen on its samples (none when it has no sample yet). */
  labels: Set<string>;
  samples: number;
}

/** Families of the text format by name, and each series name with the family it belongs to. */
function exposition(text: string): { families: Map<string, Family>; series: Map<string, string> } {
  const families = new Map<string, Family>();
  const series = new Map<string, string>();
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type) {
      const [, name = '', kind = ''] = type;
      families.set(name, { type: kind, labels: new Set(), samples: 0 });
      const suffixes =
        kind === 'histogram' ? ['_bucket', '_sum', '_count'] : kind === 'summary' ? ['', '_sum', '_count'] : [''];
      for (const s of suffixes) series.set(name + s, name);
      continue;
    }
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? \S+/.exec(line);
    if (!sample) continue;
    const family = families.get(series.get(sample[1] ?? '') ?? '');
    if (!family) continue;
    family.samples++;
    for (const m of (sample[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="/g)) family.labels.add(m[1] ?? '');
  }
  return { families, series };
}

const authed = (token: string) => ({ authorization: `Bearer ${token}`, 'content-type': 'application/json' });

/** A search, a hold, a booking, an unknown route, anonymous requests past their budget. */
async function exercise(base: string, customer: string): Promise<void> {
  const from = new Date(Math.ceil((Date.now() + 20 * 24 * 3600_000) / 3600_000) * 3600_000);
  const to = new Date(from.getTime() + 3 * 3600_000);
  const search = await fetch(`${base}/v1/cities/blr/availability?from=${from.toISOString()}&to=${to.toISOString()}`, {
    headers: authed(customer),
  });
  assert.equal(search.status, 200, await search.clone().text());
  const [first, second] = ((await search.json()) as { vehicles: { vehicleId: string }[] }).vehicles;
  assert.ok(first && second, 'the demo fleet is searchable');
  const window = { from: from.toISOString(), to: to.toISOString() };
  const hold = await fetch(`${base}/v1/holds`, {
    method: 'POST',
    headers: authed(customer),
    body: JSON.stringify({ vehicleId: first.vehicleId, ...window }),
  });
  assert.equal(hold.status, 201, await hold.text());
  const booking = await fetch(`${base}/v1/bookings`, {
    method: 'POST',
    headers: authed(customer),
    body: JSON.stringify({ vehicleId: second.vehicleId, ...window }),
  });
  assert.equal(booking.status, 201, await booking.text());
  assert.equal((await fetch(`${base}/v1/no-such-route`, { headers: authed(customer) })).status, 404);
  let refused = false;
  for (let i = 0; i < 100 && !refused; i++) {
    refused = (await fetch(`${base}/v1/cities`, { headers: { connection: 'close' } })).status === 429;
    if (!refused) await sleep(20);
  }
  assert.ok(refused, 'anonymous requests past RATE_LIMIT_ANONYMOUS are refused');
}

/** The metrics text once the series a test needs have samples (the stores probed, the sync's lag set). */
async function scrape(): Promise<string> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const text = await fetch(metricsUrl).then((r) => r.text());
    const ready = ['fleet_store_up{store="postgres"}', 'fleet_sync_lag_seconds{', 'fleet_rate_limited_total{'].every(
      (s) => text.includes(s),
    );
    if (ready || Date.now() > deadline) return text;
    await sleep(250);
  }
}

// ---------------------------------------------------------------------------------------------
// PromQL

type SyntaxNode = ReturnType<typeof parser.parse>['topNode'];

interface Expression {
  /** Where it comes from, for the failure message (panel title, alert name). */
  where: string;
  expr: string;
}

/** Labels Prometheus attaches to every scraped series (the target's), besides the exposed ones. */
const TARGET_LABELS = new Set(['job', 'instance']);
/** Functions whose argument must be a range of a counter (a rate of a gauge is meaningless). */
const COUNTER_FUNCTIONS = new Set(['Rate', 'Irate', 'Increase', 'Resets']);
/** Functions that take a range vector. */
const RANGE_FUNCTIONS = new Set([
  ...COUNTER_FUNCTIONS,
  'Delta',
  'Idelta',
  'Deriv',
  'Changes',
  'PredictLinear',
  'AvgOverTime',
  'MinOverTime',
  'MaxOverTime',
  'SumOverTime',
  'CountOverTime',
  'LastOverTime',
  'QuantileOverTime',
  'StddevOverTime',
  'StdvarOverTime',
  'PresentOverTime',
  'AbsentOverTime',
]);

/** Grafana's interval variables, as a range PromQL can parse. */
const withoutGrafanaIntervals = (expr: string) => expr.replace(/\$__(rate_interval|interval|range)\b/g, '5m');

function children(node: SyntaxNode): SyntaxNode[] {
  const out: SyntaxNode[] = [];
  for (let c = node.firstChild; c; c = c.nextSibling) out.push(c);
  return out;
}

function descendants(node: SyntaxNode, name: string): SyntaxNode[] {
  const out: SyntaxNode[] = [];
  const walk = (n: SyntaxNode) => {
    if (n.name === name) out.push(n);
    for (const c of children(n)) walk(c);
  };
  walk(node);
  return out;
}

/**
 * Every problem of one expression: a syntax error, a metric the service does not expose, a label
 * matcher on a label its series do not carry, a counter function over something not a counter,
 * a range function over an instant vector, histogram_quantile over something not a histogram.
 */
function checkExpression(
  { where, expr }: Expression,
  exposed: ReturnType<typeof exposition>,
  required: (family: string, matchers: Map<string, string>) => string[] = () => [],
): { problems: string[]; metrics: Set<string> } {
  const problems: string[] = [];
  const metrics = new Set<string>();
  const text = withoutGrafanaIntervals(expr);
  const tree = parser.parse(text);
  const at = (n: SyntaxNode) => text.slice(n.from, n.to);
  tree.iterate({
    enter: (n) => {
      if (n.type.isError) problems.push(`${where}: syntax error at ${n.from} in ${JSON.stringify(expr)}`);
    },
  });
  if (problems.length) return { problems, metrics };
  const familyOf = (selector: SyntaxNode): string | undefined => {
    const name = selector.getChild('Identifier');
    return name ? exposed.series.get(at(name)) : undefined;
  };
  for (const selector of descendants(tree.topNode, 'VectorSelector')) {
    const name = selector.getChild('Identifier');
    if (!name) {
      problems.push(`${where}: a selector without a metric name: ${at(selector)}`);
      continue;
    }
    const series = at(name);
    metrics.add(series);
    const family = exposed.series.get(series);
    if (!family) {
      problems.push(`${where}: ${series} is not exposed at /metrics`);
      continue;
    }
    const matchers = new Map<string, string>();
    for (const m of descendants(selector, 'UnquotedLabelMatcher')) {
      const label = m.getChild('LabelName');
      const value = m.getChild('StringLiteral');
      if (label) matchers.set(at(label), value ? at(value) : '');
    }
    const f = exposed.families.get(family);
    const known = new Set([...(f?.labels ?? []), ...TARGET_LABELS, ...(series.endsWith('_bucket') ? ['le'] : [])]);
    for (const label of matchers.keys())
      if (f?.samples && !known.has(label)) problems.push(`${where}: ${series} has no label ${label}`);
    for (const p of required(family, matchers)) problems.push(`${where}: ${series} ${p}`);
  }
  for (const call of descendants(tree.topNode, 'FunctionCall')) {
    const fn = call.getChild('FunctionIdentifier')?.firstChild?.name ?? '';
    const args = children(call.getChild('FunctionCallBody') ?? call);
    if (RANGE_FUNCTIONS.has(fn)) {
      const arg = args[0];
      if (arg?.name !== 'MatrixSelector' && arg?.name !== 'SubqueryExpr')
        problems.push(`${where}: ${fn.toLowerCase()}() needs a range vector: ${at(call)}`);
      if (COUNTER_FUNCTIONS.has(fn) && arg?.name === 'MatrixSelector') {
        const selector = arg.getChild('VectorSelector');
        const family = selector && familyOf(selector);
        const type = family ? exposed.families.get(family)?.type : undefined;
        if (type && type !== 'counter' && type !== 'histogram' && type !== 'summary')
          problems.push(`${where}: ${fn.toLowerCase()}() of a ${type}: ${at(call)}`);
      }
    }
    if (fn === 'HistogramQuantile') {
      const buckets = descendants(args[1] ?? call, 'VectorSelector').filter((s) => {
        const family = familyOf(s);
        return family && exposed.families.get(family)?.type === 'histogram' && at(s).includes('_bucket');
      });
      if (!buckets.length) problems.push(`${where}: histogram_quantile() over no histogram's _bucket: ${at(call)}`);
      for (const g of descendants(args[1] ?? call, 'GroupingLabels'))
        if (!descendants(g, 'LabelName').some((l) => at(l) === 'le'))
          problems.push(`${where}: histogram_quantile() aggregates its buckets without keeping le: ${at(call)}`);
    }
  }
  return { problems, metrics };
}

// ---------------------------------------------------------------------------------------------
// The rules file: Prometheus's rule format (rulefmt), which refuses unknown fields

const DURATION = /^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function only(where: string, o: Record<string, unknown>, allowed: string[], problems: string[]): void {
  for (const k of Object.keys(o)) if (!allowed.includes(k)) problems.push(`${where}: unknown field ${k}`);
}

function stringMap(where: string, v: unknown, problems: string[]): Record<string, string> {
  if (v === undefined) return {};
  if (!isRecord(v)) {
    problems.push(`${where}: not a map`);
    return {};
  }
  const out: Record<string, string> = {};
  for (const [k, x] of Object.entries(v)) {
    if (!LABEL_NAME.test(k)) problems.push(`${where}: ${k} is not a valid label name`);
    if (typeof x !== 'string') problems.push(`${where}.${k}: not a string`);
    else out[k] = x;
  }
  return out;
}

/** Structure problems, and every alert's expression, name, severity and runbook. */
function readRules(doc: unknown): {
  problems: string[];
  alerts: { name: string; expr: string; severity: string; runbook: string }[];
} {
  const problems: string[] = [];
  const alerts: { name: string; expr: string; severity: string; runbook: string }[] = [];
  if (!isRecord(doc) || !Array.isArray(doc.groups) || doc.groups.length === 0)
    return { problems: ['the file has no groups'], alerts };
  only('file', doc, ['groups'], problems);
  const groupNames = new Set<string>();
  for (const [gi, group] of doc.groups.entries()) {
    const g = `groups[${gi}]`;
    if (!isRecord(group)) {
      problems.push(`${g}: not a map`);
      continue;
    }
    only(g, group, ['name', 'interval', 'limit', 'query_offset', 'labels', 'rules'], problems);
    if (typeof group.name !== 'string' || !group.name) problems.push(`${g}: no name`);
    else if (groupNames.has(group.name)) problems.push(`${g}: group name ${group.name} repeated`);
    else groupNames.add(group.name);
    if (group.interval !== undefined && !(typeof group.interval === 'string' && DURATION.test(group.interval)))
      problems.push(`${g}.interval: not a duration`);
    if (!Array.isArray(group.rules) || group.rules.length === 0) {
      problems.push(`${g}: no rules`);
      continue;
    }
    for (const [ri, rule] of group.rules.entries()) {
      const r = `${g}.rules[${ri}]`;
      if (!isRecord(rule)) {
        problems.push(`${r}: not a map`);
        continue;
      }
      only(r, rule, ['record', 'alert', 'expr', 'for', 'keep_firing_for', 'labels', 'annotations'], problems);
      if ((rule.alert === undefined) === (rule.record === undefined)) problems.push(`${r}: needs one of alert, record`);
      if (typeof rule.expr !== 'string' || !rule.expr.trim()) problems.push(`${r}: no expr`);
      const labels = stringMap(`${r}.labels`, rule.labels, problems);
      if (rule.record !== undefined) {
        if (typeof rule.record !== 'string' || !METRIC_NAME.test(rule.record))
          problems.push(`${r}: record is not a metric name`);
        if (rule.for !== undefined || rule.annotations !== undefined)
          problems.push(`${r}: a recording rule takes no for or annotations`);
        continue;
      }
      const name = typeof rule.alert === 'string' ? rule.alert : '';
      if (!name) problems.push(`${r}: alert has no name`);
      for (const k of ['for', 'keep_firing_for'])
        if (rule[k] !== undefined && !(typeof rule[k] === 'string' && DURATION.test(rule[k])))
          problems.push(`${r}.${k}: not a duration`);
      const annotations = stringMap(`${r}.annotations`, rule.annotations, problems);
      if (!['critical', 'warning', 'info'].includes(labels.severity ?? ''))
        problems.push(`${r} (${name}): labels.severity is not critical, warning or info`);
      for (const k of ['summary', 'description', 'runbook_url'])
        if (!annotations[k]) problems.push(`${r} (${name}): no annotations.${k}`);
      alerts.push({
        name,
        expr: typeof rule.expr === 'string' ? rule.expr : '',
        severity: labels.severity ?? '',
        runbook: annotations.runbook_url ?? '',
      });
    }
  }
  return { problems, alerts };
}

/** GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens. */
const slug = (heading: string) =>
  heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');

function anchors(markdown: string): Set<string> {
  return new Set([...markdown.matchAll(/^#{1,6}\s+(.+)$/gm)].map((m) => slug(m[1] ?? '')));
}

// ---------------------------------------------------------------------------------------------
// The dashboard

interface Panel {
  id?: number;
  type?: string;
  title?: string;
  datasource?: { type?: string; uid?: string };
  targets?: { expr?: string; refId?: string; datasource?: { uid?: string } }[];
  panels?: Panel[];
  gridPos?: { h: number; w: number; x: number; y: number };
}

interface Dashboard {
  uid?: string;
  title?: string;
  schemaVersion?: number;
  panels?: Panel[];
  templating?: { list?: { name?: string; type?: string; query?: unknown; datasource?: { uid?: string } }[] };
}

/** Grafana's reference to the data source variable (`$` + `{datasource}`; not a template literal). */
const DATASOURCE = '\x24{datasource}';

/** Every panel, rows' (collapsed ones hold theirs) included. */
function allPanels(panels: Panel[] = []): Panel[] {
  return panels.flatMap((p) => [p, ...allPanels(p.panels)]);
}

/** Structure problems, every PromQL expression of its panels and variables, and the label its variables read. */
function readDashboard(d: Dashboard): { problems: string[]; exprs: Expression[]; variableLabels: Expression[] } {
  const problems: string[] = [];
  const exprs: Expression[] = [];
  const variableLabels: Expression[] = [];
  if (!d.uid || !d.title) problems.push('the dashboard has no uid or title');
  if (typeof d.schemaVersion !== 'number' || d.schemaVersion < 36) problems.push('schemaVersion below 36');
  const variables = d.templating?.list ?? [];
  const ds = variables.find((v) => v.name === 'datasource');
  if (ds?.type !== 'datasource' || ds.query !== 'prometheus') problems.push('no Prometheus datasource variable');
  for (const v of variables.filter((x) => x.type === 'query')) {
    if (v.datasource?.uid !== DATASOURCE) problems.push(`variable ${v.name}: not on \${datasource}`);
    const q = isRecord(v.query) ? v.query.query : v.query;
    const lv = typeof q === 'string' ? /^label_values\((.+),\s*([a-zA-Z_]\w*)\)$/.exec(q) : null;
    const qr = typeof q === 'string' ? /^query_result\((.+)\)$/.exec(q) : null;
    if (lv) {
      exprs.push({ where: `variable ${v.name}`, expr: lv[1] ?? '' });
      variableLabels.push({ where: `variable ${v.name}`, expr: lv[2] ?? '' });
    } else if (qr) exprs.push({ where: `variable ${v.name}`, expr: qr[1] ?? '' });
    else problems.push(`variable ${v.name}: neither label_values(selector, label) nor query_result(expr)`);
  }
  const ids = new Set<number>();
  for (const p of allPanels(d.panels)) {
    const where = `panel "${p.title ?? p.id}"`;
    if (typeof p.id !== 'number' || ids.has(p.id)) problems.push(`${where}: missing or repeated id`);
    else ids.add(p.id);
    if (!p.gridPos) problems.push(`${where}: no gridPos`);
    if (p.type === 'row') continue;
    if (p.datasource?.uid !== DATASOURCE) problems.push(`${where}: not on \${datasource}`);
    if (!p.targets?.length) problems.push(`${where}: no query`);
    for (const t of p.targets ?? []) {
      if (!t.expr) problems.push(`${where}: a target without expr`);
      else exprs.push({ where: `${where} ${t.refId ?? ''}`.trim(), expr: t.expr });
    }
  }
  return { problems, exprs, variableLabels };
}

// ---------------------------------------------------------------------------------------------

test('the dashboard and the alert rules name only metrics fleet serve exposes, in valid PromQL and rule format', {
  timeout: 120_000,
}, async () => {
  const customer = /customer: +(\S+)/.exec(fleet.output())?.[1];
  assert.ok(customer, 'serve prints a customer token');
  await exercise(fleet.base, customer);
  const text = await scrape();
  const exposed = exposition(text);
  assert.ok(exposed.families.size > 20, `too few metric families at ${metricsUrl}:\n${text.slice(0, 500)}`);
  // The API port answers the same families (users may scrape either).
  const api = exposition(await fetch(`${fleet.base}/metrics`).then((r) => r.text()));
  assert.deepEqual([...api.families.keys()].sort(), [...exposed.families.keys()].sort());

  const problems: string[] = [];
  const used = new Set<string>();
  const check = (e: Expression, required?: Parameters<typeof checkExpression>[2]) => {
    const r = checkExpression(e, exposed, required);
    problems.push(...r.problems);
    for (const m of r.metrics) used.add(m);
    return r;
  };

  // The rules.
  const rules = readRules(parseYaml(readFileSync(RULES, 'utf8'), { uniqueKeys: true }));
  problems.push(...rules.problems);
  assert.ok(rules.alerts.length >= 8, `${RULES}: too few alerts`);
  const runbook = readFileSync(RUNBOOK, 'utf8');
  const headings = anchors(runbook);
  for (const a of rules.alerts) {
    if (!check({ where: `alert ${a.name}`, expr: a.expr }).metrics.size)
      problems.push(`alert ${a.name}: names no metric of the service`);
    const anchor = /^https?:\/\/[^#]+\/docs\/operations\.md#([\w-]+)$/.exec(a.runbook)?.[1];
    if (!anchor || !headings.has(anchor)) problems.push(`alert ${a.name}: runbook_url has no heading in ${RUNBOOK}`);
  }

  // The dashboard: every selector follows the job variable, and the city variable where the
  // series have a city label.
  const dashboard = readDashboard(JSON.parse(readFileSync(DASHBOARD, 'utf8')));
  problems.push(...dashboard.problems);
  const filtered = (family: string, matchers: Map<string, string>) => {
    const out: string[] = [];
    if (matchers.get('job') !== '"$job"') out.push('is not filtered by job=~"$job"');
    if (exposed.families.get(family)?.labels.has('city') && matchers.get('city') !== '"$city"')
      out.push('has a city label but is not filtered by city=~"$city"');
    return out;
  };
  for (const e of dashboard.exprs) check(e, e.where.startsWith('variable ') ? undefined : filtered);
  for (const v of dashboard.variableLabels)
    if (![...exposed.families.values()].some((f) => f.labels.has(v.expr)) && !TARGET_LABELS.has(v.expr))
      problems.push(`${v.where}: no series has the label ${v.expr}`);

  assert.deepEqual(problems, [], problems.join('\n'));
  // The list, each on the dashboard or in the rules.
  for (const m of [
    'fleet_http_requests_total',
    'fleet_http_request_duration_seconds_bucket',
    'fleet_sync_lag_seconds',
    'fleet_failover_verifications_total',
    'fleet_failover_verification_started_seconds',
    'fleet_store_up',
    'fleet_redis_replication_wait_seconds_bucket',
    'fleet_redis_replication_unconfirmed_total',
    'fleet_commands_total',
    'fleet_conflict_outcomes_total',
    'fleet_webhook_attempts_total',
    'fleet_rate_limited_total',
    'fleet_sync_dead_letters_total',
  ])
    assert.ok(used.has(m), `${m} is on neither the dashboard nor the rules`);
});

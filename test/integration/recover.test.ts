import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import {
  type ActionRun,
  cliArgs,
  collectedLogs,
  fixture,
  repoRoot,
  runBundle,
  runCli,
  s3TestInputs,
  startPostgres,
  startS3,
  tempDir,
  type TestPostgres,
  type TestS3,
} from '../harness/index.js';

/**
 * Row-level recovery on a shop schema (test/fixtures/shop.sql): foreign keys, a composite key, an identity column,
 * a generated column, a table without a key, an audit trigger, and rows written after the backup.
 */
let pg: TestPostgres;
let s3: TestS3;
let bucket: string;
/** The shop as it is after the backup: the backup's rows plus NEW_CUSTOMERS customers written since. */
let base: string;
let backupId: string;
let counter = 0;
const NEW_CUSTOMERS = 10;
const s3Inputs = () => ({ 's3-bucket': bucket, 's3-endpoint': s3.endpoint, 's3-force-path-style': 'true' });

/** A fresh live database: a copy of the shop after the backup. */
async function liveCopy(): Promise<string> {
  const name = `live_${counter++}`;
  await pg.query(`CREATE DATABASE "${name}" TEMPLATE "${base}"`);
  return name;
}

async function one<T = number>(db: string, sql: string): Promise<T> {
  const rows = await pg.query(sql, db);
  const v = Object.values(rows[0]!)[0];
  return (typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v) as T;
}

/** Every row of the shop's tables as text, to prove that nothing changed. */
async function snapshot(db: string): Promise<string> {
  const tables = ['customers', 'orders', 'order_lines', 'notes', 'order_audit'];
  const parts = [];
  for (const t of tables)
    parts.push(await one<string>(db, `SELECT coalesce(string_agg(x::text, '|' ORDER BY x::text), '') FROM ${t} x`));
  parts.push(String(await one(db, 'SELECT last_value FROM customers_id_seq')));
  return parts.join('\n');
}

/** Difference files go with the logs, for the no-values check. */
function collectDiff(path: string | undefined): void {
  if (path) collectedLogs.push(readFileSync(path, 'utf8'));
}

async function recover(db: string, inputs: Record<string, string>): Promise<ActionRun> {
  const run = await runBundle(
    'verify-restore',
    { ...s3Inputs(), database: 'shop', 'target-url': pg.url(db), mode: 'recover', ...inputs },
    s3.env,
  );
  collectDiff(run.outputs['diff-path']);
  return run;
}

async function cli(db: string, args: string[]) {
  const r = await runCli(
    ['recover', ...cliArgs(s3TestInputs(s3.endpoint, bucket, 'shop')), '--target-url', pg.url(db), ...args],
    s3.env,
  );
  const outputs = r.exitCode === 0 ? (JSON.parse(r.stdout) as Record<string, string>) : {};
  collectDiff(outputs['diff-path']);
  return { ...r, outputs };
}

async function scratchDatabases(): Promise<string[]> {
  return (await pg.query<{ datname: string }>("SELECT datname FROM pg_database WHERE datname LIKE 'pba_verify_%'")).map(
    (r) => r.datname,
  );
}

/** The 100 customers 101..200 and their orders (and, by cascade, order lines) deleted. */
async function deleteHundredCustomers(db: string): Promise<void> {
  await pg.query(
    'DELETE FROM orders WHERE customer_id BETWEEN 101 AND 200; DELETE FROM customers WHERE id BETWEEN 101 AND 200',
    db,
  );
}

async function waitUntil(ok: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await ok())) {
    if (Date.now() > until) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A bundle started as the runner starts it, left running so that the test can cancel it. */
function startBundle(name: string, inputs: Record<string, string>): ChildProcess {
  const dir = tempDir('recover-run-');
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries({ ...process.env, ...s3.env })) if (v !== undefined) env[k] = v;
  delete env.NODE_OPTIONS;
  Object.assign(env, { GITHUB_ACTIONS: 'true', GITHUB_OUTPUT: path.join(dir, 'output'), RUNNER_TEMP: dir });
  writeFileSync(env.GITHUB_OUTPUT!, '');
  for (const [k, v] of Object.entries(inputs)) env[`INPUT_${k.toUpperCase()}`] = v;
  return spawn(process.execPath, [path.join(repoRoot, 'dist', name, 'index.js')], { env, stdio: 'ignore' });
}

/** The runner's cancel: SIGINT, SIGTERM 7.5 s later, SIGKILL 2.5 s after that. Resolves with the exit code. */
async function cancelAsRunner(child: ChildProcess): Promise<number | null> {
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const step = async (ms: number) => {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<boolean>((r) => (timer = setTimeout(() => r(false), ms)));
    const done = await Promise.race([exited.then(() => true), timeout]);
    clearTimeout(timer);
    return done;
  };
  child.kill('SIGINT');
  if (!(await step(7500))) {
    child.kill('SIGTERM');
    if (!(await step(2500))) child.kill('SIGKILL');
  }
  return exited;
}

beforeAll(async () => {
  [pg, s3] = await Promise.all([startPostgres(), startS3()]);
  bucket = await s3.createBucket('recover');
  base = await pg.createDatabase('shop');
  await pg.query(fixture('shop.sql'), base);
  const backup = await runBundle(
    'pgdump-to-s3',
    { 'database-url': pg.url(base), ...s3Inputs(), database: 'shop' },
    s3.env,
  );
  if (backup.exitCode !== 0) throw new Error(backup.logs);
  backupId = backup.outputs['backup-id']!;
  // Written after the backup: new customers with orders, and a note.
  await pg.query(
    `INSERT INTO customers (name, email) SELECT 'New-' || md5('new' || i), 'new-' || i || '@example.org' FROM generate_series(1, ${NEW_CUSTOMERS}) i;
     INSERT INTO orders (customer_id, amount) SELECT id, 5 FROM customers WHERE id > 500;
     INSERT INTO notes VALUES (501, 'Note-new');
     TRUNCATE order_audit;`,
    base,
  );
});

afterAll(async () => {
  await Promise.all([pg?.stop(), s3?.stop()]);
});

describe('verify-restore mode: recover', () => {
  test('`where` that is not a single expression is refused before anything is downloaded', async () => {
    const db = await liveCopy();
    const before = await snapshot(db);
    for (const where of ['true; drop table customers', 'true) OR (true', 'id = 1 -- and more', 'id = 1 /* x */']) {
      const run = await recover(db, { tables: 'public.customers', where, confirm: db });
      expect(run.exitCode).toBe(1);
      expect(run.errors.join('\n')).toMatch(/^Input `where`: must be a single SQL expression/);
      expect(run.logs).not.toMatch(/Downloaded/);
    }
    // Semicolons inside literals, quoted identifiers and dollar quotes are fine.
    const fine = await recover(db, {
      tables: 'public.customers',
      where: `email <> 'a;b' AND "name" IS DISTINCT FROM $$--$$`,
      'dry-run': 'true',
    });
    expect(fine.errors).toEqual([]);
    expect(fine.outputs['rows-inserted']).toBe('0');
    // An expression that fails on a row is reported without the row's value.
    const failing = await recover(db, { tables: 'public.customers', where: 'name::int > 0', 'dry-run': 'true' });
    expect(failing.exitCode).toBe(1);
    expect(failing.errors.join('\n')).toMatch(
      /rows of public\.customers do not fit .*SQLSTATE 22P02.*the value is not shown/,
    );
    expect(await snapshot(db)).toBe(before);
  });

  test('a DELETE of 100 customers with their orders: dry run, then skip brings both back in one transaction', async () => {
    const db = await liveCopy();
    const expected = {
      customers: await one(db, 'SELECT count(*) FROM customers'),
      orders: await one(db, 'SELECT count(*) FROM orders'),
      lines: await one(db, 'SELECT count(*) FROM order_lines'),
      labels: await one<string>(db, "SELECT md5(string_agg(label, ',' ORDER BY id)) FROM customers"),
    };
    await deleteHundredCustomers(db);
    const seqBefore = await one(db, 'SELECT last_value FROM customers_id_seq');
    const tables = 'public.order_lines, public.orders, public.customers';

    const dry = await recover(db, { tables, 'dry-run': 'true' });
    expect(dry.errors).toEqual([]);
    expect(dry.outputs).toMatchObject({ 'rows-inserted': String(100 + 200 + 400), 'rows-updated': '0' });
    expect(await one(db, 'SELECT count(*) FROM customers')).toBe(expected.customers - 100);
    expect(dry.summary).toMatch(/Dry run: nothing was changed/);
    const dryDiff = JSON.parse(readFileSync(dry.outputs['diff-path']!, 'utf8'));
    const customers = dryDiff.tables.find((t: { table: string }) => t.table === 'public.customers');
    expect(customers).toMatchObject({
      key: ['id'],
      keySource: 'primary key',
      backupRows: 500,
      missing: { count: 100 },
      differing: { count: 0 },
      onlyInLive: { count: NEW_CUSTOMERS },
    });
    expect(customers.missing.sampleKeys).toHaveLength(20);
    expect(customers.missing.sampleKeys[0]).toEqual({ id: '101' });
    const lines = dryDiff.tables.find((t: { table: string }) => t.table === 'public.order_lines');
    expect(lines.key).toEqual(['order_id', 'line']);
    expect(lines.missing.sampleKeys[0]).toEqual({ order_id: '201', line: '1' });
    // Parents before children.
    expect(dryDiff.tables.map((t: { table: string }) => t.table)).toEqual([
      'public.customers',
      'public.orders',
      'public.order_lines',
    ]);

    const refused = await recover(db, { tables });
    expect(refused.exitCode).toBe(1);
    expect(refused.errors.join('\n')).toMatch(/Input `confirm`/);

    const run = await recover(db, { tables, confirm: db });
    expect(run.errors).toEqual([]);
    expect(run.outputs).toMatchObject({
      status: 'passed',
      'backup-id': backupId,
      'rows-inserted': dry.outputs['rows-inserted'],
      'rows-updated': '0',
      'rows-unchanged': dry.outputs['rows-unchanged'],
    });
    expect(await one(db, 'SELECT count(*) FROM customers')).toBe(expected.customers);
    expect(await one(db, 'SELECT count(*) FROM orders')).toBe(expected.orders);
    expect(await one(db, 'SELECT count(*) FROM order_lines')).toBe(expected.lines);
    // Identity values kept, generated column computed by the server, rows written since the backup still there.
    expect(await one<string>(db, "SELECT md5(string_agg(label, ',' ORDER BY id)) FROM customers")).toBe(
      expected.labels,
    );
    expect(await one(db, "SELECT count(*) FROM customers WHERE name LIKE 'New-%'")).toBe(NEW_CUSTOMERS);
    expect(
      await one(db, 'SELECT count(*) FROM orders o LEFT JOIN customers c ON c.id = o.customer_id WHERE c.id IS NULL'),
    ).toBe(0);
    // The sequence was not moved backwards; the audit trigger fired for the 200 orders and the summary says so.
    expect(await one(db, 'SELECT last_value FROM customers_id_seq')).toBe(seqBefore);
    expect(await one(db, "SELECT count(*) FROM order_audit WHERE op = 'INSERT'")).toBe(200);
    expect(run.summary).toMatch(/Triggers fired as for any insert or update: public\.orders \(orders_audit\)/);
    expect(await scratchDatabases()).toEqual([]);

    // Run again: nothing missing any more.
    const again = await recover(db, { tables, confirm: db });
    expect(again.outputs['rows-inserted']).toBe('0');
  });

  test('a bad UPDATE: `update` (through the CLI) restores the old values of the keys `where` selects', async () => {
    const db = await liveCopy();
    const original = await one<string>(db, "SELECT string_agg(name, ',' ORDER BY id) FROM customers WHERE id <= 100");
    await pg.query('UPDATE customers SET name = NULL WHERE id <= 250', db);
    // The sequence behind a recovered key is advanced past it.
    await pg.query("SELECT setval('customers_id_seq', 5)", db);

    const args = ['--tables', 'public.customers', '--on-conflict', 'update', '--where', 'id <= 100'];
    const dry = await cli(db, [...args, '--dry-run', 'true']);
    expect(dry.stderr).not.toMatch(/error/);
    expect(dry.outputs).toMatchObject({ 'rows-inserted': '0', 'rows-updated': '100', 'rows-unchanged': '0' });

    const run = await cli(db, [...args, '--confirm', db]);
    expect(run.exitCode).toBe(0);
    expect(run.outputs).toMatchObject({ 'rows-inserted': '0', 'rows-updated': '100', 'rows-unchanged': '0' });
    expect(await one<string>(db, "SELECT string_agg(name, ',' ORDER BY id) FROM customers WHERE id <= 100")).toBe(
      original,
    );
    expect(await one(db, 'SELECT count(*) FROM customers WHERE name IS NULL')).toBe(150);
    expect(await one(db, 'SELECT last_value FROM customers_id_seq')).toBe(100);
    expect(run.stderr).toMatch(
      /public\.customers: 100 row\(s\) of the backup considered; 0 missing from live, 100 differ/,
    );
    const diff = JSON.parse(readFileSync(run.outputs['diff-path']!, 'utf8'));
    expect(diff.tables[0].sequencesAdvanced).toEqual(['public.customers_id_seq']);
    // Only-in-live is measured against the whole backup table, not only the rows `where` selected.
    expect(diff.tables[0].onlyInLive.count).toBe(NEW_CUSTOMERS);
  });

  test('the table without a key is refused for skip, naming it, and works side-by-side, changing no live table', async () => {
    const db = await liveCopy();
    await pg.query('DELETE FROM notes; DELETE FROM order_lines WHERE order_id < 10', db);
    const before = await snapshot(db);
    const refused = await recover(db, { tables: 'public.customers, public.notes', confirm: db });
    expect(refused.exitCode).toBe(1);
    expect(refused.errors.join('\n')).toMatch(
      /Input `tables`: public\.notes has no primary key and no unique key on NOT NULL columns.*`on-conflict: side-by-side`/,
    );
    expect(refused.logs).not.toMatch(/Downloaded/);

    const run = await recover(db, { tables: 'public.notes, public.order_lines', 'on-conflict': 'side-by-side' });
    expect(run.errors).toEqual([]);
    const recovered = run.outputs['recovered-tables']!.split(',');
    expect(recovered).toHaveLength(2);
    expect(recovered[0]).toMatch(/^public\.notes__recovered_\d{8}_\d{6}$/);
    expect(run.outputs['rows-inserted']).toBe(String(50 + 2000));
    expect(await one(db, `SELECT count(*) FROM ${recovered[0]}`)).toBe(50);
    expect(await one(db, `SELECT count(*) FROM ${recovered[1]}`)).toBe(2000);
    expect(await snapshot(db)).toBe(before);
    const diff = JSON.parse(readFileSync(run.outputs['diff-path']!, 'utf8'));
    expect(diff.tables.find((t: { table: string }) => t.table === 'public.order_lines').missing.count).toBe(18);
  });

  test('a recovery that violates a foreign key changes nothing and names the constraint and the first key', async () => {
    const db = await liveCopy();
    await deleteHundredCustomers(db);
    const before = await snapshot(db);
    const run = await recover(db, { tables: 'public.orders', confirm: db });
    expect(run.exitCode).toBe(1);
    expect(run.errors.join('\n')).toMatch(
      /nothing was changed: writing public\.orders violates foreign key constraint "orders_customer_id_fkey"; first offending row: key 201 \(Key \(customer_id\)=\(\d+\) is not present in table "customers"\.\)/,
    );
    expect(await snapshot(db)).toBe(before);
    expect(await scratchDatabases()).toEqual([]);
  });

  test('a recovery cancelled as the runner cancels (SIGINT, SIGTERM 7.5 s later, then SIGKILL) changes nothing', async () => {
    const db = await liveCopy();
    await deleteHundredCustomers(db);
    // A slow statement trigger holds the recovery inside its transaction long enough to cancel it there.
    await pg.query(
      `CREATE FUNCTION slow() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(3); RETURN NULL; END $$;
       CREATE TRIGGER slow AFTER INSERT ON orders FOR EACH STATEMENT EXECUTE FUNCTION slow();`,
      db,
    );
    const before = await snapshot(db);
    const child = startBundle('verify-restore', {
      ...s3Inputs(),
      database: 'shop',
      'target-url': pg.url(db),
      mode: 'recover',
      tables: 'public.customers, public.orders',
      confirm: db,
    });
    const sleeping = async () =>
      one(db, `SELECT count(*) FROM pg_stat_activity WHERE datname = '${db}' AND wait_event = 'PgSleep'`);
    await waitUntil(async () => (await sleeping()) > 0 || child.exitCode !== null, 120_000);
    expect(child.exitCode).toBeNull();
    const code = await cancelAsRunner(child);
    expect(code).not.toBe(0);
    // The server finishes the statement it was in, finds the client gone and rolls back.
    await waitUntil(
      async () =>
        (await one(db, `SELECT count(*) FROM pg_stat_activity WHERE datname = '${db}' AND pid <> pg_backend_pid()`)) ===
        0,
      30_000,
    );
    expect(await snapshot(db)).toBe(before);
    expect(await one(db, 'SELECT count(*) FROM customers')).toBe(500 + NEW_CUSTOMERS - 100);
  });

  test('no value of a recovered row appears in the logs, the summaries or the difference files', async () => {
    const values = (
      await pg.query<{ v: string }>(
        `SELECT name AS v FROM customers UNION ALL SELECT email FROM customers
         UNION ALL SELECT product FROM order_lines UNION ALL SELECT body FROM notes`,
        base,
      )
    ).map((r) => r.v);
    expect(values.length).toBeGreaterThan(3000);
    const text = collectedLogs.join('\n');
    expect(text).toMatch(/public\.customers/);
    expect(values.filter((v) => text.includes(v))).toEqual([]);
  });
});

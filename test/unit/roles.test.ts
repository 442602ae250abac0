import { extensionsInToc, missingExtensionsMessage, summarizeRestoreErrors } from '../../src/lib/extensions.js';
import { createRoleSql, referencedRoles, roleAttributesFromGlobals, rolesInStatement } from '../../src/lib/roles.js';

describe('roles a pg_restore script refers to', () => {
  test.each([
    [
      'CREATE POLICY "read all" ON "Klinik Ärzte"."Patienten Übersicht" FOR SELECT TO clinic_reader, "Clinic Auditör" USING (true)',
      ['clinic_reader', 'Clinic Auditör'],
    ],
    ['CREATE POLICY p2 ON public.t AS RESTRICTIVE USING ((id > 0))', []],
    ['CREATE POLICY p ON public.t TO PUBLIC USING (true)', []],
    ['CREATE POLICY p ON public.t TO CURRENT_USER, app WITH CHECK (true)', ['app']],
    // "to" inside a quoted name or a string is not the keyword
    [`CREATE POLICY "to x" ON public."TO" TO "a""b" USING (note = 'TO nobody')`, ['a"b']],
    ['GRANT SELECT ON TABLE "Klinik Ärzte"."Patienten Übersicht" TO clinic_reader', ['clinic_reader']],
    ['GRANT ALL ON SCHEMA public TO app_rw WITH GRANT OPTION', ['app_rw']],
    ['GRANT SELECT ON TABLE public."x TO y" TO GROUP readers, "Mixed"', ['readers', 'Mixed']],
    ['REVOKE ALL ON TABLE public.t FROM PUBLIC', []],
    ['REVOKE ALL ON TABLE public.t FROM old_owner', ['old_owner']],
    [
      'ALTER DEFAULT PRIVILEGES FOR ROLE app_owner IN SCHEMA public GRANT SELECT ON TABLES  TO "Clinic Auditör"',
      ['app_owner', 'Clinic Auditör'],
    ],
    ['ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE ALL ON TABLES FROM anon', ['anon']],
    ['ALTER TABLE "Klinik Ärzte"."Patienten Übersicht" OWNER TO "Owner Role"', ['Owner Role']],
    ['ALTER FUNCTION public.f(integer) OWNER TO supabase_admin', ['supabase_admin']],
    ['ALTER TABLE public.t ENABLE ROW LEVEL SECURITY', []],
    ['CREATE USER MAPPING FOR remote_user SERVER s OPTIONS (user $$x$$)', ['remote_user']],
    ['CREATE USER MAPPING FOR PUBLIC SERVER s', []],
    ["SET SESSION AUTHORIZATION 'grantor one'", ['grantor one']],
    // a function body that mentions GRANT ... TO is not a reference
    ['CREATE FUNCTION f() RETURNS void LANGUAGE sql AS $$GRANT SELECT ON t TO ghost$$', []],
    ['CREATE TABLE public.t (id int)', []],
  ])('%s', (sql, roles) => expect(rolesInStatement(sql)).toEqual(roles));

  test('a script: each role once, in order of first use; comments ignored', () => {
    const script = `--
-- Name: visits visits_read; Type: POLICY; Schema: public; Owner: postgres
--
CREATE POLICY visits_read ON public.visits FOR SELECT TO clinic_reader, "Clinic Auditör" USING ((minutes > 0));
-- GRANT SELECT ON x TO commented_out;
CREATE POLICY visits_org ON public.visits AS RESTRICTIVE FOR SELECT TO clinic_reader USING ((client_id IS NOT NULL));
`;
    expect(referencedRoles(script)).toEqual(['clinic_reader', 'Clinic Auditör']);
  });
});

describe('role attributes from pg_dumpall --globals-only', () => {
  const globals = `
SET default_transaction_read_only = off;
CREATE ROLE "Clinic Auditör";
ALTER ROLE "Clinic Auditör" WITH NOSUPERUSER INHERIT NOCREATEROLE NOCREATEDB NOLOGIN NOREPLICATION BYPASSRLS;
CREATE ROLE clinic_reader;
ALTER ROLE clinic_reader WITH NOSUPERUSER NOINHERIT NOCREATEROLE NOCREATEDB LOGIN NOREPLICATION NOBYPASSRLS PASSWORD 'SCRAM-SHA-256$4096:secret';
ALTER ROLE clinic_reader SET search_path TO bypassrls_schema;
CREATE ROLE postgres;
ALTER ROLE postgres WITH SUPERUSER INHERIT CREATEROLE CREATEDB LOGIN REPLICATION BYPASSRLS;
GRANT clinic_reader TO postgres;
`;
  test('only the roles asked for; only BYPASSRLS and INHERIT are read', () => {
    const attrs = roleAttributesFromGlobals(globals, ['Clinic Auditör', 'clinic_reader', 'absent']);
    expect(Object.fromEntries(attrs)).toEqual({
      'Clinic Auditör': { bypassRls: true, inherit: true },
      clinic_reader: { bypassRls: false, inherit: false },
    });
  });
  test.each([
    [undefined, 'CREATE ROLE "app" NOLOGIN'],
    [{ bypassRls: true, inherit: true }, 'CREATE ROLE "app" NOLOGIN BYPASSRLS'],
    [{ bypassRls: false, inherit: false }, 'CREATE ROLE "app" NOLOGIN NOINHERIT'],
  ])('CREATE ROLE with %j: never LOGIN, never a password', (attrs, sql) =>
    expect(createRoleSql('app', attrs)).toBe(sql),
  );
  test('names are quoted', () => expect(createRoleSql('a"b c')).toBe('CREATE ROLE "a""b c" NOLOGIN'));
});

describe('extensions', () => {
  test('EXTENSION entries of a TOC listing; comments on extensions are not entries', () => {
    const toc = `;
; Archive created at 2026-11-27 17:00:00 UTC
8; 2615 16435 SCHEMA - Klinik Ärzte postgres
2; 3079 16385 EXTENSION - pgcrypto 
3400; 0 0 COMMENT - EXTENSION pgcrypto 
3; 3079 16422 EXTENSION - uuid-ossp 
4; 3079 16500 EXTENSION - vector 
217; 1259 16436 TABLE public visits postgres
`;
    expect(extensionsInToc(toc)).toEqual(['pgcrypto', 'uuid-ossp', 'vector']);
  });

  test('one message names every missing extension and the fix', () => {
    const msg = missingExtensionsMessage(['vector', 'postgis'], '17.2');
    expect(msg).toContain('the extensions "vector", "postgis"');
    expect(msg).toContain('PostgreSQL 17.2');
    expect(msg).toContain('`postgres-image`');
    expect(msg).toContain('`pgvector/pgvector:pg17` or `postgis/postgis:17-3.5`');
    expect(missingExtensionsMessage(['pba_x'], '15.4')).toContain('the extension "pba_x"');
  });
});

describe('pg_restore errors: root causes first, follow-on errors counted', () => {
  const err = (m: string) => `pg_restore: error: could not execute query: ERROR:  ${m}`;
  test.each([
    [
      [
        err('extension "vector" is not available'),
        err('type "public.vector" does not exist'),
        err('relation "public.items" does not exist'),
        err('relation "public.items" does not exist'),
        err('role "app_ro" does not exist'),
      ],
      [
        /^pg_restore reported 5 error\(s\)\. Root causes: missing extension "vector", missing type "public\.vector", missing role "app_ro"$/m,
        /^plus 2 follow-on error\(s\)$/m,
      ],
    ],
    [
      [
        err(
          'could not open extension control file "/usr/share/postgresql/15/extension/postgis.control": No such file or directory',
        ),
      ],
      [/Root cause: missing extension "postgis"/],
    ],
    [
      [err('duplicate key value violates unique constraint "t_pkey"')],
      [/^pg_restore reported 1 error\(s\):\n.*duplicate key/],
    ],
  ])('%#', (errors, patterns) => {
    const text = summarizeRestoreErrors(errors);
    for (const p of patterns) expect(text).toMatch(p);
    expect(text).not.toContain('relation "public.items"');
  });
});

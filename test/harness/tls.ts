import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** A throwaway certificate authority with a server certificate for `localhost` and a client certificate. */
export interface TestCa {
  dir: string;
  /** The CA certificate (what `sslrootcert` names). */
  caFile: string;
  /** Server certificate and key, issued for the DNS name `localhost` only (not for 127.0.0.1). */
  serverCertFile: string;
  serverKeyFile: string;
  /** Client certificate (CN = `clientUser`) and key (mode 0600, as libpq insists). */
  clientCertFile: string;
  clientKeyFile: string;
  clientUser: string;
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

/** Makes a CA, then a server and a client certificate signed by it, with `openssl` (P-256 keys, valid 2 days). */
export function makeTestCa(name = 'pba-test-ca', clientUser = 'postgres'): TestCa {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pba-ca-'));
  openssl(['req', '-x509', ...EC, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', `/CN=${name}`], dir);
  const issue = (base: string, subject: string, ext: string) => {
    writeFileSync(path.join(dir, `${base}.ext`), ext);
    openssl(['req', ...EC, '-keyout', `${base}.key`, '-out', `${base}.csr`, '-subj', subject], dir);
    openssl(
      [
        'x509',
        '-req',
        '-in',
        `${base}.csr`,
        '-CA',
        'ca.crt',
        '-CAkey',
        'ca.key',
        '-CAcreateserial',
        '-out',
        `${base}.crt`,
        '-days',
        '2',
        '-extfile',
        `${base}.ext`,
      ],
      dir,
    );
    chmodSync(path.join(dir, `${base}.key`), 0o600);
  };
  issue('server', '/CN=localhost', 'subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth\n');
  issue('client', `/CN=${clientUser}`, 'extendedKeyUsage=clientAuth\n');
  return {
    dir,
    caFile: path.join(dir, 'ca.crt'),
    serverCertFile: path.join(dir, 'server.crt'),
    serverKeyFile: path.join(dir, 'server.key'),
    clientCertFile: path.join(dir, 'client.crt'),
    clientKeyFile: path.join(dir, 'client.key'),
    clientUser,
  };
}

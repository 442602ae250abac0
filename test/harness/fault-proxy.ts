import http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A fault-injecting HTTP proxy for an S3 server (path-style requests): requests and replies stream through
 * unchanged unless a rule picks them. Every injected fault is logged in `injected`, so a test can assert on what
 * happened; `requests` counts every request seen, by operation.
 */

export type S3Operation =
  | 'ListObjectsV2'
  | 'ListMultipartUploads'
  | 'GetObject'
  | 'HeadObject'
  | 'PutObject'
  | 'CreateMultipartUpload'
  | 'UploadPart'
  | 'CompleteMultipartUpload'
  | 'AbortMultipartUpload'
  | 'DeleteObject'
  | 'DeleteObjects'
  | 'Bucket';

export type Fault =
  /** 503 SlowDown, answered by the proxy; the request never reaches the server. */
  | 'slowdown'
  /** 500 InternalError, answered by the proxy; the request never reaches the server. */
  | 'internal'
  /** The connection is reset before the request is forwarded: nothing applied. */
  | 'reset-before'
  /** The request is forwarded and applied; the connection is reset before the reply reaches the client. */
  | 'reset-after'
  /** The request is forwarded after `latencyMs`. */
  | 'latency';

export interface RequestInfo {
  method: string;
  op: S3Operation;
  bucket: string;
  /** The object key, decoded; '' for bucket operations. */
  key: string;
  /** ListObjectsV2 with a continuation token: a page after the first. */
  laterPage: boolean;
}

export interface FaultRule {
  fault: Fault;
  /** Operations the rule applies to; all when absent. */
  op?: S3Operation | S3Operation[];
  /** A key pattern (tested against the decoded key). */
  key?: RegExp;
  /** Only ListObjectsV2 pages after the first. */
  laterPagesOnly?: boolean;
  /** Skip the first `after` matching requests. */
  after?: number;
  /** Apply to at most this many matching requests (after `after`). */
  times?: number;
  /** Apply with this probability (drawn from the proxy's seeded generator); 1 when absent. */
  probability?: number;
  latencyMs?: number;
  /** Shown in the log of injected faults. */
  name?: string;
}

export interface InjectedFault {
  seq: number;
  rule: string;
  fault: Fault;
  op: S3Operation;
  key: string;
}

export interface FaultProxy {
  endpoint: string;
  /** Replaces the rules (and resets their counters); the seed restarts the generator. */
  setRules(rules: FaultRule[], seed?: number): void;
  injected: InjectedFault[];
  requests: Map<S3Operation, number>;
  stop(): Promise<void>;
}

/** mulberry32: a small seeded generator, so a failing schedule can be replayed from its seed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function classify(method: string, url: string): RequestInfo {
  const u = new URL(url, 'http://proxy');
  const parts = u.pathname.split('/').slice(1);
  const bucket = decodeURIComponent(parts[0] ?? '');
  const key = parts.slice(1).map(decodeURIComponent).join('/');
  const q = u.searchParams;
  let op: S3Operation = 'Bucket';
  if (!key) {
    if (method === 'GET' && q.has('uploads')) op = 'ListMultipartUploads';
    else if (method === 'GET' && !q.has('location') && !q.has('versioning')) op = 'ListObjectsV2';
    else if (method === 'POST' && q.has('delete')) op = 'DeleteObjects';
  } else if (method === 'GET') op = 'GetObject';
  else if (method === 'HEAD') op = 'HeadObject';
  else if (method === 'PUT') op = q.has('uploadId') ? 'UploadPart' : 'PutObject';
  else if (method === 'POST') op = q.has('uploads') ? 'CreateMultipartUpload' : 'CompleteMultipartUpload';
  else if (method === 'DELETE') op = q.has('uploadId') ? 'AbortMultipartUpload' : 'DeleteObject';
  return { method, op, bucket, key, laterPage: op === 'ListObjectsV2' && q.has('continuation-token') };
}

function errorXml(code: string, message: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message><RequestId>fault-proxy</RequestId></Error>`;
}

export async function startFaultProxy(upstream: string, rules: FaultRule[] = [], seed = 1): Promise<FaultProxy> {
  const target = new URL(upstream);
  let random = seededRandom(seed);
  let active = rules;
  let counters = new Map<FaultRule, number>();
  let applied = new Map<FaultRule, number>();
  const injected: InjectedFault[] = [];
  const requests = new Map<S3Operation, number>();
  const agent = new http.Agent({ keepAlive: true });

  const pick = (info: RequestInfo): FaultRule | undefined => {
    for (const r of active) {
      const ops = r.op === undefined ? undefined : Array.isArray(r.op) ? r.op : [r.op];
      if (ops && !ops.includes(info.op)) continue;
      if (r.key && !r.key.test(info.key)) continue;
      if (r.laterPagesOnly && !info.laterPage) continue;
      const n = (counters.get(r) ?? 0) + 1;
      counters.set(r, n);
      if (r.after !== undefined && n <= r.after) continue;
      if (r.times !== undefined && (applied.get(r) ?? 0) >= r.times) continue;
      if (r.probability !== undefined && random() >= r.probability) continue;
      applied.set(r, (applied.get(r) ?? 0) + 1);
      return r;
    }
    return undefined;
  };
  const ruleName = (r: FaultRule) => r.name ?? `${r.fault}:${[r.op ?? 'any'].flat().join('|')}:${r.key ?? ''}`;

  const forward = (
    req: http.IncomingMessage,
    onReply: (res: http.IncomingMessage) => void,
    onError: (e: Error) => void,
  ) => {
    const out = http.request(
      {
        host: target.hostname,
        port: target.port,
        method: req.method,
        path: req.url,
        headers: req.headers,
        agent,
      },
      onReply,
    );
    out.on('error', onError);
    req.pipe(out);
  };

  const server = http.createServer((req, res) => {
    const info = classify(req.method ?? 'GET', req.url ?? '/');
    requests.set(info.op, (requests.get(info.op) ?? 0) + 1);
    const rule = pick(info);
    if (rule)
      injected.push({ seq: injected.length + 1, rule: ruleName(rule), fault: rule.fault, op: info.op, key: info.key });
    const passThrough = () =>
      forward(
        req,
        (up) => {
          res.writeHead(up.statusCode ?? 502, up.headers);
          up.pipe(res);
        },
        () => res.destroy(),
      );
    switch (rule?.fault) {
      case undefined:
        return passThrough();
      case 'latency':
        setTimeout(passThrough, rule.latencyMs ?? 200);
        return;
      case 'slowdown':
      case 'internal': {
        // The body is read (and dropped) first, as a server does, so the client sees the reply, not a broken pipe.
        req.resume();
        req.on('end', () => {
          const [status, code, message] =
            rule.fault === 'slowdown'
              ? [503, 'SlowDown', 'Please reduce your request rate.']
              : [500, 'InternalError', 'We encountered an internal error. Please try again.'];
          const body = info.method === 'HEAD' ? '' : errorXml(code, message);
          res.writeHead(status, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body) });
          res.end(body);
        });
        return;
      }
      case 'reset-before':
        req.socket.destroy();
        return;
      case 'reset-after':
        // Applied by the server; the reply is read in full and then lost with the connection.
        forward(
          req,
          (up) => {
            up.resume();
            up.on('end', () => req.socket.destroy());
          },
          () => req.socket.destroy(),
        );
        return;
    }
  });
  server.keepAliveTimeout = 1000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    injected,
    requests,
    setRules(next, nextSeed) {
      active = next;
      counters = new Map();
      applied = new Map();
      if (nextSeed !== undefined) random = seededRandom(nextSeed);
    },
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      agent.destroy();
    },
  };
}

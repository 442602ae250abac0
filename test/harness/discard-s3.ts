// An S3 endpoint that accepts uploads and drops their bytes: what a backup costs on its own side, apart from any
// real S3 server's cost of receiving and storing. Multipart parts and large objects are counted and discarded;
// small single-request objects (manifest, RECOVERY.md, globals) are kept so that read-backs work. Benchmarks, and
// tests of what a write sends (`check`: it then verifies each body against its payload hash and CRC32, as S3 does).
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import zlib from 'node:zlib';
import type { TestCa } from './tls.js';

export interface DiscardS3 {
  endpoint: string;
  /** Body bytes received (parts and objects). */
  bytesReceived(): number;
  /** TCP connections accepted so far. */
  connections(): number;
  /** With `check`: every write, in order of arrival, with the headers that protect its body. */
  writes(): DiscardWrite[];
  stop(): Promise<void>;
}

export interface DiscardWrite {
  kind: 'part' | 'object';
  key: string;
  /** `x-amz-content-sha256` as sent: a hex SHA-256 of the body, or `UNSIGNED-PAYLOAD`. */
  payloadHash: string;
  crc32?: string;
}

export interface DiscardOptions {
  /** Serve https for `localhost` with this CA's server certificate. */
  tls?: TestCa;
  /** Record the writes and refuse a body whose payload hash or CRC32 does not match it (400 BadDigest). */
  check?: boolean;
}

const KEEP_UP_TO = 1 << 20;
const xml = (body: string) => `<?xml version="1.0" encoding="UTF-8"?>\n${body}`;

export async function startDiscardS3(options: DiscardOptions = {}): Promise<DiscardS3> {
  let received = 0;
  const writes: DiscardWrite[] = [];
  const kept = new Map<string, Buffer>();
  const sizes = new Map<string, number>();
  const uploads = new Map<string, { key: string; bytes: number }>();

  const handler: http.RequestListener = (req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const q = url.searchParams;
    const path = decodeURIComponent(url.pathname);
    const [, bucket = '', ...rest] = path.split('/');
    const key = rest.join('/');
    const chunks: Buffer[] = [];
    let bytes = 0;
    const sha256 = options.check ? createHash('sha256') : undefined;
    let crc = 0;
    req.on('data', (c: Buffer) => {
      bytes += c.length;
      received += c.length;
      if (bytes <= KEEP_UP_TO) chunks.push(c);
      if (sha256) {
        sha256.update(c);
        crc = zlib.crc32(c, crc);
      }
    });
    req.on('end', () => {
      const send = (status: number, body = '', headers: Record<string, string> = {}) => {
        res.writeHead(status, { 'content-type': 'application/xml', ...headers });
        res.end(body);
      };
      const etag = `"${randomBytes(16).toString('hex')}"`;
      const m = req.method;
      if (sha256 && m === 'PUT' && !q.has('tagging')) {
        const payloadHash = String(req.headers['x-amz-content-sha256'] ?? '');
        const crc32 = req.headers['x-amz-checksum-crc32'] as string | undefined;
        writes.push({ kind: q.has('uploadId') ? 'part' : 'object', key, payloadHash, crc32 });
        const crcOfBody = Buffer.alloc(4);
        crcOfBody.writeUInt32BE(crc >>> 0);
        if (
          (payloadHash !== 'UNSIGNED-PAYLOAD' && payloadHash !== sha256.digest('hex')) ||
          (crc32 !== undefined && crc32 !== crcOfBody.toString('base64'))
        )
          return send(400, xml('<Error><Code>BadDigest</Code></Error>'));
      }
      if (m === 'POST' && q.has('uploads')) {
        const id = randomBytes(8).toString('hex');
        uploads.set(id, { key, bytes: 0 });
        return send(
          200,
          xml(
            `<InitiateMultipartUploadResult><Bucket>${bucket}</Bucket><Key>${key}</Key><UploadId>${id}</UploadId></InitiateMultipartUploadResult>`,
          ),
        );
      }
      if (m === 'PUT' && q.has('uploadId')) {
        const u = uploads.get(q.get('uploadId')!);
        if (!u) return send(404, xml('<Error><Code>NoSuchUpload</Code></Error>'));
        u.bytes += bytes;
        return send(200, '', { etag });
      }
      if (m === 'POST' && q.has('uploadId')) {
        const u = uploads.get(q.get('uploadId')!);
        if (!u) return send(404, xml('<Error><Code>NoSuchUpload</Code></Error>'));
        uploads.delete(q.get('uploadId')!);
        sizes.set(`${bucket}/${key}`, u.bytes);
        kept.delete(`${bucket}/${key}`);
        return send(
          200,
          xml(
            `<CompleteMultipartUploadResult><Location>/${bucket}/${key}</Location><Bucket>${bucket}</Bucket><Key>${key}</Key><ETag>${etag}</ETag></CompleteMultipartUploadResult>`,
          ),
        );
      }
      if (m === 'DELETE' && q.has('uploadId')) {
        uploads.delete(q.get('uploadId')!);
        return send(204);
      }
      if (m === 'PUT' && q.has('tagging')) return send(200);
      if (m === 'PUT') {
        sizes.set(`${bucket}/${key}`, bytes);
        if (bytes <= KEEP_UP_TO) kept.set(`${bucket}/${key}`, Buffer.concat(chunks));
        else kept.delete(`${bucket}/${key}`);
        return send(200, '', { etag });
      }
      if ((m === 'GET' || m === 'HEAD') && key) {
        const size = sizes.get(`${bucket}/${key}`);
        if (size === undefined) return send(404, m === 'HEAD' ? '' : xml('<Error><Code>NoSuchKey</Code></Error>'));
        const body = kept.get(`${bucket}/${key}`);
        if (m === 'GET' && !body) return send(501, xml('<Error><Code>NotImplemented</Code></Error>'));
        res.writeHead(200, { 'content-length': String(size), 'content-type': 'application/octet-stream', etag });
        return res.end(m === 'HEAD' ? undefined : body);
      }
      if (m === 'GET') {
        return send(
          200,
          xml(
            `<ListBucketResult><Name>${bucket}</Name><KeyCount>0</KeyCount><IsTruncated>false</IsTruncated></ListBucketResult>`,
          ),
        );
      }
      if (m === 'POST' && q.has('delete')) return send(200, xml('<DeleteResult></DeleteResult>'));
      return send(501, xml('<Error><Code>NotImplemented</Code></Error>'));
    });
  };
  const tls = options.tls;
  const server = tls
    ? https.createServer({ cert: readFileSync(tls.serverCertFile), key: readFileSync(tls.serverKeyFile) }, handler)
    : http.createServer(handler);
  // `localhost` may resolve to ::1 or 127.0.0.1: over TLS listen on both (the certificate names the host only).
  await new Promise<void>((resolve) => (tls ? server.listen(0, resolve) : server.listen(0, '127.0.0.1', resolve)));
  const port = (server.address() as AddressInfo).port;
  let connections = 0;
  server.on('connection', () => connections++);
  return {
    // The certificate names `localhost` only.
    endpoint: tls ? `https://localhost:${port}` : `http://127.0.0.1:${port}`,
    bytesReceived: () => received,
    connections: () => connections,
    writes: () => [...writes],
    stop: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

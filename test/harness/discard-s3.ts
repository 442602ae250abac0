// An S3 endpoint that accepts uploads and drops their bytes: what a backup costs on its own side, apart from any
// real S3 server's cost of receiving and storing. Multipart parts and large objects are counted and discarded;
// small single-request objects (manifest, RECOVERY.md, globals) are kept so that read-backs work. Benchmarks only.
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface DiscardS3 {
  endpoint: string;
  /** Body bytes received (parts and objects). */
  bytesReceived(): number;
  stop(): Promise<void>;
}

const KEEP_UP_TO = 1 << 20;
const xml = (body: string) => `<?xml version="1.0" encoding="UTF-8"?>\n${body}`;

export async function startDiscardS3(): Promise<DiscardS3> {
  let received = 0;
  const kept = new Map<string, Buffer>();
  const sizes = new Map<string, number>();
  const uploads = new Map<string, { key: string; bytes: number }>();

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const q = url.searchParams;
    const path = decodeURIComponent(url.pathname);
    const [, bucket = '', ...rest] = path.split('/');
    const key = rest.join('/');
    const chunks: Buffer[] = [];
    let bytes = 0;
    req.on('data', (c: Buffer) => {
      bytes += c.length;
      received += c.length;
      if (bytes <= KEEP_UP_TO) chunks.push(c);
    });
    req.on('end', () => {
      const send = (status: number, body = '', headers: Record<string, string> = {}) => {
        res.writeHead(status, { 'content-type': 'application/xml', ...headers });
        res.end(body);
      };
      const etag = `"${randomBytes(16).toString('hex')}"`;
      const m = req.method;
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
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    bytesReceived: () => received,
    stop: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

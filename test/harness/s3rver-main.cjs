// Runs s3rver in its own process (started with --openssl-legacy-provider, which its continuation tokens need).
// s3rver 3.7 lacks ListMultipartUploads and AbortMultipartUpload; this process answers those two from s3rver's own
// upload directory, so tests can prove that no multipart upload is left open. Everything else goes to s3rver.
// It also implements S3 Object Lock, which s3rver lacks (object-lock.cjs): buckets created with
// `x-amz-bucket-object-lock-enabled`, GetObjectLockConfiguration, retention headers on PutObject and
// CreateMultipartUpload, GetObjectRetention, and deletes refused before the retain-until date.
// Prints the port on stdout once listening; stops on SIGTERM.
const S3rver = require('s3rver');
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');

const directory = process.argv[2];
const s3rver = new S3rver({ silent: true, directory, configureBuckets: [] });
const forward = s3rver.callback();

const xmlEscape = (s) => s.replace(/[<>&'"]/g, (c) => `&#${c.charCodeAt(0)};`);
const uploadsDir = (bucket) => path.join(directory, bucket, '._S3rver_uploads');

function listUploads(bucket, prefix, res) {
  const dir = uploadsDir(bucket);
  const uploads = fs.existsSync(dir)
    ? fs.readdirSync(dir).flatMap((id) => {
        const keyFile = path.join(dir, id, 'key');
        if (!fs.existsSync(keyFile)) return [];
        const key = fs.readFileSync(keyFile, 'utf8');
        return key.startsWith(prefix) ? [{ id, key, initiated: fs.statSync(path.join(dir, id)).mtime }] : [];
      })
    : [];
  const body =
    '<?xml version="1.0" encoding="UTF-8"?>\n<ListMultipartUploadsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">' +
    `<Bucket>${xmlEscape(bucket)}</Bucket><Prefix>${xmlEscape(prefix)}</Prefix><MaxUploads>1000</MaxUploads><IsTruncated>false</IsTruncated>` +
    uploads
      .map(
        (u) =>
          `<Upload><Key>${xmlEscape(u.key)}</Key><UploadId>${u.id}</UploadId><Initiated>${u.initiated.toISOString()}</Initiated><StorageClass>STANDARD</StorageClass></Upload>`,
      )
      .join('') +
    '</ListMultipartUploadsResult>';
  res.writeHead(200, { 'content-type': 'application/xml' });
  res.end(body);
}

function abortUpload(bucket, uploadId, res) {
  const dir = path.join(uploadsDir(bucket), path.basename(uploadId));
  if (!fs.existsSync(dir)) {
    res.writeHead(404, { 'content-type': 'application/xml' });
    res.end(
      '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>NoSuchUpload</Code><Message>The specified upload does not exist.</Message></Error>',
    );
    return;
  }
  fs.rmSync(dir, { recursive: true, force: true });
  res.writeHead(204);
  res.end();
}

const objectLock = require('./object-lock.cjs').objectLock(s3rver.store);

const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://localhost');
  const [bucket, ...keyParts] = url.pathname.split('/').filter((p) => p !== '');
  if (
    objectLock.handle(req, res, url, bucket && decodeURIComponent(bucket), keyParts.map(decodeURIComponent).join('/'))
  )
    return undefined;
  if (req.method === 'GET' && url.searchParams.has('uploads') && keyParts.length === 0) {
    return listUploads(decodeURIComponent(bucket), url.searchParams.get('prefix') ?? '', res);
  }
  if (req.method === 'DELETE' && url.searchParams.has('uploadId') && keyParts.length > 0) {
    return abortUpload(decodeURIComponent(bucket), url.searchParams.get('uploadId'), res);
  }
  return forward(req, res);
});
server.listen(0, '127.0.0.1', () => process.stdout.write(`${server.address().port}\n`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));

// S3 Object Lock for the test S3 server, as AWS documents it
// (https://docs.aws.amazon.com/AmazonS3/latest/userguide/object-lock.html), on top of s3rver, which has none:
// - a bucket is lock-enabled only when created with `x-amz-bucket-object-lock-enabled: true`;
//   GetObjectLockConfiguration answers ObjectLockConfigurationNotFoundError for the others;
// - PutObject / CreateMultipartUpload with `x-amz-object-lock-mode` and `-retain-until-date` on a bucket without
//   Object Lock is refused (InvalidRequest), as is a PutObject with them but without Content-MD5 or a checksum, and
//   an UploadPart of such a multipart upload without one (S3: "required if object lock parameters are specified");
// - the retention is kept per key (GetObjectRetention, and the headers on HEAD/GET);
// - DeleteObject and DeleteObjects of a key before its retain-until date answer AccessDenied, except GOVERNANCE
//   with `x-amz-bypass-governance-retention: true`; an overwrite is refused the same way.
// Simplification: s3rver has no versioning, so a delete without a version id is treated as a delete of the locked
// version (on AWS it would only add a delete marker and leave the locked data in place; either way the data stays).
'use strict';

const xmlEscape = (s) => String(s).replace(/[<>&'"]/g, (c) => `&#${c.charCodeAt(0)};`);
const xmlUnescape = (s) =>
  s
    .replace(/&#(\d+);/g, (_, n) => String.fromCharCode(Number(n)))
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&apos;/g, "'")
    .replace(/&amp;/g, '&');

function sendXml(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/xml' });
  res.end('<?xml version="1.0" encoding="UTF-8"?>\n' + body);
}
function sendError(res, status, code, message) {
  sendXml(res, status, `<Error><Code>${code}</Code><Message>${xmlEscape(message)}</Message></Error>`);
}
function afterSuccess(res, fn) {
  res.on('finish', () => {
    if (res.statusCode < 300) fn();
  });
}

exports.objectLock = function objectLock(store) {
  const lockBuckets = new Set();
  /** `${bucket}/${key}` -> { mode: 'GOVERNANCE' | 'COMPLIANCE', until: Date } */
  const retention = new Map();
  /** Retention of multipart uploads in progress, applied when they complete. */
  const pending = new Map();

  const active = (bucket, key, req) => {
    const r = retention.get(`${bucket}/${key}`);
    if (!r || r.until.getTime() <= Date.now()) return undefined;
    if (r.mode === 'GOVERNANCE' && String(req.headers['x-amz-bypass-governance-retention']).toLowerCase() === 'true')
      return undefined;
    return r;
  };
  const lockOf = (req) => {
    const mode = req.headers['x-amz-object-lock-mode'];
    const until = req.headers['x-amz-object-lock-retain-until-date'];
    if (!mode && !until) return undefined;
    return { mode: String(mode).toUpperCase(), until: new Date(String(until)) };
  };
  /** Refuses lock headers that AWS refuses; returns true when it answered. */
  const refuseLock = (res, bucket, lock) => {
    if (!lockBuckets.has(bucket)) {
      sendError(res, 400, 'InvalidRequest', 'Bucket is missing Object Lock Configuration');
      return true;
    }
    if (!['GOVERNANCE', 'COMPLIANCE'].includes(lock.mode) || Number.isNaN(lock.until.getTime())) {
      sendError(res, 400, 'InvalidArgument', 'Unknown wormMode directive or invalid retain-until date.');
      return true;
    }
    if (lock.until.getTime() <= Date.now()) {
      sendError(res, 400, 'InvalidArgument', 'The retain until date must be in the future!');
      return true;
    }
    return false;
  };
  /** Content-MD5, or an SDK checksum (x-amz-checksum-* header, or announced for the aws-chunked trailer). */
  const checksummed = (req) =>
    Boolean(
      req.headers['content-md5'] ||
      req.headers['x-amz-sdk-checksum-algorithm'] ||
      req.headers['x-amz-trailer'] ||
      Object.keys(req.headers).some((h) => h.startsWith('x-amz-checksum-')),
    );
  const refuseUnchecksummed = (res, what) =>
    sendError(
      res,
      400,
      'InvalidRequest',
      `Content-MD5 OR x-amz-checksum- HTTP header is required for ${what} requests with Object Lock parameters`,
    );
  const headers = (res, r) => {
    res.setHeader('x-amz-object-lock-mode', r.mode);
    res.setHeader('x-amz-object-lock-retain-until-date', r.until.toISOString());
  };

  async function deleteObjects(req, res, bucket) {
    const chunks = [];
    for await (const c of req) chunks.push(c);
    const body = Buffer.concat(chunks).toString('utf8');
    const quiet = /<Quiet>\s*true\s*<\/Quiet>/i.test(body);
    const keys = [...body.matchAll(/<Key>([\s\S]*?)<\/Key>/g)].map((m) => xmlUnescape(m[1]));
    const parts = [];
    for (const key of keys) {
      if (active(bucket, key, req)) {
        parts.push(
          `<Error><Key>${xmlEscape(key)}</Key><Code>AccessDenied</Code><Message>Access Denied because object protected by object lock.</Message></Error>`,
        );
        continue;
      }
      await store.deleteObject(bucket, key);
      retention.delete(`${bucket}/${key}`);
      if (!quiet) parts.push(`<Deleted><Key>${xmlEscape(key)}</Key></Deleted>`);
    }
    sendXml(res, 200, `<DeleteResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">${parts.join('')}</DeleteResult>`);
  }

  /** Answers the request when Object Lock concerns it; returns false to let s3rver handle it. */
  function handle(req, res, url, bucket, key) {
    if (!bucket) return false;
    const q = url.searchParams;
    if (!key) {
      if (req.method === 'PUT' && [...q.keys()].length === 0) {
        if (String(req.headers['x-amz-bucket-object-lock-enabled']).toLowerCase() === 'true')
          afterSuccess(res, () => lockBuckets.add(bucket));
        return false;
      }
      if (req.method === 'GET' && q.has('object-lock')) {
        if (!lockBuckets.has(bucket))
          sendError(
            res,
            404,
            'ObjectLockConfigurationNotFoundError',
            'Object Lock configuration does not exist for this bucket',
          );
        else
          sendXml(
            res,
            200,
            '<ObjectLockConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><ObjectLockEnabled>Enabled</ObjectLockEnabled></ObjectLockConfiguration>',
          );
        return true;
      }
      if (req.method === 'POST' && q.has('delete') && lockBuckets.has(bucket)) {
        deleteObjects(req, res, bucket).catch((e) => sendError(res, 500, 'InternalError', e.message));
        return true;
      }
      return false;
    }
    const id = `${bucket}/${key}`;
    if (req.method === 'GET' && q.has('retention')) {
      const r = retention.get(id);
      if (!r)
        sendError(
          res,
          404,
          'NoSuchObjectLockConfiguration',
          'The specified object does not have a ObjectLock configuration',
        );
      else
        sendXml(
          res,
          200,
          `<Retention xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Mode>${r.mode}</Mode><RetainUntilDate>${r.until.toISOString()}</RetainUntilDate></Retention>`,
        );
      return true;
    }
    if ((req.method === 'GET' || req.method === 'HEAD') && retention.has(id)) {
      headers(res, retention.get(id));
      return false;
    }
    if (req.method === 'PUT' && !q.has('uploadId') && !q.has('tagging')) {
      if (active(bucket, key, req)) {
        sendError(res, 403, 'AccessDenied', 'Access Denied because object protected by object lock.');
        return true;
      }
      const lock = lockOf(req);
      if (!lock) return false;
      if (refuseLock(res, bucket, lock)) return true;
      if (!checksummed(req)) {
        refuseUnchecksummed(res, 'Put Object');
        return true;
      }
      afterSuccess(res, () => retention.set(id, lock));
      return false;
    }
    if (req.method === 'PUT' && q.has('uploadId') && q.has('partNumber') && pending.has(id) && !checksummed(req)) {
      refuseUnchecksummed(res, 'Upload Part');
      return true;
    }
    if (req.method === 'POST' && q.has('uploads')) {
      const lock = lockOf(req);
      if (!lock) return false;
      if (refuseLock(res, bucket, lock)) return true;
      pending.set(id, lock);
      return false;
    }
    if (req.method === 'POST' && q.has('uploadId')) {
      afterSuccess(res, () => {
        if (pending.has(id)) retention.set(id, pending.get(id));
        pending.delete(id);
      });
      return false;
    }
    if (req.method === 'DELETE' && !q.has('uploadId')) {
      if (active(bucket, key, req)) {
        sendError(res, 403, 'AccessDenied', 'Access Denied because object protected by object lock.');
        return true;
      }
      afterSuccess(res, () => retention.delete(id));
      return false;
    }
    return false;
  }

  return { handle };
};

/** What the store holds about S3 Object Lock: the bucket setting, and an object's retention. */
import { UserError } from './errors.js';
import type { LockMode, ObjectLockSetting } from './object-lock.js';
import { classifyS3, s3Reply, type ObjectStore } from './s3.js';

/**
 * Whether the bucket has Object Lock enabled: `denied` when the credentials may not read the setting
 * (s3:GetBucketObjectLockConfiguration), `unsupported` when the store does not implement it.
 */
export async function bucketObjectLock(store: ObjectStore): Promise<'enabled' | 'disabled' | 'denied' | 'unsupported'> {
  try {
    const { sdk, client } = await store.open();
    const out = await client.send(new sdk.GetObjectLockConfigurationCommand({ Bucket: store.bucket }));
    return out.ObjectLockConfiguration?.ObjectLockEnabled === 'Enabled' ? 'enabled' : 'disabled';
  } catch (e) {
    const reply = s3Reply(e);
    if (reply.code === 'ObjectLockConfigurationNotFoundError') return 'disabled';
    if (reply.code === 'NotImplemented' || reply.status === 501) return 'unsupported';
    const kind = classifyS3(reply);
    if (kind === 'permission') return 'denied';
    if (kind === 'no-bucket' || kind === 'fault' || kind === 'credentials') throw store.translate(e, '');
    // Other stores answer a call they lack in their own words (400 NotImplemented, MethodNotAllowed...).
    if (reply.status === 400 || reply.status === 405) return 'unsupported';
    throw store.translate(e, '');
  }
}

/**
 * Before a locked backup writes anything: the bucket must have Object Lock enabled, or S3 refuses every write
 * (and a backup of hours would fail at its first byte). The error names the bucket setting.
 */
export async function requireBucketObjectLock(store: ObjectStore, setting: ObjectLockSetting): Promise<void> {
  const state = await bucketObjectLock(store);
  if (state === 'enabled') return;
  const inputs = `\`object-lock-mode: ${setting.mode}\` and \`object-lock-days: ${setting.days}\``;
  const clear = 'or clear `object-lock-mode` and `object-lock-days`. Nothing was dumped.';
  if (state === 'disabled')
    throw new UserError(
      `Input \`object-lock-mode\`: bucket "${store.bucket}" does not have S3 Object Lock enabled (the bucket setting "Object Lock", ObjectLockEnabled = Enabled), which ${inputs} need. Enable it on the bucket (S3 console: Properties > Object Lock; an existing bucket needs versioning first; \`aws s3api put-object-lock-configuration --bucket ${store.bucket} --object-lock-configuration ObjectLockEnabled=Enabled\`), ${clear}`,
    );
  if (state === 'denied')
    throw new UserError(
      `Input \`object-lock-mode\`: the credentials may not read the Object Lock setting of bucket "${store.bucket}" (s3:GetBucketObjectLockConfiguration), so whether ${inputs} can be honoured is unknown. Allow s3:GetBucketObjectLockConfiguration on the bucket (and s3:PutObjectRetention on the objects), ${clear}`,
    );
  throw new UserError(
    `Input \`object-lock-mode\`: the store of bucket "${store.bucket}" does not implement S3 Object Lock (GetObjectLockConfiguration is not supported), so ${inputs} cannot be honoured. Use a store with Object Lock (AWS S3, MinIO, Backblaze B2, Wasabi, Ceph), ${clear}`,
  );
}

/** An object's retention as the store holds it (GetObjectRetention); undefined when it has none or is gone. */
export async function objectRetention(
  store: ObjectStore,
  key: string,
): Promise<{ mode: LockMode; retainUntil: Date } | undefined> {
  try {
    const { sdk, client } = await store.open();
    const out = await client.send(new sdk.GetObjectRetentionCommand({ Bucket: store.bucket, Key: key }));
    const r = out.Retention;
    if (!r?.Mode || !r.RetainUntilDate) return undefined;
    return { mode: r.Mode.toLowerCase() as LockMode, retainUntil: new Date(r.RetainUntilDate) };
  } catch (e) {
    const reply = s3Reply(e);
    if (reply.code === 'NoSuchObjectLockConfiguration' || reply.code === 'NoSuchKey') return undefined;
    if (classifyS3(reply) === 'permission')
      throw new UserError(
        `Reading the Object Lock retention of s3://${store.bucket}/${key} was denied (${reply.code ?? reply.status}): allow s3:GetObjectRetention on the bucket's objects, so that retention can tell locked backups from deletable ones.`,
        { cause: e, reply },
      );
    throw store.translate(e, key);
  }
}

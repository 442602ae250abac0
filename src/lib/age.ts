import { Decrypter, Encrypter } from 'age-encryption';
import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { inputError, UserError } from './errors.js';

const X25519_RECIPIENT = /^age1[02-9ac-hj-np-z]{58}$/;
const X25519_IDENTITY = /^AGE-SECRET-KEY-1[02-9AC-HJ-NP-Z]{58}$/;

/** Checks age X25519 recipients (`age1...`); the error names the input and the offending entry. */
export function parseRecipients(input: string, values: string[]): string[] {
  for (const r of values) {
    if (!X25519_RECIPIENT.test(r)) {
      const shown = r.startsWith('AGE-SECRET-KEY') ? 'an age identity (secret key)' : `"${r.slice(0, 70)}"`;
      throw inputError(
        input,
        `${shown} is not an age X25519 recipient`,
        'Give public keys that start with `age1` (62 characters), as printed by `age-keygen -y key.txt`; never put the secret key here.',
      );
    }
  }
  return values;
}

/** Checks age identities (`AGE-SECRET-KEY-1...`), one per line; comments as in age key files are skipped. */
export function parseIdentities(input: string, text: string): string[] {
  const ids = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  if (ids.length === 0)
    throw inputError(input, 'is empty', 'Pass the contents of the age key file (`AGE-SECRET-KEY-1...`).');
  for (const id of ids) {
    if (!X25519_IDENTITY.test(id)) {
      throw inputError(
        input,
        'does not hold an age X25519 identity',
        'Pass the contents of the age key file; the secret line starts with `AGE-SECRET-KEY-1`.',
      );
    }
  }
  return ids;
}

/** Encrypts a byte stream to the recipients in the age format while it streams. */
export async function encryptStream(source: Readable, recipients: string[]): Promise<Readable> {
  const e = new Encrypter();
  for (const r of recipients) e.addRecipient(r);
  const out = await e.encrypt(Readable.toWeb(source) as unknown as ReadableStream<Uint8Array>);
  return Readable.fromWeb(out as unknown as WebReadableStream<Uint8Array>);
}

export async function decryptStream(source: Readable, identities: string[]): Promise<Readable> {
  const d = new Decrypter();
  for (const id of identities) d.addIdentity(id);
  try {
    const out = await d.decrypt(Readable.toWeb(source) as unknown as ReadableStream<Uint8Array>);
    return Readable.fromWeb(out as unknown as WebReadableStream<Uint8Array>);
  } catch (e) {
    throw new UserError(
      `The age identity cannot decrypt this backup (${(e as Error).message}): check \`age-identity\` holds the secret key of one of the backup's recipients.`,
      { cause: e },
    );
  }
}

import { createCipheriv, hkdfSync } from 'node:crypto';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { inputError, UserError } from './errors.js';

const X25519_RECIPIENT = /^age1[02-9ac-hj-np-z]{58}$/;
const X25519_IDENTITY = /^AGE-SECRET-KEY-1[02-9AC-HJ-NP-Z]{58}$/;

/**
 * age-encryption (and its post-quantum ciphers) loads on first use: a backup without recipients, or a restore of
 * an unencrypted one, does not pay ~45 ms of start-up for it (the bundler puts it in a chunk of its own).
 */
const loadAge = () => import('age-encryption');

/** Checks age X25519 recipients (`age1...`); the error names the input and the offending entry. */
export function parseRecipients(input: string, values: string[]): string[] {
  for (const [i, r] of values.entries()) {
    if (!X25519_RECIPIENT.test(r)) {
      // A rejected value is never quoted back unless it is plainly a public key attempt: it may be a secret key
      // (quoted, lower-case), and the inputs already masked anything that looks like one.
      const shown = /secret|^["']/i.test(r)
        ? `entry ${i + 1}, an age identity (secret key),`
        : /^age1[0-9a-z]*$/.test(r) && r.length <= 70
          ? `"${r}"`
          : `entry ${i + 1}`;
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

/** age's STREAM payload: 64 KiB plaintext chunks, each sealed with ChaCha20-Poly1305 (age-encryption.org/v1). */
const CHUNK = 64 * 1024;

/** What the payload needs from the header stage: the bytes that precede it and the key that seals it. */
interface AgeHeader {
  headerAndNonce: Buffer;
  key: Buffer;
}

/**
 * The age payload, sealed with Node's native ChaCha20-Poly1305 (about ten times faster than the pure-JavaScript
 * cipher of `age-encryption`): bytes are copied into one 64 KiB plaintext buffer, so a caller may hand over views
 * of memory it reuses (src/lib/reused-read.ts), and each full chunk is sealed once the next byte arrives, so that
 * the final chunk is the one marked last (empty only for an empty input). The nonce is an 11-byte big-endian
 * chunk counter and the last-chunk flag.
 */
class PayloadSealer {
  private readonly plain = Buffer.allocUnsafeSlow(CHUNK);
  private fill = 0;
  private counter = 0n;

  constructor(private readonly key: Buffer) {}

  /** Takes `chunk` in (copied); returns the ciphertext and tags of the chunks it completed. */
  write(chunk: Uint8Array): Buffer[] {
    const out: Buffer[] = [];
    for (let at = 0; at < chunk.length;) {
      if (this.fill === CHUNK) out.push(...this.seal(false));
      const n = Math.min(CHUNK - this.fill, chunk.length - at);
      this.plain.set(chunk.subarray(at, at + n), this.fill);
      this.fill += n;
      at += n;
    }
    return out;
  }

  /** Seals what is left as the last chunk. */
  end(): Buffer[] {
    return this.seal(true);
  }

  private seal(last: boolean): Buffer[] {
    const nonce = Buffer.alloc(12);
    nonce.writeBigUInt64BE(this.counter & 0xffffffffffffffffn, 3);
    nonce.writeUInt8((Number(this.counter >> 64n) & 0xff) as number, 2);
    nonce[11] = last ? 1 : 0;
    this.counter++;
    const cipher = createCipheriv('chacha20-poly1305', this.key, nonce, { authTagLength: 16 });
    const sealed = cipher.update(this.plain.subarray(0, this.fill));
    cipher.final();
    this.fill = 0;
    return [sealed, cipher.getAuthTag()];
  }
}

/**
 * The payload as a stream. The header is made asynchronously while the stream already reads its source; it goes
 * out before the first chunk.
 */
class AgePayloadStream extends Transform {
  private sealer: PayloadSealer | undefined;

  constructor(private readonly header: Promise<AgeHeader>) {
    super();
    header.catch(() => undefined);
  }

  /** Calls `then` once the header went out, or fails the stream with the header's error. */
  private withSealer(cb: TransformCallback, then: (sealer: PayloadSealer) => void): void {
    if (this.sealer) return then(this.sealer);
    this.header.then(
      ({ headerAndNonce, key }) => {
        this.sealer = new PayloadSealer(key);
        this.push(headerAndNonce);
        then(this.sealer);
      },
      (e: Error) => cb(e),
    );
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.withSealer(cb, (sealer) => {
      for (const b of sealer.write(chunk)) this.push(b);
      cb();
    });
  }

  override _flush(cb: TransformCallback): void {
    this.withSealer(cb, (sealer) => {
      for (const b of sealer.end()) this.push(b);
      cb();
    });
  }
}

/**
 * The payload for a chunk iterator whose chunks may be views of reused memory (src/lib/reused-read.ts): the
 * header, then each sealed chunk's ciphertext and tag, each a buffer of its own.
 */
export async function* encryptChunks(source: AsyncIterable<Buffer>, recipients: string[]): AsyncGenerator<Buffer> {
  const header = makeHeader(recipients);
  header.catch(() => undefined); // awaited before the first byte goes out
  let sealer: PayloadSealer | undefined;
  for await (const chunk of source) {
    if (!sealer) {
      const { headerAndNonce, key } = await header;
      yield headerAndNonce;
      sealer = new PayloadSealer(key);
    }
    yield* sealer.write(chunk);
  }
  if (!sealer) {
    const { headerAndNonce, key } = await header;
    yield headerAndNonce;
    sealer = new PayloadSealer(key);
  }
  yield* sealer.end();
}

/**
 * `age-encryption` makes the header (file key wrapped for each X25519 recipient, header MAC) and the payload nonce,
 * by encrypting an empty input; a recipient of ours that wraps nothing sees the file key, from which the payload
 * key is derived as age specifies (HKDF-SHA256, salt = nonce, info "payload").
 */
async function makeHeader(recipients: string[]): Promise<AgeHeader> {
  const { Encrypter } = await loadAge();
  const e = new Encrypter();
  for (const r of recipients) e.addRecipient(r);
  let fileKey: Uint8Array | undefined;
  e.addRecipient({
    wrapFileKey(key: Uint8Array) {
      fileKey = key.slice();
      return [];
    },
  });
  const empty = await e.encrypt(new Uint8Array(0));
  // empty = header || 16-byte nonce || the sealed empty final chunk (a 16-byte tag).
  const headerAndNonce = Buffer.from(empty.subarray(0, empty.length - 16));
  const nonce = headerAndNonce.subarray(headerAndNonce.length - 16);
  if (!fileKey) throw new Error('age-encryption did not hand the file key to the recipients');
  return { headerAndNonce, key: Buffer.from(hkdfSync('sha256', fileKey, nonce, 'payload', 32)) };
}

/**
 * Encrypts a byte stream to the recipients in the age format while it streams; the payload is sealed natively
 * (AgePayloadStream). The source is read from the moment this returns, with no await in between: a child's stdout
 * that nobody reads when the child exits is drained by Node into nothing, so a short dump (pre-data) whose zstd
 * exited while the header was still being made would lose its tail.
 */
export function encryptStream(source: Readable, recipients: string[]): Readable {
  const payload = new AgePayloadStream(makeHeader(recipients));
  source.on('error', (err) => payload.destroy(err));
  return source.pipe(payload);
}

export async function decryptStream(source: Readable, identities: string[]): Promise<Readable> {
  const { Decrypter } = await loadAge();
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

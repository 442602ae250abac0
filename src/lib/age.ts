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
 * Seals the payload with Node's native ChaCha20-Poly1305, about ten times faster than the pure-JavaScript cipher of
 * `age-encryption`. The nonce is an 11-byte big-endian chunk counter and a last-chunk flag; a chunk is held back
 * until the next byte arrives, so that the final chunk is the one marked last (empty only for an empty input).
 * The header is made asynchronously while the stream already reads its source; it goes out before the first chunk.
 */
class AgePayloadStream extends Transform {
  /** The source's chunks not sealed yet, as they came (never concatenated: the cipher takes them one by one). */
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private counter = 0n;
  private key: Buffer | undefined;

  constructor(private readonly header: Promise<AgeHeader>) {
    super();
    header.catch(() => undefined);
  }

  /** Calls `then` once the header went out, or fails the stream with the header's error. */
  private withKey(cb: TransformCallback, then: (key: Buffer) => void): void {
    if (this.key) return then(this.key);
    this.header.then(
      ({ headerAndNonce, key }) => {
        this.key = key;
        this.push(headerAndNonce);
        then(key);
      },
      (e: Error) => cb(e),
    );
  }

  /** Seals the next `n` pending bytes as one chunk and pushes its ciphertext, piece by piece, then its tag. */
  private sealChunk(key: Buffer, n: number, last: boolean): void {
    const cipher = chunkCipher(key, this.counter++, last);
    for (let left = n; left > 0;) {
      const piece = this.pending[0]!;
      const take = Math.min(left, piece.length);
      this.push(cipher.update(take === piece.length ? piece : piece.subarray(0, take)));
      if (take === piece.length) this.pending.shift();
      else this.pending[0] = piece.subarray(take);
      left -= take;
    }
    this.pendingBytes -= n;
    cipher.final();
    this.push(cipher.getAuthTag());
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    this.withKey(cb, (key) => {
      // Strictly more than a chunk: a full chunk stays pending until we know whether it is the last one.
      while (this.pendingBytes > CHUNK) this.sealChunk(key, CHUNK, false);
      cb();
    });
  }

  override _flush(cb: TransformCallback): void {
    this.withKey(cb, (key) => {
      this.sealChunk(key, this.pendingBytes, true);
      cb();
    });
  }
}

/** The cipher of payload chunk number `counter`: its nonce is the 11-byte big-endian counter and the last flag. */
function chunkCipher(key: Buffer, counter: bigint, last: boolean) {
  const nonce = Buffer.alloc(12);
  nonce.writeBigUInt64BE(counter & 0xffffffffffffffffn, 3);
  nonce.writeUInt8((Number(counter >> 64n) & 0xff) as number, 2);
  nonce[11] = last ? 1 : 0;
  return createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: 16 });
}

/**
 * encryptStream for a chunk iterator whose chunks may be views of reused memory (src/lib/reused-read.ts): each is
 * copied into one 64 KiB plaintext buffer before the next is asked for, and a chunk is sealed once full (and held
 * back until the next byte arrives, so that the final chunk is the one marked last). Yields the header, then each
 * chunk's ciphertext and tag, each a buffer of its own.
 */
export async function* encryptChunks(source: AsyncIterable<Buffer>, recipients: string[]): AsyncGenerator<Buffer> {
  const header = makeHeader(recipients);
  header.catch(() => undefined); // awaited before the first byte goes out
  const plain = Buffer.allocUnsafeSlow(CHUNK);
  let fill = 0;
  let counter = 0n;
  let key: Buffer | undefined;
  const seal = (k: Buffer, last: boolean): Buffer[] => {
    const cipher = chunkCipher(k, counter++, last);
    const sealed = cipher.update(plain.subarray(0, fill));
    cipher.final();
    fill = 0;
    return [sealed, cipher.getAuthTag()];
  };
  for await (const chunk of source) {
    if (!key) {
      const h = await header;
      key = h.key;
      yield h.headerAndNonce;
    }
    for (let at = 0; at < chunk.length;) {
      if (fill === CHUNK) yield* seal(key, false);
      const n = chunk.copy(plain, fill, at);
      fill += n;
      at += n;
    }
  }
  if (!key) {
    const h = await header;
    key = h.key;
    yield h.headerAndNonce;
  }
  yield* seal(key, true);
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

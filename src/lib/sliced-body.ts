/**
 * The SDK's Node handler writes a buffer body with one `request.end(body)`. Over https, Node's TLS layer then
 * encrypts the whole body at once into memory of its own, outside the part buffer: up to a part's size more per
 * request in flight (docs/PERFORMANCE.md measured +36 MB with four 8 MiB parts in flight). Writing the same bytes
 * in slices, with the socket's backpressure, keeps that to a few slices per connection, and costs nothing over
 * plain http.
 *
 * The swap happens per attempt, after signing and the checksums have seen the buffer (they hash it, and the retry
 * policy still sees a buffer body, which it may send again), and just before the request reaches the handler. Each
 * attempt gets a stream of its own over the same buffer: nothing is copied.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { Readable } from 'node:stream';

/** The slice written to the socket at a time (measured best of 16 KiB to 1 MiB, docs/PERFORMANCE.md). */
export const BODY_SLICE_BYTES = 256 << 10;

/** Views of `body` in order, each at most `size` bytes long, covering it exactly (pure; no copy). */
export function* bodySlices(body: Uint8Array, size = BODY_SLICE_BYTES): Generator<Buffer> {
  for (let at = 0; at < body.byteLength; at += size)
    yield Buffer.from(body.buffer, body.byteOffset + at, Math.min(size, body.byteLength - at));
}

/**
 * `request` itself when its body is not a buffer larger than one slice; else a shallow copy (same prototype, same
 * fields) whose body is a stream of the buffer's slices. `request` is never changed.
 */
export function withSlicedBody<R extends { body?: unknown }>(request: R): R {
  const body = request.body;
  if (!(body instanceof Uint8Array) || body.byteLength <= BODY_SLICE_BYTES) return request;
  const copy = Object.assign(Object.create(Object.getPrototypeOf(request) as object) as R, request);
  copy.body = Readable.from(bodySlices(body));
  return copy;
}

export function writeBodiesInSlices(client: S3Client): void {
  client.middlewareStack.add(
    (next) => (args) => next({ ...args, request: withSlicedBody(args.request as { body?: unknown }) }),
    // The last step before the handler, inside the retry loop (finalizeRequest): once per attempt.
    { step: 'deserialize', priority: 'low', name: 'pbaWriteBodiesInSlices' },
  );
}

/**
 * Neon's pooled endpoints (PgBouncer in transaction mode) have `-pooler` at the end of the host's first label:
 * `ep-cool-darkness-123456-pooler.us-east-2.aws.neon.tech`. Neon's docs say never to run pg_dump through one
 * (session state such as the exported snapshot does not survive transaction pooling). The direct endpoint is the
 * same name without `-pooler`. Returns it, or undefined when `host` is not a Neon pooled endpoint.
 */
export function neonDirectHost(host: string): string | undefined {
  const labels = host.toLowerCase().replace(/\.$/, '').split('.');
  const isNeon = labels.length >= 3 && labels.at(-2) === 'neon' && labels.at(-1) === 'tech';
  const first = labels[0]!;
  if (!isNeon || !first.endsWith('-pooler') || first === '-pooler') return undefined;
  return [first.slice(0, -'-pooler'.length), ...labels.slice(1)].join('.');
}

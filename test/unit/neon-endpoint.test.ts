import { neonDirectHost } from '../../src/lib/neon-endpoint.js';

describe('neonDirectHost: Neon pooled endpoint -> direct endpoint', () => {
  test.each<[string, string | undefined]>([
    ['ep-cool-darkness-123456-pooler.us-east-2.aws.neon.tech', 'ep-cool-darkness-123456.us-east-2.aws.neon.tech'],
    ['ep-cool-darkness-123456-pooler.eu-central-1.aws.neon.tech', 'ep-cool-darkness-123456.eu-central-1.aws.neon.tech'],
    ['ep-quiet-sun-a1b2c3d4-pooler.westus3.azure.neon.tech', 'ep-quiet-sun-a1b2c3d4.westus3.azure.neon.tech'],
    ['EP-Cool-Darkness-123456-POOLER.US-East-2.AWS.Neon.Tech', 'ep-cool-darkness-123456.us-east-2.aws.neon.tech'],
    ['ep-cool-darkness-123456-pooler.us-east-2.aws.neon.tech.', 'ep-cool-darkness-123456.us-east-2.aws.neon.tech'],
    // Already direct, or not Neon: unchanged.
    ['ep-cool-darkness-123456.us-east-2.aws.neon.tech', undefined],
    ['db-pooler.example.com', undefined],
    ['ep-x-pooler.neon.tech.example.com', undefined],
    ['ep-x-pooler.notneon.tech', undefined],
    ['ep-x.us-east-2-pooler.aws.neon.tech', undefined], // -pooler not in the first label
    ['ep-pooler-x.us-east-2.aws.neon.tech', undefined], // "pooler" not at the end of the first label
    ['-pooler.us-east-2.aws.neon.tech', undefined],
    ['neon.tech', undefined],
    ['127.0.0.1', undefined],
    ['::1', undefined],
  ])('%s -> %s', (host, direct) => {
    expect(neonDirectHost(host)).toBe(direct);
  });
});

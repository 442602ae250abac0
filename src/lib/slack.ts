import type { Logger } from './log.js';

/** Where a one-line notice about a failing or recovered stream goes; the issue stays the record either way. */
export interface Notifier {
  notify(text: string): Promise<void>;
}

/** A Slack incoming webhook. A failure to deliver only warns: the alert's record is the GitHub issue. */
export class SlackWebhook implements Notifier {
  constructor(
    private readonly url: string,
    private readonly log: Logger,
  ) {}

  async notify(text: string): Promise<void> {
    try {
      const r = await fetch(this.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ text }),
        signal: AbortSignal.timeout(10_000),
      });
      if (!r.ok) this.log.warn(`Slack webhook answered ${r.status}; the issue is up to date regardless.`);
    } catch (e) {
      this.log.warn(`Slack webhook failed (${(e as Error).message}); the issue is up to date regardless.`);
    }
  }
}

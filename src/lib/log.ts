/**
 * The one logger. Actions get a logger backed by @actions/core (masking via setSecret, groups, summary);
 * the CLI gets a console logger that masks registered secrets itself, since there is no runner to do it.
 */
export interface Logger {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
  debug(message: string): void;
  /** Registers a value that must never be printed. Call it the moment a secret is read. */
  secret(value: string): void;
  group<T>(title: string, fn: () => Promise<T>): Promise<T>;
}

export class ConsoleLogger implements Logger {
  private readonly secrets = new Set<string>();
  constructor(
    private readonly write: (line: string) => void = (line) => process.stderr.write(line + '\n'),
    private readonly verbose = false,
  ) {}
  secret(value: string): void {
    if (value) this.secrets.add(value);
  }
  mask(text: string): string {
    let out = text;
    // Longest first, so that a URL is masked whole before the password inside it.
    for (const s of [...this.secrets].sort((a, b) => b.length - a.length)) out = out.split(s).join('***');
    return out;
  }
  info(message: string): void {
    this.write(this.mask(message));
  }
  warn(message: string): void {
    this.write(this.mask(`warning: ${message}`));
  }
  error(message: string): void {
    this.write(this.mask(`error: ${message}`));
  }
  debug(message: string): void {
    if (this.verbose) this.write(this.mask(`debug: ${message}`));
  }
  async group<T>(title: string, fn: () => Promise<T>): Promise<T> {
    this.info(title);
    return fn();
  }
}

/** A logger that records lines; for tests and for collecting the tail of a child's stderr. */
export class MemoryLogger extends ConsoleLogger {
  readonly lines: string[] = [];
  constructor() {
    super((line) => this.lines.push(line));
  }
}

export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = bytes;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
}

export function formatSeconds(seconds: number): string {
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const m = Math.floor(seconds / 60);
  const s = Math.round(seconds - m * 60);
  if (m < 60) return `${m} min ${s} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

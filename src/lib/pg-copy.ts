import type pg from 'pg';

/** The parts of node-postgres' connection a COPY needs (the protocol messages, and the socket for backpressure). */
interface CopyConnection {
  query(text: string): void;
  sendCopyFromChunk(chunk: Buffer): void;
  endCopyFrom(): void;
  sendCopyFail(message: string): void;
  stream: NodeJS.ReadWriteStream & { writableNeedDrain?: boolean };
}

/** The message handlers node-postgres calls on the active query; those a COPY does not expect do nothing. */
abstract class CopyQuery {
  constructor(readonly text: string) {}
  submit(connection: CopyConnection): void {
    connection.query(this.text);
  }
  handleRowDescription(): void {}
  handleDataRow(): void {}
  handleEmptyQuery(): void {}
  handlePortalSuspended(): void {}
  handleCommandComplete(_msg: { text?: string }): void {}
  handleCopyInResponse(connection: CopyConnection): void {
    connection.sendCopyFail('unexpected COPY FROM STDIN');
  }
  handleCopyData(_msg: { chunk: Buffer }): void {}
  abstract handleError(err: Error): void;
  abstract handleReadyForQuery(): void;
}

/**
 * Streams `COPY (...) TO STDOUT` on `source` into `COPY ... FROM STDIN` on `sink`, chunk by chunk, pausing the
 * source while the sink's socket is full. node-postgres has no COPY of its own; these are its "submittable"
 * queries, the hook pg-copy-streams uses. Resolves with the rows the sink stored. The sink's session (and its
 * transaction) is untouched otherwise, so the copied rows commit or roll back with everything else done there.
 */
export function copyBetween(source: pg.Client, copyOut: string, sink: pg.Client, copyIn: string): Promise<number> {
  return new Promise((resolve, reject) => {
    let sinkConnection: CopyConnection | undefined;
    let sourceError: Error | undefined;
    let settled = false;
    let rows = 0;
    const fail = (e: Error) => {
      if (settled) return;
      settled = true;
      reject(e);
    };

    class SourceQuery extends CopyQuery {
      override handleCopyData(msg: { chunk: Buffer }): void {
        if (settled || !sinkConnection) return;
        sinkConnection.sendCopyFromChunk(msg.chunk);
        if (sinkConnection.stream.writableNeedDrain) {
          const sourceSocket = (source as unknown as { connection: CopyConnection }).connection.stream;
          sourceSocket.pause();
          sinkConnection.stream.once('drain', () => sourceSocket.resume());
        }
      }
      handleError(err: Error): void {
        sourceError = err;
        if (!settled) sinkConnection?.sendCopyFail('the source of the copy failed');
        fail(err);
      }
      handleReadyForQuery(): void {
        if (!sourceError && !settled) sinkConnection?.endCopyFrom();
      }
    }

    class SinkQuery extends CopyQuery {
      override handleCopyInResponse(connection: CopyConnection): void {
        sinkConnection = connection;
        source.query(new SourceQuery(copyOut));
      }
      override handleCommandComplete(msg: { text?: string }): void {
        rows = Number(/^COPY (\d+)/.exec(msg.text ?? '')?.[1] ?? 0);
      }
      handleError(err: Error): void {
        fail(sourceError ?? err);
      }
      handleReadyForQuery(): void {
        if (settled) return;
        settled = true;
        resolve(rows);
      }
    }

    sink.query(new SinkQuery(copyIn));
  });
}

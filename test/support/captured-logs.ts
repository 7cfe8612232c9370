import { Writable } from 'node:stream';

/** Every line a stack logs, as written (JSON text), kept in memory: a `logDestination` for tests that read logs. */
export class CapturedLogs extends Writable {
  text = '';
  override _write(chunk: Buffer, _enc: BufferEncoding, done: () => void): void {
    this.text += chunk.toString('utf8');
    done();
  }
  lines(): Record<string, any>[] {
    return this.text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, any>);
  }
}

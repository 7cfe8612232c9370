import { createInterface } from 'node:readline/promises';

/** Where a command writes and what it may ask: the real process, or a test's stand-in. */
export interface Terminal {
  out(text: string): void;
  err(text: string): void;
  env: NodeJS.ProcessEnv;
  /** Whether a person is at the keyboard (stdin is a TTY): only then does the CLI ask questions. */
  interactive: boolean;
  ask(question: string): Promise<string>;
}

export function processTerminal(): Terminal {
  return {
    out: (text) => process.stdout.write(`${text}\n`),
    err: (text) => process.stderr.write(`${text}\n`),
    env: process.env,
    interactive: Boolean(process.stdin.isTTY),
    async ask(question) {
      const rl = createInterface({ input: process.stdin, output: process.stderr });
      try {
        return await rl.question(question);
      } finally {
        rl.close();
      }
    },
  };
}

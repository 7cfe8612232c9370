/**
 * A transaction-mode client's startup parameters (application_name,
 * client_encoding, DateStyle, TimeZone, `options=-c name=value` …) travel with
 * it: server connections are shared, so before a checkout whose server was last
 * set up for different values, the gateway sets the client's values there
 * (PgBouncer's varcache, for every parameter, not a fixed few).
 */
export class ClientParams {
  /** Lower-cased name → value. */
  readonly values = new Map<string, string>();
  #signature: string | null = null;

  /** The parameters a client asked for at startup; `options` contributes its `-c name=value` and `--name=value`. */
  static fromStartup(params: Map<string, string>, options: string | null): ClientParams {
    const p = new ClientParams();
    for (const [k, v] of params) {
      if (k === 'user' || k === 'database' || k === 'options' || k === 'replication') continue;
      p.values.set(k.toLowerCase(), v);
    }
    for (const [k, v] of optionSettings(options ?? '')) p.values.set(k.toLowerCase(), v);
    return p;
  }

  set(name: string, value: string): void {
    const k = name.toLowerCase();
    if (this.values.get(k) === value) return;
    this.values.set(k, value);
    this.#signature = null;
  }

  /** One string for the whole set: equal strings, equal settings (the common, free case). */
  get signature(): string {
    this.#signature ??= interned([...this.values].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([k, v]) => `${k}=${v}`).join('\0'));
    return this.#signature;
  }
}

/** Signatures in use, each held once: clients with the same settings share one string, so comparing them at each checkout is one pointer compare, not a walk over ~100 characters. */
const signatures = new Map<string, string>();
const SIGNATURES_MAX = 4096;

function interned(signature: string): string {
  const known = signatures.get(signature);
  if (known !== undefined) return known;
  if (signatures.size >= SIGNATURES_MAX) signatures.clear();
  signatures.set(signature, signature);
  return signature;
}

/** What a server connection was last set to on the clients' behalf. */
export class ServerParams {
  readonly applied = new Map<string, string>();
  signature = '';

  /** The SQL that turns this server's settings into `want`'s, or null when they already match. */
  changesFor(want: ClientParams): string | null {
    if (this.signature === want.signature) return null;
    const statements: string[] = [];
    const sets: string[] = [];
    for (const [k, v] of want.values) if (this.applied.get(k) !== v) sets.push(`pg_catalog.set_config(${literal(k)}, ${literal(v)}, false)`);
    if (sets.length > 0) statements.push(`SELECT ${sets.join(', ')}`);
    for (const k of this.applied.keys()) if (!want.values.has(k)) statements.push(`RESET ${identifier(k)}`);
    this.applied.clear();
    for (const [k, v] of want.values) this.applied.set(k, v);
    this.signature = want.signature;
    return statements.length > 0 ? statements.join('; ') : null;
  }

  /** The client itself changed `name` (a SET seen as ParameterStatus): the server now holds its value. */
  follow(name: string, value: string, clientSignature: string): void {
    this.applied.set(name.toLowerCase(), value);
    this.signature = clientSignature;
  }

  /** RESET ALL ran: nothing the gateway set remains. */
  forget(): void {
    this.applied.clear();
    this.signature = '';
  }
}

/** `-c name=value`, `-cname=value` and `--name=value` pairs of a startup `options` string (backslash escapes spaces). */
export function optionSettings(options: string): [string, string][] {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  for (let i = 0; i < options.length; i++) {
    const c = options[i]!;
    if (c === '\\' && i + 1 < options.length) {
      word += options[++i];
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
    } else {
      word += c;
      inWord = true;
    }
  }
  if (inWord) words.push(word);
  const out: [string, string][] = [];
  for (let i = 0; i < words.length; i++) {
    let w = words[i]!;
    if (w === '-c' && i + 1 < words.length) w = words[++i]!;
    else if (w.startsWith('-c')) w = w.slice(2);
    else if (w.startsWith('--')) w = w.slice(2);
    else continue;
    const eq = w.indexOf('=');
    if (eq > 0) out.push([w.slice(0, eq).replace(/-/g, '_'), w.slice(eq + 1)]);
  }
  return out;
}

export function literal(s: string): string {
  return `'${s.replace(/'/g, "''")}'`;
}

export function identifier(s: string): string {
  return `"${s.replace(/"/g, '""')}"`;
}

/**
 * The pool's startup ParameterStatus messages as this client should see them:
 * its own values for what it asked for (the gateway sets those per checkout).
 */
export function welcomeFor(welcome: Buffer[], params: ClientParams): Buffer[] {
  return welcome.map((m) => {
    const nameEnd = m.indexOf(0, 5);
    const name = m.toString('utf8', 5, nameEnd);
    const mine = params.values.get(name.toLowerCase());
    if (mine === undefined || name.toLowerCase() === 'client_encoding') return m;
    const body = Buffer.from(`${name}\0${mine}\0`, 'utf8');
    const out = Buffer.allocUnsafe(5 + body.length);
    out[0] = 0x53; // 'S'
    out.writeInt32BE(4 + body.length, 1);
    body.copy(out, 5);
    return out;
  });
}

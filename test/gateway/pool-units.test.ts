import { describe, expect, it } from 'vitest';
import { ServerStatements, readBind, renamed, serverNameOf, readParse } from '../../gateway/pool/prepared-statements.js';
import { ACTION, REQ, RequestQueue } from '../../gateway/pool/request-queue.js';
import { dropsAllStatements, DROPS_ALL_STATEMENTS, leavesSessionState, LEAVES_SESSION_STATE, mayTouchSession, parsedLeavesSessionState, UnnamedParseVerdicts } from '../../gateway/pool/server-reset.js';
import { ClientParams, optionSettings, ServerParams } from '../../gateway/pool/startup-params.js';
import { MessageFramer, type FrameSink } from '../../gateway/wire/framer.js';

/** The pool's pure parts: what the end-to-end tests cannot pin down case by case. */

function msg(type: string, body: Buffer | string): Buffer {
  const b = typeof body === 'string' ? Buffer.from(body) : body;
  const head = Buffer.alloc(5);
  head.write(type, 0, 'latin1');
  head.writeInt32BE(4 + b.length, 1);
  return Buffer.concat([head, b]);
}

describe('message framer', () => {
  const stream = Buffer.concat([msg('Q', 'select 1\0'), msg('S', ''), msg('d', Buffer.alloc(7_000, 7)), msg('P', 'n\0select 2\0\0\0'), msg('X', '')]);

  function frame(chunks: Buffer[], wantsWhole: (t: number) => boolean) {
    const seen: { type: string; bytes: Buffer }[] = [];
    let streaming: { type: string; parts: Buffer[] } | null = null;
    const sink: FrameSink = {
      message: (type, buf, s, e) => {
        seen.push({ type: String.fromCharCode(type), bytes: Buffer.from(buf.subarray(s, e)) });
        return true;
      },
      streamStart: (type) => {
        streaming = { type: String.fromCharCode(type), parts: [] };
        seen.push({ type: streaming.type, bytes: Buffer.alloc(0) });
        return true;
      },
      streamBytes: (buf, s, e) => {
        const last = seen[seen.length - 1]!;
        last.bytes = Buffer.concat([last.bytes, buf.subarray(s, e)]);
      },
    };
    const f = new MessageFramer(sink, wantsWhole);
    for (const c of chunks) expect(f.push(c)).toBeNull();
    expect(f.atBoundary).toBe(true);
    return seen;
  }

  it('cuts the same messages whatever the chunking, assembling or streaming the split ones', () => {
    const whole = frame([stream], () => true);
    expect(whole.map((m) => m.type)).toEqual(['Q', 'S', 'd', 'P', 'X']);
    for (const size of [1, 2, 3, 5, 7, 4096]) {
      const chunks: Buffer[] = [];
      for (let i = 0; i < stream.length; i += size) chunks.push(stream.subarray(i, i + size));
      for (const wants of [() => true, (t: number) => t !== 0x64]) {
        const got = frame(chunks, wants);
        expect(got.map((m) => m.type)).toEqual(['Q', 'S', 'd', 'P', 'X']);
        got.forEach((m, i) => expect(m.bytes.equals(whole[i]!.bytes)).toBe(true));
      }
    }
  });

  it('hands back what the sink stopped before, and refuses a length under 4', () => {
    const f = new MessageFramer({ message: (t) => t !== 0x53, streamStart: () => true, streamBytes: () => undefined }, () => true);
    const rest = f.push(stream);
    expect(rest!.equals(stream.subarray(msg('Q', 'select 1\0').length))).toBe(true);
    const bad = new MessageFramer({ message: () => true, streamStart: () => true, streamBytes: () => undefined }, () => true);
    expect(() => bad.push(Buffer.from([0x51, 0, 0, 0, 2]))).toThrow(/invalid message length/);
  });
});

describe('request queue', () => {
  it('keeps order across growth and counts what ends with ReadyForQuery', () => {
    const q = new RequestQueue();
    for (let i = 0; i < 40; i++) q.push(i % 2 ? REQ.sync : REQ.parse, i % 3 === 0 ? ACTION.fake : ACTION.forward, `s${i}`);
    expect(q.size).toBe(40);
    expect(q.syncs).toBe(20);
    for (let i = 0; i < 40; i++) {
      expect(q.headKind).toBe(i % 2 ? REQ.sync : REQ.parse);
      expect(q.headAction).toBe(i % 3 === 0 ? ACTION.fake : ACTION.forward);
      expect(q.headName).toBe(`s${i}`);
      q.shift();
    }
    expect(q.empty).toBe(true);
    expect(q.syncs).toBe(0);
  });
});

describe('prepared statements', () => {
  it('names a statement by its content, renames Bind, and evicts the least recently used', () => {
    const a = msg('P', 'mine\0select $1\0\0\x01\0\0\0\x17');
    const b = msg('P', 'other\0select $1\0\0\x01\0\0\0\x17');
    const c = msg('P', 'mine\0select $1\0\0\x01\0\0\0\x19');
    const name = (m: Buffer) => serverNameOf(m, readParse(m, 0, m.length).contentStart, m.length);
    expect(name(a)).toBe(name(b)); // same text and types, different client names: one server statement
    expect(name(a)).not.toBe(name(c)); // other parameter types: another
    const bind = msg('B', 'portal\0mine\0rest');
    const r = readBind(bind, 0, bind.length);
    expect(r.statement).toBe('mine');
    const out = renamed(bind, 0, bind.length, r.statementStart, r.statementEnd, 'pgw_x');
    expect(out.toString('latin1', 5)).toBe('portal\0pgw_x\0rest');
    expect(out.readInt32BE(1)).toBe(out.length - 1);

    const lru = new ServerStatements(2);
    expect(lru.add('a')).toEqual([]);
    expect(lru.add('b')).toEqual([]);
    lru.touch('a');
    expect(lru.add('c')).toEqual(['b']);
    expect(lru.has('a') && lru.has('c') && !lru.has('b')).toBe(true);
  });
});

describe('session state and parameters', () => {
  it('sees what may leave session state behind, and only that', () => {
    for (const sql of ['SET work_mem = 1', 'begin; set x.y = 1; commit', 'LISTEN a', 'reset all', 'select pg_advisory_lock(1)', 'create temp table t(i int)', 'prepare p as select 1', 'declare c cursor with hold for select 1', "select set_config('a', 'b', false)"]) {
      expect(leavesSessionState(sql), sql).toBe(true);
      // A Parse's text: the same answer, the first time and remembered.
      expect([parsedLeavesSessionState(sql), parsedLeavesSessionState(sql)], sql).toEqual([true, true]);
    }
    for (const sql of ['select 1', 'SELECT abalance FROM pgbench_accounts WHERE aid = 5;', 'set local work_mem = 1', 'SET TRANSACTION ISOLATION LEVEL SERIALIZABLE', 'update t set a = 1', 'select pg_advisory_xact_lock(1)']) {
      expect(leavesSessionState(sql), sql).toBe(false);
      expect([parsedLeavesSessionState(sql), parsedLeavesSessionState(sql)], sql).toEqual([false, false]);
    }
    expect(dropsAllStatements(' DISCARD ALL;')).toBe(true);
    expect(dropsAllStatements('deallocate prepare all')).toBe(true);
    expect(dropsAllStatements('deallocate foo')).toBe(false);
  });

  it('skips the regular expressions only for text that cannot match them', () => {
    const bytes = (sql: string) => {
      const b = Buffer.from(`Q....${sql}\0`);
      return [b, 5, b.length - 1] as const;
    };
    for (const sql of ['SET work_mem = 1', 'ReSeT all', 'listen a', 'DECLARE c CURSOR', 'prepare p as select 1', "LOAD 'x'", 'lock t', 'select pg_try_advisory_lock(1)', "select set_config('a','b',false)", 'create TEMPORARY table t()', 'discard all', 'DEALLOCATE ALL']) {
      expect(mayTouchSession(...bytes(sql)), sql).toBe(true);
    }
    for (const sql of ['SELECT abalance FROM pgbench_accounts WHERE aid = 5;', 'select 1', 'BEGIN', 'COMMIT', 'INSERT INTO h (a) VALUES (1)']) {
      expect(mayTouchSession(...bytes(sql)), sql).toBe(false);
    }
    // A candidate the regular expression then clears.
    expect(mayTouchSession(...bytes('UPDATE t SET a = 1'))).toBe(true);
    expect(leavesSessionState('UPDATE t SET a = 1')).toBe(false);
    // Never a miss: wherever either expression matches, the scan says so too (random text around the words, any case).
    const parts = ['set', 'reset', 'listen', 'declare', 'prepare', 'load', 'lock', 'discard all', 'deallocate all', 'temp', 'temporary', 'pg_advisory_lock(1)', 'set_config', 'select', ' ', ';', '(', 'a', 'x_1', 'é', '\n', 'local', 'all', 'transaction'];
    let seed = 7;
    const next = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31);
    let matched = 0;
    for (let n = 0; n < 5_000; n++) {
      let sql = '';
      for (let k = next() % 6; k >= 0; k--) {
        const part = parts[next() % parts.length]!;
        sql += next() % 2 ? part.toUpperCase() : part;
      }
      if (leavesSessionState(sql) || dropsAllStatements(sql)) {
        matched++;
        expect(mayTouchSession(...bytes(sql)), sql).toBe(true);
      }
    }
    expect(matched).toBeGreaterThan(1_000);
  });

  it("judges a client's unnamed Parse by its bytes: the last text's verdict is reused only for the same bytes", () => {
    const verdicts = new UnnamedParseVerdicts();
    // A Parse's content after its empty name: query, terminator, parameter type count (0), in a larger chunk.
    const content = (sql: string) => Buffer.concat([Buffer.from('junk'), Buffer.from(sql + '\0'), Buffer.from([0, 0]), Buffer.from('more')]);
    const of = (sql: string) => {
      const b = content(sql);
      return verdicts.of(b, 4, b.length - 4);
    };
    expect(of('select 1')).toBe(0);
    expect(of('select 1')).toBe(0);
    // Same length, other bytes: judged afresh, not taken from the last text.
    expect(of('set x=1;')).toBe(LEAVES_SESSION_STATE);
    expect(of('select 2')).toBe(0);
    expect(of('DISCARD ALL')).toBe(LEAVES_SESSION_STATE | DROPS_ALL_STATEMENTS);
    expect(of('select 3 from pgbench_accounts where aid = $1'.padEnd(400, ' '))).toBe(0);
    expect(of('select 3 from pgbench_accounts where aid = $1'.padEnd(399, ' ') + ';')).toBe(0);
    expect(of('listen x; -- '.padEnd(400, ' '))).toBe(LEAVES_SESSION_STATE);
    // No terminator within the message: malformed.
    const bad = Buffer.from('select 1');
    expect(() => verdicts.of(bad, 0, bad.length)).toThrow(/malformed Parse/);
  });

  it('reads options the way Postgres does, and sets on a server only what differs', () => {
    expect(optionSettings('-c statement_timeout=5s --search-path=a\\ b -cwork_mem=8MB -x')).toEqual([
      ['statement_timeout', '5s'],
      ['search_path', 'a b'],
      ['work_mem', '8MB'],
    ]);
    const server = new ServerParams();
    const a = ClientParams.fromStartup(new Map([['user', 'u'], ['application_name', "it's"]]), '-c TimeZone=UTC');
    expect(server.changesFor(a)).toBe("SELECT pg_catalog.set_config('application_name', 'it''s', false), pg_catalog.set_config('timezone', 'UTC', false)");
    expect(server.changesFor(a)).toBeNull();
    const b = ClientParams.fromStartup(new Map([['application_name', 'b']]), null);
    expect(server.changesFor(b)).toBe(`SELECT pg_catalog.set_config('application_name', 'b', false); RESET "timezone"`);
  });
});

import { createHash, X509Certificate } from 'node:crypto';
import { PassThrough } from 'node:stream';
import { generate } from 'selfsigned';
import { describe, expect, it } from 'vitest';
import { parseClientFinal, parseClientFirst, SCRAM_SHA_256, SCRAM_SHA_256_PLUS } from '../../gateway/auth/scram.js';
import { ScramClientKeyCache } from '../../gateway/auth/scram-client.js';
import { CancelKeys } from '../../gateway/cancellation.js';
import { ClientGone, GatewayError } from '../../gateway/errors.js';
import { parseStartupParameters } from '../../gateway/handshake.js';
import { endpointFromSni, routeRequestOf, takeEndpointOption } from '../../gateway/route.js';
import { serverEndPointHash } from '../../gateway/tls.js';
import { PacketReader } from '../../gateway/wire/packet-reader.js';
import { deriveScramKeys } from '../../core/index.js';

const params = (s: string) => Buffer.from(s, 'utf8');

describe('startup parameters', () => {
  it('reads name/value pairs up to the terminator', () => {
    const p = parseStartupParameters(params('user\0alice\0database\0app\0application_name\0psql\0\0'));
    expect(Object.fromEntries(p)).toEqual({ user: 'alice', database: 'app', application_name: 'psql' });
  });

  it.each([
    ['no terminator', 'user\0alice\0'],
    ['a name without a value', 'user\0'],
    ['an unterminated string', 'user\0ali'],
    ['bytes after the terminator', 'user\0alice\0\0junk'],
  ])('refuses %s with 08P01', (_name, body) => {
    expect(() => parseStartupParameters(params(body))).toThrow(GatewayError);
    try {
      parseStartupParameters(params(body));
    } catch (err) {
      expect((err as GatewayError).sqlstate).toBe('08P01');
    }
  });
});

describe('routing request', () => {
  it('defaults the database to the user name and requires a user', () => {
    expect(routeRequestOf(new Map([['user', 'bob']]), null, 'localhost')).toMatchObject({ user: 'bob', database: 'bob', endpoint: null, computeOptions: null });
    expect(() => routeRequestOf(new Map(), null, 'localhost')).toThrow(/no PostgreSQL user name/);
  });

  it('takes endpoint= out of options and keeps the rest, escapes included', () => {
    expect(takeEndpointOption('endpoint=db-abc')).toEqual({ endpoint: 'db-abc', rest: '' });
    expect(takeEndpointOption('-c search_path=a\\ b endpoint=db-x -c work_mem=64MB')).toEqual({ endpoint: 'db-x', rest: '-c search_path=a\\ b -c work_mem=64MB' });
    expect(takeEndpointOption('--endpoint=db-y')).toEqual({ endpoint: 'db-y', rest: '' });
    expect(takeEndpointOption('-c statement_timeout=5s')).toEqual({ endpoint: null, rest: '-c statement_timeout=5s' });
  });

  it('routes SNI <db-id>.<gateway host> and nothing else', () => {
    expect(endpointFromSni('db-abc123.pg.example.com', 'pg.example.com')).toBe('db-abc123');
    expect(endpointFromSni('DB-ABC.PG.example.com', 'pg.example.com')).toBe('db-abc');
    expect(endpointFromSni('pg.example.com', 'pg.example.com')).toBeNull();
    expect(endpointFromSni('a.b.pg.example.com', 'pg.example.com')).toBeNull();
    expect(endpointFromSni('db-abc.other.com', 'pg.example.com')).toBeNull();
    expect(endpointFromSni(null, 'pg.example.com')).toBeNull();
  });

  it('prefers options=endpoint over SNI', () => {
    const req = routeRequestOf(new Map([['user', 'u'], ['options', 'endpoint=db-opt']]), 'db-sni.localhost', 'localhost');
    expect(req.endpoint).toBe('db-opt');
    expect(routeRequestOf(new Map([['user', 'u']]), 'db-sni.localhost', 'localhost').endpoint).toBe('db-sni');
  });
});

describe('SCRAM messages', () => {
  it('reads a plain client-first message', () => {
    expect(parseClientFirst('n,,n=,r=abc', SCRAM_SHA_256, false)).toEqual({ gs2Header: 'n,,', bare: 'n=,r=abc', clientNonce: 'abc' });
    expect(parseClientFirst('p=tls-server-end-point,,n=*,r=xyz', SCRAM_SHA_256_PLUS, true).gs2Header).toBe('p=tls-server-end-point,,');
  });

  it('refuses a channel-binding downgrade and mismatched flags', () => {
    // "y": the client could bind but believes the server cannot; over TLS we offered -PLUS, so someone removed it.
    expect(() => parseClientFirst('y,,n=,r=abc', SCRAM_SHA_256, true)).toThrow(/channel binding negotiation/);
    expect(parseClientFirst('y,,n=,r=abc', SCRAM_SHA_256, false).gs2Header).toBe('y,,');
    expect(() => parseClientFirst('n,,n=,r=abc', SCRAM_SHA_256_PLUS, true)).toThrow(/channel binding negotiation/);
    expect(() => parseClientFirst('p=tls-server-end-point,,n=,r=abc', SCRAM_SHA_256, true)).toThrow(/channel binding negotiation/);
    expect(() => parseClientFirst('p=tls-unique,,n=,r=abc', SCRAM_SHA_256_PLUS, true)).toThrow(/unsupported SCRAM channel-binding type/);
    expect(() => parseClientFirst('n,a=admin,n=,r=abc', SCRAM_SHA_256, false)).toThrow(/authorization identity/);
    expect(() => parseClientFirst('garbage', SCRAM_SHA_256, false)).toThrow(/malformed SCRAM/);
    expect(() => parseClientFirst('n,,r=abc', SCRAM_SHA_256, false)).toThrow(/malformed SCRAM/);
  });

  it('reads a client-final message and refuses a bad proof encoding', () => {
    const proof = Buffer.alloc(32, 7).toString('base64');
    expect(parseClientFinal(`c=biws,r=abcdef,p=${proof}`)).toMatchObject({ channelBinding: 'biws', nonce: 'abcdef', withoutProof: 'c=biws,r=abcdef' });
    expect(() => parseClientFinal('c=biws,r=abc')).toThrow(/malformed/);
    expect(() => parseClientFinal('c=biws,r=abc,p=!!!')).toThrow(/malformed/);
    expect(() => parseClientFinal(`c=biws,r=abc,p=${Buffer.alloc(8).toString('base64')}`)).toThrow(expect.objectContaining({ sqlstate: '08P01', detail: 'the proof has the wrong length' }));
  });

  it('derives client keys off the event loop, the same as core, once per salt', async () => {
    const cache = new ScramClientKeyCache();
    const salt = Buffer.alloc(16, 3);
    const [a, b] = await Promise.all([cache.get('r', 'pw', salt, 4096), cache.get('r', 'pw', salt, 4096)]);
    expect(a).toBe(b);
    expect(a).toEqual(deriveScramKeys('pw', salt, 4096));
  });
});

describe('tls-server-end-point', () => {
  it('hashes the certificate with its signature hash (SHA-256, or SHA-384/512 when signed so)', async () => {
    for (const [algorithm, hash] of [
      ['sha256', 'sha256'],
      ['sha384', 'sha384'],
      ['sha512', 'sha512'],
      ['sha1', 'sha256'], // RFC 5929: MD5 and SHA-1 become SHA-256
    ] as const) {
      const pems = await generate([{ name: 'commonName', value: 'x' }], { keyType: 'ec', algorithm });
      const der = new X509Certificate(pems.cert).raw;
      expect(serverEndPointHash(der).equals(createHash(hash).update(der).digest()), algorithm).toBe(true);
    }
  });
});

describe('cancel keys', () => {
  it('finds the target only with the exact key', () => {
    const keys = new CancelKeys();
    const target = { dbId: 'db-1', server: () => null };
    const key = keys.issue(target);
    const secret = Buffer.alloc(4);
    secret.writeInt32BE(key.secretKey, 0);
    expect(keys.lookup(key.processId, secret)).toBe(target);
    const wrong = Buffer.from(secret);
    wrong[3] = wrong[3]! ^ 1;
    expect(keys.lookup(key.processId, wrong)).toBeUndefined();
    expect(keys.lookup(key.processId, Buffer.alloc(8))).toBeUndefined();
    keys.release(key);
    expect(keys.lookup(key.processId, secret)).toBeUndefined();
  });
});

describe('packet reader', () => {
  const reader = () => {
    const stream = new PassThrough();
    return { stream, reader: new PacketReader(stream, () => new ClientGone()) };
  };

  it('reads a startup packet split across chunks', async () => {
    const { stream, reader: r } = reader();
    const packet = Buffer.from([0, 0, 0, 8, 4, 210, 22, 47]);
    const read = r.readStartupPacket();
    stream.write(packet.subarray(0, 3));
    stream.write(packet.subarray(3));
    expect((await read).readInt32BE(0)).toBe(80877103);
  });

  it('refuses a startup length out of bounds before waiting for the bytes', async () => {
    const { stream, reader: r } = reader();
    stream.write(Buffer.from([0, 0, 0x27, 0x11])); // 10001
    await expect(r.readStartupPacket()).rejects.toMatchObject({ sqlstate: '08P01', message: 'invalid length of startup packet' });
    const second = reader();
    second.stream.write(Buffer.from([0, 0, 0, 4]));
    await expect(second.reader.readStartupPacket()).rejects.toMatchObject({ sqlstate: '08P01' });
  });

  it('refuses a typed message over its limit and a negative length', async () => {
    const { stream, reader: r } = reader();
    stream.write(Buffer.from([0x70, 0, 1, 0, 0]));
    await expect(r.readMessage(1000)).rejects.toMatchObject({ sqlstate: '08P01', message: 'message too long' });
    const second = reader();
    second.stream.write(Buffer.from([0x70, 0xff, 0xff, 0xff, 0xff]));
    await expect(second.reader.readMessage(1000)).rejects.toMatchObject({ message: 'invalid message length' });
  });

  it('fails a read when the peer leaves mid-message, and hands over read-ahead bytes', async () => {
    const { stream, reader: r } = reader();
    stream.write(Buffer.from([0x70, 0, 0, 0, 10, 1]));
    const read = r.readMessage(1000);
    stream.end();
    await expect(read).rejects.toBeInstanceOf(ClientGone);
    const second = reader();
    second.stream.write(Buffer.from([0x70, 0, 0, 0, 5, 9, 0x51, 0, 0]));
    expect((await second.reader.readMessage(100)).body).toEqual(Buffer.from([9]));
    expect(second.reader.detach()).toEqual(Buffer.from([0x51, 0, 0]));
  });
});

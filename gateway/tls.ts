import { createHash, X509Certificate } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import type { Socket } from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { generate } from 'selfsigned';
import type { Config, Logger } from '../core/index.js';

/** The gateway's certificate, ready to serve, and what SCRAM-SHA-256-PLUS binds to. */
export interface TlsSetup {
  secureContext: tls.SecureContext;
  /** tls-server-end-point channel binding data (RFC 5929): the hash of the server certificate. */
  serverEndPoint: Buffer;
  certFile: string;
}

/**
 * The configured certificate (PGWAKE_TLS_CERT/KEY), else a self-signed one made
 * once under `<dataDir>/tls/` and kept, so clients that pin it keep working.
 */
export async function loadTls(config: Config, logger: Logger): Promise<TlsSetup> {
  let certFile = config.tlsCertFile;
  let keyFile = config.tlsKeyFile;
  if (!certFile || !keyFile) {
    const dir = path.join(config.dataDir, 'tls');
    certFile = path.join(dir, 'server.crt');
    keyFile = path.join(dir, 'server.key');
    if (!existsSync(certFile) || !existsSync(keyFile)) {
      await createSelfSigned(dir, certFile, keyFile, config.gatewayHost);
      logger.info({ cert: certFile }, 'generated a self-signed TLS certificate for the gateway');
    }
  }
  const [cert, key] = await Promise.all([readFile(certFile, 'utf8'), readFile(keyFile, 'utf8')]).catch((err: Error) => {
    throw new Error(`gateway TLS: cannot read ${certFile} / ${keyFile}: ${err.message}`);
  });
  let secureContext: tls.SecureContext;
  try {
    secureContext = tls.createSecureContext({ cert, key, minVersion: 'TLSv1.2' });
  } catch (err) {
    throw new Error(`gateway TLS: ${certFile} and ${keyFile} are not a usable certificate and key: ${(err as Error).message}`);
  }
  return { secureContext, serverEndPoint: serverEndPointHash(new X509Certificate(cert).raw), certFile };
}

async function createSelfSigned(dir: string, certFile: string, keyFile: string, host: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const altNames = [
    { type: 2 as const, value: host },
    { type: 2 as const, value: `*.${host}` },
    { type: 2 as const, value: 'localhost' },
    { type: 7 as const, ip: '127.0.0.1' },
    { type: 7 as const, ip: '::1' },
  ];
  const notAfterDate = new Date(Date.now() + 10 * 365 * 24 * 3600 * 1000);
  const pems = await generate([{ name: 'commonName', value: host }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    notAfterDate,
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames },
    ],
  });
  // Written aside and renamed, so a crash never leaves half a key behind.
  await writeFile(`${keyFile}.tmp`, pems.private, { mode: 0o600 });
  await writeFile(`${certFile}.tmp`, pems.cert, { mode: 0o644 });
  await rename(`${keyFile}.tmp`, keyFile);
  await rename(`${certFile}.tmp`, certFile);
}

// Signature algorithm OIDs whose hash is not SHA-256; RFC 5929 says MD5 and SHA-1 become SHA-256 too.
const SIGNATURE_HASHES: Record<string, string> = {
  '1.2.840.113549.1.1.12': 'sha384', // sha384WithRSAEncryption
  '1.2.840.113549.1.1.13': 'sha512', // sha512WithRSAEncryption
  '1.2.840.10045.4.3.3': 'sha384', // ecdsa-with-SHA384
  '1.2.840.10045.4.3.4': 'sha512', // ecdsa-with-SHA512
};

/** tls-server-end-point: the certificate hashed with the hash of its own signature algorithm (as Postgres does). */
export function serverEndPointHash(der: Buffer): Buffer {
  const oid = signatureAlgorithmOid(der);
  return createHash((oid && SIGNATURE_HASHES[oid]) ?? 'sha256').update(der).digest();
}

/** Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm AlgorithmIdentifier, signature }: reads the OID. */
function signatureAlgorithmOid(der: Buffer): string | null {
  try {
    const outer = readTlv(der, 0);
    const tbs = readTlv(der, outer.contentStart);
    const algId = readTlv(der, tbs.end);
    const oid = readTlv(der, algId.contentStart);
    if (oid.tag !== 0x06) return null;
    return decodeOid(der.subarray(oid.contentStart, oid.end));
  } catch {
    return null;
  }
}

function readTlv(buf: Buffer, at: number): { tag: number; contentStart: number; end: number } {
  const tag = buf[at]!;
  let len = buf[at + 1]!;
  let contentStart = at + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[at + 2 + i]!;
    contentStart += n;
  }
  if (contentStart + len > buf.length) throw new Error('truncated DER');
  return { tag, contentStart, end: contentStart + len };
}

function decodeOid(bytes: Buffer): string {
  const parts = [Math.floor(bytes[0]! / 40), bytes[0]! % 40];
  let value = 0;
  for (let i = 1; i < bytes.length; i++) {
    value = value * 128 + (bytes[i]! & 0x7f);
    if (!(bytes[i]! & 0x80)) {
      parts.push(value);
      value = 0;
    }
  }
  return parts.join('.');
}

/** Server side of the TLS handshake on a socket that asked for it with SSLRequest. Resolves once the handshake is done. */
export function upgradeToTls(socket: Socket, setup: TlsSetup): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const secure = new tls.TLSSocket(socket, { isServer: true, secureContext: setup.secureContext });
    secure.on('error', () => undefined); // a late error after the handshake failed must not crash the process
    const onError = (err: Error) => reject(err);
    secure.once('error', onError);
    secure.once('close', () => reject(new Error('client closed the connection during the TLS handshake')));
    secure.once('secure', () => {
      secure.off('error', onError);
      resolve(secure);
    });
  });
}

/**
 * Redis URLs: `redis://`, `rediss://` (TLS), `valkey://`, `valkeys://` (TLS)
 * and `unix://`. `user:pass@`, `:pass@`, and `pass@` (password only, as
 * redis-cli reads it); `user:@` means no AUTH. Path `/N` selects db N.
 */
import type { Conn } from './conn.js';
import { dialEndpoint, type DialOptions, type Endpoint, parseAddress } from './dial.js';

/** What a Redis URL says: where to connect and the dial options it implies. */
export interface ParsedURL {
  endpoint: Endpoint;
  options: DialOptions;
}

const TLS_SCHEMES = new Set(['rediss:', 'valkeys:']);
const PLAIN_SCHEMES = new Set(['redis:', 'valkey:']);

/**
 * The error for a bad URL. Never echoes a password: everything between the
 * scheme and the last `@` is masked, whatever the URL's form (`redis://:pw@h`,
 * opaque `redis:user:pw@h`, no scheme at all, or a `/` inside the password).
 */
function badURL(url: string, why: string): TypeError {
  const shown = url.replace(/^((?:[^:/?#@]*:)?(?:\/\/)?)[^]*@/, '$1***@');
  return new TypeError(`redisconn: bad Redis URL ${JSON.stringify(shown)}: ${why}`);
}

/** decodeURIComponent, with malformed escapes reported as a bad URL. */
function decode(text: string, url: string, what: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    throw badURL(url, `malformed percent-encoding in the ${what}`);
  }
}

function parseDb(text: string, url: string): number | undefined {
  if (text === '') return undefined;
  if (!/^\d+$/.test(text)) throw badURL(url, `database ${JSON.stringify(text)} is not a non-negative integer`);
  return Number(text);
}

/** Splits the raw userinfo, since WHATWG URL cannot tell `user:@` from `user@`. */
function parseUserInfo(raw: string, url: string): Pick<DialOptions, 'username' | 'password'> {
  const at = raw.lastIndexOf('@');
  if (at < 0) return {};
  const info = raw.slice(0, at);
  const colon = info.indexOf(':');
  if (colon < 0) return info === '' ? {} : { password: decode(info, url, 'password') };
  const username = decode(info.slice(0, colon), url, 'user name');
  const password = decode(info.slice(colon + 1), url, 'password');
  const out: Pick<DialOptions, 'username' | 'password'> = {};
  if (username !== '') out.username = username;
  if (password !== '') out.password = password;
  return out;
}

/**
 * Parses a Redis URL without dialing. Throws `TypeError` naming the problem:
 * unknown scheme, opaque form (`redis:host`), missing host, bad port or db.
 */
export function parseURL(url: string): ParsedURL {
  if (typeof url !== 'string') throw new TypeError('redisconn: URL must be a string');
  const schemeEnd = url.indexOf(':');
  const scheme = url.slice(0, schemeEnd + 1).toLowerCase();
  if (schemeEnd < 0 || !(TLS_SCHEMES.has(scheme) || PLAIN_SCHEMES.has(scheme) || scheme === 'unix:')) {
    throw badURL(url, 'scheme must be redis://, rediss://, valkey://, valkeys:// or unix://');
  }
  if (!url.startsWith('//', schemeEnd + 1)) throw badURL(url, `expected ${scheme}// (an opaque URL has no host)`);
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw badURL(url, 'not a valid URL');
  }
  const afterSlashes = url.slice(schemeEnd + 3);
  const authority = afterSlashes.split(/[/?#]/, 1)[0] ?? '';
  const options: DialOptions = parseUserInfo(authority, url);
  const dbParam = parsed.searchParams.get('db');

  if (scheme === 'unix:') {
    const path = decode(parsed.pathname, url, 'socket path');
    if (path === '' || path === '/') throw badURL(url, 'unix:// needs a socket path');
    const db = parseDb(dbParam ?? '', url);
    if (db !== undefined) options.db = db;
    return { endpoint: { path }, options };
  }

  if (parsed.hostname === '') throw badURL(url, 'missing host');
  // hostname keeps IPv6 brackets, which parseAddress expects.
  const host = parsed.hostname;
  const endpoint = parseAddress(parsed.port === '' ? host : `${host}:${parsed.port}`);
  const pathDb = parsed.pathname.replace(/^\//, '');
  if (pathDb.includes('/')) throw badURL(url, `path ${JSON.stringify(parsed.pathname)} is not /<db>`);
  const db = parseDb(pathDb !== '' ? pathDb : (dbParam ?? ''), url);
  if (db !== undefined) options.db = db;
  if (TLS_SCHEMES.has(scheme)) options.tls = true;
  return { endpoint, options };
}

/**
 * Dials a Redis URL. `options` override what the URL says, except that a TLS
 * scheme always uses TLS (`options.tls` then supplies the TLS settings).
 * A bad URL rejects with `TypeError` and nothing is dialed.
 */
export function dialURL(url: string, options: DialOptions = {}): Promise<Conn> {
  let parsed: ParsedURL;
  try {
    parsed = parseURL(url);
  } catch (err) {
    return Promise.reject(err);
  }
  const merged: DialOptions = { ...parsed.options, ...options };
  if (parsed.options.tls === true && (options.tls === undefined || options.tls === false)) merged.tls = true;
  return dialEndpoint(parsed.endpoint, merged);
}

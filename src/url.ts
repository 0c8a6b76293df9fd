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

const KNOWN_SCHEME = /^(?:rediss?|valkeys?|unix):/i;

/**
 * `text` (a Redis URL or address, as given) with any user name and password
 * replaced by `***`, for error messages and logs. Everything between `://`
 * and the last `@` goes, even where that over-masks (an `@` in a path or
 * query): a password may hold `/`, `?`, `#`, `:` or `@` unencoded, and no
 * part of it may show. Without `://` (an opaque `redis:user:pw@h`, or
 * `pw@host`), everything before the last `@` but a known scheme goes.
 * Text without `@` is returned as it is.
 */
export function redactURL(text: string): string {
  const lastAt = text.lastIndexOf('@');
  if (lastAt < 0) return text;
  const slashes = text.indexOf('://');
  const start = slashes >= 0 && text.indexOf('@') > slashes ? slashes + 3 : (KNOWN_SCHEME.exec(text)?.[0].length ?? 0);
  return `${text.slice(0, start)}***${text.slice(lastAt)}`;
}

/**
 * The error for a bad URL. Never echoes any part of a user name or password:
 * the URL is shown through {@link redactURL}, and `why` only ever quotes
 * parts after the userinfo (checked first: no `@` may follow the host).
 */
function badURL(url: string, why: string): TypeError {
  return new TypeError(`redisconn: bad Redis URL ${JSON.stringify(redactURL(url))}: ${why}`);
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

/** The port of `host[:port]` / `[v6][:port]`, when present, must be 1..65535. */
function checkPort(hostPort: string, url: string): void {
  const match = /^(?:\[[^\]]*\]|[^:[\]]*):(.*)$/.exec(hostPort);
  const portText = match?.[1];
  if (portText === undefined || portText === '') return;
  if (!/^\d+$/.test(portText)) throw badURL(url, `port ${JSON.stringify(portText)} is not a number`);
  const port = Number(portText);
  if (port < 1 || port > 65535) throw badURL(url, `port ${portText} out of range (1-65535)`);
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
  const afterSlashes = url.slice(schemeEnd + 3);
  const authority = afterSlashes.split(/[/?#]/, 1)[0] ?? '';
  const hostPort = authority.slice(authority.lastIndexOf('@') + 1);
  if (scheme === 'unix:') {
    // unix:///path: a "host" is a slip (unix://tmp/x.sock) or a password
    // with an unencoded "/" in it; either way nothing to dial.
    if (hostPort !== '') throw badURL(url, 'unix:// takes no host: write unix:///path/to/socket');
  } else {
    // The userinfo ends at the last "@" before the first "/", "?" or "#". An
    // "@" after that means a user name or password with one of those
    // characters unencoded: WHATWG URL would read part of it as the host,
    // port or path (and errors would quote it), so refuse it whole.
    if (url.includes('@', schemeEnd + 3 + authority.length)) {
      throw badURL(url, 'an "@" after the host: percent-encode "/", "?", "#" and "@" in the user name and password (%2F, %3F, %23, %40)');
    }
    checkPort(hostPort, url);
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    // Not the parser's error: its message and `input` carry the raw URL.
    throw badURL(url, 'not a valid URL');
  }
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

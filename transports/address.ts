// "host:port" / "[v6]:port" helpers, and the loopback-by-default rule.
export const LOOPBACK = '127.0.0.1';

export function formatAddress(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

export function parseAddress(addr: string): { host: string; port: number } {
  const m = /^\[?([^\]]*?)\]?:(\d+)$/.exec(addr.replace(/^[a-z]+:\/\//, '').replace(/\/$/, ''));
  if (!m) throw new Error(`bad address "${addr}", expected host:port`);
  const port = Number(m[2]);
  if (port < 0 || port > 65535) throw new Error(`bad port in address "${addr}"`);
  return { host: m[1]!, port };
}

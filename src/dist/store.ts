// Rendezvous key-value store in the manner of c10d's TCPStore: set, get (waits
// for the key), add, wait, compare-set, delete. Served by rank 0 or by the
// launcher; every client authenticates with the job's HMAC handshake first.
// Requests and replies are msgpack control frames on the TCP transport.
import type { FrameHeader } from '../../transports/frame.ts';
import { TcpTransport } from '../../transports/tcp.ts';
import type { FrameSink, Link } from '../../transports/types.ts';
import { DistTimeoutError, DistError } from './errors.ts';

export type StoreValue = string | number | Uint8Array;

type Request =
  | { id: number; op: 'set'; key: string; value: StoreValue }
  | { id: number; op: 'get'; key: string }
  | { id: number; op: 'add'; key: string; delta: number }
  | { id: number; op: 'wait'; keys: string[] }
  | { id: number; op: 'cas'; key: string; expected: StoreValue | null; desired: StoreValue }
  | { id: number; op: 'delete'; key: string }
  | { id: number; op: 'numKeys' }
  | { id: number; op: 'cancel'; target: number };

interface Reply {
  id: number;
  ok: boolean;
  value?: StoreValue | boolean | null;
  error?: string;
}

const noData: Pick<FrameSink, 'place' | 'arrived'> = {
  place(_l: Link, h: FrameHeader): Uint8Array {
    throw new Error(`the store accepts only control messages (got a ${h.length}-byte data frame)`);
  },
  arrived() {},
};

function isString(v: unknown): v is string {
  return typeof v === 'string' && v.length <= 4096;
}
function isValue(v: unknown): v is StoreValue {
  return typeof v === 'string' || typeof v === 'number' || v instanceof Uint8Array;
}
function equalValues(a: StoreValue, b: StoreValue): boolean {
  if (a instanceof Uint8Array && b instanceof Uint8Array) return Buffer.from(a).equals(Buffer.from(b));
  return a === b;
}

/** Validates an untrusted request; returns an error string for a bad one. */
function validate(b: unknown): Request | string {
  if (typeof b !== 'object' || b === null) return 'request is not an object';
  const r = b as Record<string, unknown>;
  if (typeof r.id !== 'number') return 'request without id';
  switch (r.op) {
    case 'set':
      return isString(r.key) && isValue(r.value) ? (r as unknown as Request) : 'bad set request';
    case 'get':
    case 'delete':
      return isString(r.key) ? (r as unknown as Request) : `bad ${r.op} request`;
    case 'add':
      return isString(r.key) && typeof r.delta === 'number' ? (r as unknown as Request) : 'bad add request';
    case 'wait':
      return Array.isArray(r.keys) && r.keys.length <= 4096 && r.keys.every(isString) ? (r as unknown as Request) : 'bad wait request';
    case 'cas':
      return isString(r.key) && (r.expected === null || isValue(r.expected)) && isValue(r.desired) ? (r as unknown as Request) : 'bad compare-set request';
    case 'numKeys':
      return r as unknown as Request;
    case 'cancel':
      return typeof r.target === 'number' ? (r as unknown as Request) : 'bad cancel request';
    default:
      return `unknown store operation "${String(r.op)}"`;
  }
}

interface Waiter {
  link: Link;
  id: number;
  keys: string[];
  reply: () => Reply;
}

export class StoreServer {
  private readonly data = new Map<string, StoreValue>();
  private waiters: Waiter[] = [];
  private readonly transport: TcpTransport;
  address = '';

  constructor(opts: { secret: Uint8Array; host?: string; port?: number; log?: (m: string) => void; heartbeatMs?: number; livenessMs?: number }) {
    const sink: FrameSink = { ...noData, control: (link, body) => this.handle(link, body) };
    this.transport = new TcpTransport({ rank: -1, secret: opts.secret, sink, host: opts.host, port: opts.port, purpose: 'store', log: opts.log, heartbeatMs: opts.heartbeatMs, livenessMs: opts.livenessMs });
  }

  on(event: 'reject', fn: (reason: string, remote: string) => void): this {
    this.transport.on(event, fn);
    return this;
  }

  async start(): Promise<string> {
    this.address = await this.transport.listen((link) => {
      link.on('close', () => (this.waiters = this.waiters.filter((w) => w.link !== link)));
    });
    return this.address;
  }

  async close(): Promise<void> {
    await this.transport.close();
  }

  private handle(link: Link, body: unknown): void {
    const req = validate(body);
    if (typeof req === 'string') {
      const id = typeof (body as { id?: unknown })?.id === 'number' ? (body as { id: number }).id : -1;
      link.sendControl({ id, ok: false, error: req } satisfies Reply);
      return;
    }
    const send = (r: Reply) => link.sendControl(r);
    switch (req.op) {
      case 'set':
        this.data.set(req.key, req.value);
        send({ id: req.id, ok: true });
        this.wake();
        return;
      case 'get':
        this.whenPresent(link, req.id, [req.key], () => ({ id: req.id, ok: true, value: this.data.get(req.key)! }));
        return;
      case 'wait':
        this.whenPresent(link, req.id, req.keys, () => ({ id: req.id, ok: true }));
        return;
      case 'add': {
        const cur = this.data.get(req.key) ?? 0;
        if (typeof cur !== 'number') return send({ id: req.id, ok: false, error: `add on non-numeric key "${req.key}"` });
        const v = cur + req.delta;
        this.data.set(req.key, v);
        send({ id: req.id, ok: true, value: v });
        this.wake();
        return;
      }
      case 'cas': {
        // c10d semantics: set `desired` if the key holds `expected` (or is absent
        // and expected is null); reply with the value now stored.
        const cur = this.data.get(req.key);
        if ((cur === undefined && req.expected === null) || (cur !== undefined && req.expected !== null && equalValues(cur, req.expected))) {
          this.data.set(req.key, req.desired);
          this.wake();
        }
        send({ id: req.id, ok: true, value: this.data.get(req.key) ?? null });
        return;
      }
      case 'delete':
        send({ id: req.id, ok: true, value: this.data.delete(req.key) });
        return;
      case 'numKeys':
        send({ id: req.id, ok: true, value: this.data.size });
        return;
      case 'cancel':
        this.waiters = this.waiters.filter((w) => !(w.link === link && w.id === req.target));
        return;
    }
  }

  private whenPresent(link: Link, id: number, keys: string[], reply: () => Reply): void {
    if (keys.every((k) => this.data.has(k))) link.sendControl(reply());
    else this.waiters.push({ link, id, keys, reply });
  }

  private wake(): void {
    const still: Waiter[] = [];
    for (const w of this.waiters) {
      if (w.keys.every((k) => this.data.has(k))) w.link.sendControl(w.reply());
      else still.push(w);
    }
    this.waiters = still;
  }
}

export class StoreClient {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (r: Reply) => void; reject: (e: Error) => void; what: string }>();
  private link: Link | null = null;
  private transport: TcpTransport;
  private lost: Error | null = null;

  constructor(
    readonly address: string,
    private readonly opts: { secret: Uint8Array; rank: number; timeoutMs?: number; log?: (m: string) => void; heartbeatMs?: number; livenessMs?: number },
  ) {
    const sink: FrameSink = { ...noData, control: (_l, body) => this.onReply(body) };
    this.transport = new TcpTransport({ rank: opts.rank, secret: opts.secret, sink, purpose: 'store', log: opts.log, heartbeatMs: opts.heartbeatMs, livenessMs: opts.livenessMs });
  }

  get timeoutMs(): number {
    return this.opts.timeoutMs ?? 60_000;
  }

  /** Connects, retrying while the server is not up yet (until the timeout). */
  async connect(): Promise<this> {
    const deadline = Date.now() + this.timeoutMs;
    let last: Error | null = null;
    while (Date.now() < deadline) {
      try {
        this.link = await this.transport.connect(this.address, -1);
        break;
      } catch (e) {
        last = e as Error;
        // An authentication failure will not fix itself: give up at once.
        if (/rejected our authentication|failed to prove/.test(last.message)) break;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    if (!this.link) throw new DistError(`rank ${this.opts.rank}: cannot reach the rendezvous store at ${this.address}: ${last?.message ?? 'timed out'}`);
    this.link.on('close', (err: Error | null) => {
      this.lost = new DistError(`rendezvous store at ${this.address} ${err ? `lost: ${err.message}` : 'closed'}`);
      for (const p of this.pending.values()) p.reject(this.lost);
      this.pending.clear();
    });
    return this;
  }

  private onReply(body: unknown): void {
    const r = body as Reply;
    const p = this.pending.get(r?.id);
    if (!p) return;
    this.pending.delete(r.id);
    if (r.ok) p.resolve(r);
    else p.reject(new DistError(`store ${p.what}: ${r.error}`));
  }

  private call(req: Record<string, unknown> & { op: string }, what: string, timeoutMs = this.timeoutMs): Promise<Reply> {
    if (this.lost) return Promise.reject(this.lost);
    if (!this.link) return Promise.reject(new DistError('store client is not connected'));
    const id = this.nextId++;
    const link = this.link;
    return new Promise<Reply>((resolve, reject) => {
      const t = setTimeout(() => {
        this.pending.delete(id);
        link.sendControl({ id: this.nextId++, op: 'cancel', target: id });
        reject(new DistTimeoutError(`store ${what} timed out after ${timeoutMs} ms (rank ${this.opts.rank}, store ${this.address})`));
      }, timeoutMs);
      t.unref();
      this.pending.set(id, {
        resolve: (r) => (clearTimeout(t), resolve(r)),
        reject: (e) => (clearTimeout(t), reject(e)),
        what,
      });
      link.sendControl({ ...req, id });
    });
  }

  async set(key: string, value: StoreValue): Promise<void> {
    await this.call({ op: 'set', key, value }, `set("${key}")`);
  }
  /** Waits for the key to exist, then returns its value. */
  async get(key: string, timeoutMs?: number): Promise<StoreValue> {
    return (await this.call({ op: 'get', key }, `get("${key}")`, timeoutMs)).value as StoreValue;
  }
  async add(key: string, delta: number): Promise<number> {
    return (await this.call({ op: 'add', key, delta }, `add("${key}")`)).value as number;
  }
  async wait(keys: string[], timeoutMs?: number): Promise<void> {
    await this.call({ op: 'wait', keys }, `wait(${keys.map((k) => `"${k}"`).join(', ')})`, timeoutMs);
  }
  /** Sets `desired` if the key holds `expected` (null: absent). Returns the value now stored. */
  async compareSet(key: string, expected: StoreValue | null, desired: StoreValue): Promise<StoreValue> {
    return (await this.call({ op: 'cas', key, expected, desired }, `compareSet("${key}")`)).value as StoreValue;
  }
  async delete(key: string): Promise<boolean> {
    return (await this.call({ op: 'delete', key }, `delete("${key}")`)).value as boolean;
  }
  async numKeys(): Promise<number> {
    return (await this.call({ op: 'numKeys' }, 'numKeys')).value as number;
  }

  async close(): Promise<void> {
    this.link?.close();
    await this.transport.close();
  }
}

// Scenarios run by every rank of a multi-rank test (as processes or threads).
// Inputs come from a seeded generator, so each rank can rebuild every other
// rank's input and compute the reference result in float64 on its own.
import { DeviceMesh } from '../../src/dist/mesh.ts';
import type { World } from '../../src/dist/init.ts';
import type { HostBuffer, ReduceOp } from '../../src/dist/dtype.ts';
import { allocHostBuffer, freeHostBuffer } from '../../src/dist/host-buffer.ts';
import { SimdHeap } from '../../src/dist/simd.ts';

/** A registered host buffer (in the heap collectives reduce in) holding a copy of `b`. */
function registered<B extends HostBuffer>(b: B): B {
  const r = allocHostBuffer(b.constructor as Float32ArrayConstructor, b.length) as unknown as B;
  r.set(b as never);
  return r;
}

/** Bytes summed in place in this rank's heap so far (destination a registered buffer). */
const inPlaceBytes = () => SimdHeap.process()?.sums.inPlaceBytes ?? 0;

export interface Report {
  rank: number;
  checks: number;
  failures: string[];
  hashes: Record<string, string>;
  info: Record<string, unknown>;
}

function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Kind = 'f32' | 'u8';
function gen(kind: Kind, n: number, seed: number): HostBuffer {
  const r = rng(seed);
  if (kind === 'u8') return Uint8Array.from({ length: n }, () => Math.floor(r() * 256));
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = r() * 2 - 1;
  return a;
}

function hash(b: HostBuffer): string {
  const u = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  let h = 0x811c9dc5;
  for (let i = 0; i < u.length; i++) h = Math.imul(h ^ u[i]!, 0x01000193);
  return (h >>> 0).toString(16) + ':' + u.length;
}

/** Elementwise reduction over every rank's input, in float64. */
function reference(op: ReduceOp, kind: Kind, inputs: HostBuffer[], len: number): Float64Array {
  const want = Float64Array.from(inputs[0]!.subarray(0, len));
  for (let r = 1; r < inputs.length; r++) {
    const x = inputs[r]!;
    for (let i = 0; i < len; i++) {
      const v = x[i]!;
      if (op === 'max') want[i] = Math.max(want[i]!, v);
      else if (op === 'min') want[i] = Math.min(want[i]!, v);
      else want[i]! += v;
    }
  }
  for (let i = 0; i < len; i++) {
    if (kind === 'u8' && op === 'sum') want[i] = want[i]! % 256;
    else if (op === 'avg') want[i] = want[i]! / inputs.length;
  }
  return want;
}

class Checker {
  checks = 0;
  failures: string[] = [];
  close(what: string, got: HostBuffer, want: ArrayLike<number>, tol: number): void {
    this.checks++;
    if (got.length !== want.length) {
      this.failures.push(`${what}: length ${got.length} != ${want.length}`);
      return;
    }
    for (let i = 0; i < want.length; i++) {
      const d = Math.abs(got[i]! - want[i]!);
      if (!(d <= tol * (1 + Math.abs(want[i]!)))) {
        this.failures.push(`${what}: element ${i} is ${got[i]}, expected ${want[i]}`);
        return;
      }
    }
  }
}

export const SIZES = [0, 1, 7, 1001, 65537, 1_500_003];

export async function collectives(world: World, sizes = SIZES): Promise<Report> {
  const n = world.size;
  const me = world.rank;
  const c = new Checker();
  const hashes: Record<string, string> = {};
  let k = 0;
  const seedOf = (kcase: number, r: number) => kcase * 7919 + r * 104729 + 17;
  for (const len of sizes) {
    // all-reduce, every op, float32; uint8 sum/max on the small sizes
    const ops: [Kind, ReduceOp][] = [['f32', 'sum'], ['f32', 'avg'], ['f32', 'max'], ['f32', 'min']];
    if (len <= 65537) ops.push(['u8', 'sum'], ['u8', 'max']);
    for (const [kind, op] of ops) {
      const kc = k++;
      const inputs = Array.from({ length: n }, (_, r) => gen(kind, len, seedOf(kc, r)));
      const buf = inputs[me]!.slice();
      await world.allReduce(buf, { op });
      const want = reference(op, kind, inputs, len);
      c.close(`allReduce ${kind} ${op} len=${len}`, buf, want, kind === 'u8' || op === 'max' || op === 'min' ? 0 : 1e-5);
      hashes[`allReduce ${kind} ${op} ${len}`] = hash(buf);
      if (kind === 'f32' && op === 'sum') {
        // The same sum on a registered host buffer (sent from and landing in shared WebAssembly memory): the same bits.
        const reg = registered(inputs[me]!);
        await world.allReduce(reg);
        c.checks++;
        if (hash(reg) !== hash(buf)) c.failures.push(`allReduce f32 sum len=${len}: a registered buffer gave different bits`);
        freeHostBuffer(reg);
      }
    }
    // reduce-scatter: output of `len` elements per rank
    {
      const kc = k++;
      const inputs = Array.from({ length: n }, (_, r) => gen('f32', len * n, seedOf(kc, r)));
      const out = new Float32Array(len);
      await world.reduceScatter(out, inputs[me]! as Float32Array, { op: 'sum' });
      const want = reference('sum', 'f32', inputs.map((x) => x.subarray(me * len, (me + 1) * len)), len);
      c.close(`reduceScatter len=${len}`, out, want, 1e-5);
    }
    // all-gather: `len` elements per rank
    {
      const kc = k++;
      const inputs = Array.from({ length: n }, (_, r) => gen('f32', len, seedOf(kc, r)));
      const out = new Float32Array(len * n);
      await world.allGather(out, inputs[me]! as Float32Array);
      const want = new Float32Array(len * n);
      inputs.forEach((x, r) => want.set(x as Float32Array, r * len));
      c.close(`allGather len=${len}`, out, want, 0);
    }
    // all-to-all: blocks of `len` elements
    {
      const kc = k++;
      const inputs = Array.from({ length: n }, (_, r) => gen('f32', len * n, seedOf(kc, r)));
      const out = new Float32Array(len * n);
      await world.allToAll(out, inputs[me]! as Float32Array);
      const want = new Float32Array(len * n);
      for (let i = 0; i < n; i++) want.set(inputs[i]!.subarray(me * len, (me + 1) * len) as Float32Array, i * len);
      c.close(`allToAll len=${len}`, out, want, 0);
    }
    // broadcast from a rotating root
    {
      const kc = k++;
      const root = kc % n;
      const src = gen('f32', len, seedOf(kc, root));
      const buf = me === root ? src.slice() : new Float32Array(len);
      await world.broadcast(buf, root);
      c.close(`broadcast root=${root} len=${len}`, buf, src, 0);
    }
  }
  // all-to-all-v with uneven and zero-length splits
  for (const scale of [0, 1, 3, 40_000]) {
    const kc = k++;
    const count = (from: number, to: number) => ((from * 3 + to * 5 + kc) % 4 === 0 ? 0 : ((from + 2 * to + kc) % 5) * scale + (scale ? from : 0));
    const sendCounts = Array.from({ length: n }, (_, j) => count(me, j));
    const recvCounts = Array.from({ length: n }, (_, i) => count(i, me));
    const inputs = Array.from({ length: n }, (_, r) => gen('f32', Array.from({ length: n }, (_, j) => count(r, j)).reduce((a, b) => a + b, 0), seedOf(kc, r)));
    const out = new Float32Array(recvCounts.reduce((a, b) => a + b, 0));
    await world.allToAllV(out, inputs[me]! as Float32Array, { sendCounts, recvCounts });
    const want: number[] = [];
    for (let i = 0; i < n; i++) {
      let off = 0;
      for (let j = 0; j < me; j++) off += count(i, j);
      for (let e = 0; e < count(i, me); e++) want.push(inputs[i]![off + e]!);
    }
    c.close(`allToAllV scale=${scale} counts=${JSON.stringify(sendCounts)}`, out, want, 0);
  }
  // send/recv around the ring, twice with two tags
  for (const len of [0, 5, 300_001]) {
    const kc = k++;
    const next = (me + 1) % n;
    const prev = (me - 1 + n) % n;
    const mine = gen('f32', len, seedOf(kc, me));
    const got = new Float32Array(len);
    const a = world.send(mine, next, 7);
    const b = world.recv(got, prev, 7);
    await Promise.all([a, b]);
    c.close(`send/recv len=${len}`, got, gen('f32', len, seedOf(kc, prev)), 0);
  }
  await world.barrier();
  c.checks++;
  return { rank: me, checks: c.checks, failures: c.failures, hashes, info: {} };
}

/** Several operations in flight at once, awaited together. */
export async function asyncInFlight(world: World): Promise<Report> {
  const n = world.size;
  const me = world.rank;
  const c = new Checker();
  const lens = [3, 100_000, 17, 1_000_000, 0, 2_049];
  const bufs = lens.map((len, i) => Float32Array.from({ length: len }, (_, j) => (me + 1) * (i + 1) + j * 1e-3));
  const gIn = Float32Array.from({ length: 50_000 }, (_, j) => me * 1e6 + j);
  const gOut = new Float32Array(50_000 * n);
  const handles = [...bufs.map((b) => world.allReduce(b)), world.allGather(gOut, gIn), world.barrier()];
  const pending = handles.filter((h) => !h.completed).length;
  await Promise.all(handles.map((h) => h.wait()));
  const sumR = (n * (n + 1)) / 2;
  bufs.forEach((b, i) => c.close(`async allReduce #${i}`, b, Array.from({ length: lens[i]! }, (_, j) => sumR * (i + 1) + n * j * 1e-3), 1e-5));
  const want = new Float32Array(50_000 * n);
  for (let r = 0; r < n; r++) for (let j = 0; j < 50_000; j++) want[r * 50_000 + j] = r * 1e6 + j;
  c.close('async allGather', gOut, want, 0);
  return { rank: me, checks: c.checks, failures: c.failures, hashes: {}, info: { pendingAtIssue: pending, handles: handles.length } };
}

/** A 2×2 mesh: dp and sp groups run all-reduces concurrently, plus a flattened group. */
export async function mesh(world: World): Promise<Report> {
  const m = await DeviceMesh.create(world, { dp: 2, sp: 2 }, [['dp', 'sp']]);
  const c = new Checker();
  const me = world.rank;
  const dp = m.group('dp');
  const sp = m.group('sp');
  const flat = m.group('dp,sp');
  const len = 200_001;
  const a = Float32Array.from({ length: len }, (_, i) => me + i * 1e-4);
  const b = Float32Array.from({ length: len }, (_, i) => 10 * me - i * 1e-4);
  const f = new Float32Array([me]);
  const [ra, rb] = await Promise.all([dp.allReduce(a), sp.allReduce(b), flat.allReduce(f)]);
  const sum = (ranks: readonly number[], fn: (r: number) => number) => ranks.reduce((s, r) => s + fn(r), 0);
  c.close('mesh dp allReduce', ra, Array.from({ length: len }, (_, i) => sum(dp.ranks, (r) => r + i * 1e-4)), 1e-5);
  c.close('mesh sp allReduce', rb, Array.from({ length: len }, (_, i) => sum(sp.ranks, (r) => 10 * r - i * 1e-4)), 1e-5);
  c.close('mesh flat allReduce', f, [6], 0);
  return { rank: me, checks: c.checks, failures: c.failures, hashes: {}, info: { coord: m.coord, dp: dp.ranks, sp: sp.ranks } };
}

/** A simulated device: asynchronous, slow readback and write, recording overlap with communication. */
export async function deviceFake(world: World): Promise<Report> {
  const { allReduceDevice } = await import('../../src/dist/device-bridge.ts');
  const c = new Checker();
  const n = 1_000_003;
  const mem = Float32Array.from({ length: n }, (_, i) => world.rank + i * 1e-3);
  let inflightDl = 0;
  let overlapped = 0;
  let commBusy = 0;
  const bridge = {
    numel: (t: Float32Array) => t.length,
    download: async (t: Float32Array, off: number, count: number) => {
      inflightDl++;
      if (commBusy > 0) overlapped++;
      await new Promise((r) => setTimeout(r, 5));
      if (commBusy > 0) overlapped++;
      inflightDl--;
      return t.slice(off, off + count);
    },
    upload: async (t: Float32Array, off: number, data: Float32Array) => {
      await new Promise((r) => setTimeout(r, 2));
      t.set(data, off);
    },
  };
  const g = world as unknown as { allReduce: World['allReduce'] };
  const orig = g.allReduce.bind(world);
  g.allReduce = ((buf: Float32Array, o: object) => {
    // Overlap seen from either side: a collective starts while a download is
    // in flight, or a download starts or ends while a collective is (a fast
    // link can finish a chunk's all-reduce inside one download).
    if (inflightDl > 0) overlapped++;
    commBusy++;
    const w = orig(buf, o);
    w.wait().finally(() => commBusy--);
    return w;
  }) as World['allReduce'];
  await allReduceDevice(world, bridge, mem, { chunkElems: 100_000 });
  g.allReduce = orig;
  const s = (world.size * (world.size - 1)) / 2;
  c.close('device allReduce', mem, Array.from({ length: n }, (_, i) => s + world.size * i * 1e-3), 1e-5);
  return { rank: world.rank, checks: c.checks, failures: c.failures, hashes: {}, info: { overlapped, inflightDl } };
}

/** The real Tensor on the real WebGPU device (lavapipe in CI). */
export async function deviceTensor(world: World): Promise<Report> {
  const W = await import('../../src/node.ts');
  const { allReduceDevice, broadcastDevice, tensorBridge } = await import('../../src/dist/device-bridge.ts');
  const device = await W.initDevice();
  const c = new Checker();
  try {
    const n = 300_001;
    const host = Float32Array.from({ length: n }, (_, i) => world.rank * 2 + i * 1e-4);
    const t = W.Tensor.fromArray(host, [n]);
    // Chunks come back into registered host buffers (summed in place), all freed afterwards.
    const { isRegisteredHostBuffer } = await import('../../src/dist/host-buffer.ts');
    const heldBefore = SimdHeap.process()!.allocated;
    const g = world as unknown as { allReduce: World['allReduce'] };
    const orig = g.allReduce.bind(world);
    let plain = 0;
    g.allReduce = ((buf: Float32Array, o: object) => {
      if (!isRegisteredHostBuffer(buf)) plain++;
      return orig(buf, o);
    }) as World['allReduce'];
    await allReduceDevice(world, tensorBridge, t, { chunkElems: 65_536 });
    g.allReduce = orig;
    c.checks += 2;
    if (plain > 0) c.failures.push(`${plain} chunks of the device all-reduce were not in registered host buffers`);
    // The heap's spare landing area may have been taken or grown by the all-reduces; the staging buffers are freed.
    const landing = SimdHeap.process()!.allocated - heldBefore;
    if (landing > 4 * 65_536 * 4) c.failures.push(`${landing} bytes of staging still allocated after the device all-reduce`);
    const s = world.size * (world.size - 1);
    c.close('tensor allReduce', (await t.toArray()) as Float32Array, Array.from({ length: n }, (_, i) => s + world.size * i * 1e-4), 1e-5);
    const b = W.Tensor.fromArray(Float32Array.from({ length: 1000 }, (_, i) => (world.rank === 1 ? i : -1)), [1000]);
    await broadcastDevice(world, tensorBridge, b, 1, { chunkElems: 300 });
    c.close('tensor broadcast', (await b.toArray()) as Float32Array, Array.from({ length: 1000 }, (_, i) => i), 0);
    await world.barrier();
  } finally {
    device.destroy();
  }
  return { rank: world.rank, checks: c.checks, failures: c.failures, hashes: {}, info: {} };
}

export const ALGO_SIZES = [0, 1, 7, 1001, 65537, 1_500_003];

/**
 * All-reduce, reduce-scatter and all-gather over the sizes that exercise the
 * large-message algorithms (the one in use is forced with
 * WEBOMNI_ALLREDUCE_ALGO): every op, float32, float64, int32 and uint8,
 * checked against the float64 reference, and each reduction run twice to
 * check the result does not depend on arrival order.
 */
export async function allReduceAlgos(world: World, sizes = ALGO_SIZES): Promise<Report> {
  const inPlace0 = inPlaceBytes();
  /** Of which in all-reduces (their reduced bytes land in the heap: scatter's slots, or the ring's reducing-receive buffers). */
  let allReduceInPlace = 0;
  const n = world.size;
  const me = world.rank;
  const c = new Checker();
  const hashes: Record<string, string> = {};
  let k = 0;
  const seedOf = (kcase: number, r: number) => kcase * 7919 + r * 104729 + 29;
  type Case = ['f32' | 'f64' | 'i32' | 'u8', ReduceOp];
  const cases: Case[] = [['f32', 'sum'], ['f32', 'avg'], ['f32', 'max'], ['f32', 'min'], ['f64', 'sum'], ['i32', 'sum'], ['u8', 'sum'], ['u8', 'max']];
  const large: Case[] = [['f32', 'sum'], ['f32', 'max'], ['f64', 'sum'], ['u8', 'sum']];
  for (const len of sizes) {
    for (const [kind, op] of len > 65537 ? large : cases) {
      const kc = k++;
      const base = Array.from({ length: n }, (_, r) => gen(kind === 'u8' ? 'u8' : 'f32', len, seedOf(kc, r)));
      const inputs: HostBuffer[] = base.map((b) =>
        kind === 'f64' ? Float64Array.from(b) : kind === 'i32' ? Int32Array.from(b, (x) => Math.floor(x * 1e6)) : b,
      );
      const want = reference(op, kind === 'u8' ? 'u8' : 'f32', inputs, len);
      const got: string[] = [];
      for (let rep = 0; rep < 2; rep++) {
        // The second run on a registered host buffer: sums reduce in place there, and must give the same bits.
        const buf = rep === 0 ? inputs[me]!.slice() : registered(inputs[me]!);
        const before = inPlaceBytes();
        await world.allReduce(buf, { op });
        allReduceInPlace += inPlaceBytes() - before;
        c.close(`allReduce ${kind} ${op} len=${len}`, buf, want, kind === 'u8' || kind === 'i32' || op === 'max' || op === 'min' ? 0 : 1e-5);
        got.push(hash(buf));
        if (rep === 1) freeHostBuffer(buf);
      }
      c.checks++;
      if (got[0] !== got[1]) c.failures.push(`allReduce ${kind} ${op} len=${len}: two runs gave different bits`);
      hashes[`allReduce ${kind} ${op} ${len}`] = got[0]!;
    }
    // The same schedule's reduce-scatter (out of place, `len` elements per rank) and all-gather.
    for (const [kind, op] of len > 65537 ? large : cases) {
      const kc = k++;
      const base = Array.from({ length: n }, (_, r) => gen(kind === 'u8' ? 'u8' : 'f32', len * n, seedOf(kc, r)));
      const inputs: HostBuffer[] = base.map((b) =>
        kind === 'f64' ? Float64Array.from(b) : kind === 'i32' ? Int32Array.from(b, (x) => Math.floor(x * 1e6)) : b,
      );
      const want = reference(op, kind === 'u8' ? 'u8' : 'f32', inputs.map((x) => x.subarray(me * len, (me + 1) * len)), len);
      const before = hash(inputs[me]!);
      const got: string[] = [];
      let input = inputs[me]!;
      for (let rep = 0; rep < 2; rep++) {
        // The second run with registered input and output buffers.
        if (rep === 1) input = registered(input);
        const out = rep === 0 ? new (input.constructor as new (n: number) => HostBuffer)(len) : registered(new (input.constructor as new (n: number) => HostBuffer)(len));
        await world.reduceScatter(out, input, { op });
        c.close(`reduceScatter ${kind} ${op} len=${len}`, out, want, kind === 'u8' || kind === 'i32' || op === 'max' || op === 'min' ? 0 : 1e-5);
        got.push(hash(out));
        if (rep === 1) freeHostBuffer(out);
      }
      c.checks += 2;
      if (got[0] !== got[1]) c.failures.push(`reduceScatter ${kind} ${op} len=${len}: two runs gave different bits`);
      if (hash(input) !== before) c.failures.push(`reduceScatter ${kind} ${op} len=${len}: the input was modified`);
      freeHostBuffer(input);
    }
    {
      const kc = k++;
      const inputs = Array.from({ length: n }, (_, r) => gen('f32', len, seedOf(kc, r)) as Float32Array);
      const out = new Float32Array(len * n);
      await world.allGather(out, inputs[me]!);
      const want = new Float32Array(len * n);
      inputs.forEach((x, r) => want.set(x, r * len));
      c.close(`allGather len=${len}`, out, want, 0);
    }
  }
  // Back-to-back large all-reduces, all-gathers and reduce-scatters behind the
  // receiver-ready gate (WEBOMNI_READY_BYTES below their per-peer size): no
  // byte of them may arrive before its receive, however far apart the ranks run.
  const gated = process.env.WEBOMNI_ALLREDUCE_ALGO === 'scatter' && Number(process.env.WEBOMNI_READY_BYTES) > 0;
  const len = 1 << 19;
  const early0 = world.comm.router.earlyDataBytes;
  const want = new Float32Array(len * n).fill((n * (n + 1)) / 2);
  for (let rep = 0; rep < 4; rep++) {
    const buf = new Float32Array(len * n).fill(me + 1);
    const out = new Float32Array(len);
    const all = new Float32Array(len * n);
    if (me === rep % n) await new Promise((r) => setTimeout(r, 30)); // one rank late each time
    await world.allReduce(buf);
    c.close(`gated allReduce rep ${rep}`, buf, want, 0);
    await world.reduceScatter(out, buf.fill(me + 1));
    c.close(`gated reduceScatter rep ${rep}`, out, want.subarray(0, len), 0);
    await world.allGather(all, out);
    c.close(`gated allGather rep ${rep}`, all, want, 0);
  }
  const early = world.comm.router.earlyDataBytes - early0;
  if (gated) {
    c.checks++;
    if (early !== 0) c.failures.push(`${early} bytes of gated collectives arrived before their receives`);
  }
  // Below the gate, a late rank finds its peers' chunks already there: the
  // direct schedule sums them where they landed (adopted, not copied).
  const adopted0 = world.comm.router.adoptedBytes;
  const small = Math.max(1, Math.floor(Number(process.env.WEBOMNI_READY_BYTES ?? 0) / 8)) * n; // half the gate per peer
  for (let rep = 0; rep < 3; rep++) {
    await world.barrier();
    if (me === 0) await new Promise((r) => setTimeout(r, 100));
    const buf = new Float32Array(small).fill(me + 1);
    await world.allReduce(buf);
    c.close(`late allReduce below the gate rep ${rep}`, buf, new Float32Array(small).fill((n * (n + 1)) / 2), 0);
  }
  const adopted = world.comm.router.adoptedBytes - adopted0;
  await world.barrier();
  return { rank: me, checks: c.checks, failures: c.failures, hashes, info: { early, adopted, inPlaceBytes: inPlaceBytes() - inPlace0, allReduceInPlaceBytes: allReduceInPlace } };
}

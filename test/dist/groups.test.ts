// Sub-groups of a 2×2 mesh running concurrently, async handles in flight
// together, and bad input producing clear errors.
import { afterAll, describe, expect, it } from 'vitest';
import { killAll, runJob } from './harness.ts';

afterAll(killAll);

describe('groups and mesh', () => {
  it('a 2×2 mesh: dp, sp and flattened groups all-reduce concurrently', async () => {
    const outs = await runJob({ n: 4, scenario: 'mesh' });
    for (const o of outs) {
      expect(o.error?.message).toBeUndefined();
      expect(o.result!.failures).toEqual([]);
      expect(o.result!.checks).toBe(3);
    }
    // Rows built like PyTorch's DeviceMesh: arange(4).reshape(2, 2).
    expect(outs.map((o) => o.result!.info)).toEqual([
      { coord: { dp: 0, sp: 0 }, dp: [0, 2], sp: [0, 1] },
      { coord: { dp: 0, sp: 1 }, dp: [1, 3], sp: [0, 1] },
      { coord: { dp: 1, sp: 0 }, dp: [0, 2], sp: [2, 3] },
      { coord: { dp: 1, sp: 1 }, dp: [1, 3], sp: [2, 3] },
    ]);
  }, 60_000);

  it.each(['tcp', 'ws'] as const)('async handles in flight together (%s)', async (transport) => {
    const outs = await runJob({ n: 3, transport, scenario: 'async' });
    for (const o of outs) {
      expect(o.error?.message).toBeUndefined();
      expect(o.result!.failures).toEqual([]);
      expect(o.result!.checks).toBe(7);
      // Several of the 8 operations were still pending right after being issued.
      expect(o.result!.info.pendingAtIssue as number).toBeGreaterThanOrEqual(6);
    }
  }, 60_000);
});

describe('bad input gives clear errors', () => {
  it('mismatched lengths, order, dtype, wrong group, use after destroy, local shape errors', async () => {
    const outs = await runJob({ n: 2, scenario: 'badinput' });
    const [a, b] = outs.map((o) => {
      expect(o.error?.message).toBeUndefined();
      return o.result!.info as Record<string, string>;
    });
    for (const i of [a!, b!]) {
      expect(i.lengths).toMatch(/collective mismatch .* all_reduce\(float32, count=1[02], sum\) but rank \d issued all_reduce\(float32, count=1[02], sum\)/);
      expect(i.afterFailure).toMatch(/unusable after an earlier failure/);
      expect(i.order).toMatch(/all_gather\(float32, count=4\).*all_reduce|all_reduce.*all_gather\(float32, count=4\)/);
      expect(i.dtype).toMatch(/int32.*float32|float32.*int32/);
      expect(i.ringLengths).toMatch(/count=1000000.*count=1000001|count=1000001.*count=1000000/);
      expect(i.localShape).toMatch(/allGather .* output has 5 elements, expected 2 × input \(3\) = 6/);
      expect(i.badRoot).toMatch(/root 5 is not a group rank/);
      expect(i.avgInt).toMatch(/"avg" needs a float buffer, got int32/);
      expect(i.a2avCounts).toMatch(/sendCounts must be 2 non-negative integers/);
      expect(i.afterDestroy).toMatch(/after it was destroyed/);
    }
    expect(a!.wrongGroup).toMatch(/rank 0 is not a member of group .*\[1\]/);
    expect(b!.wrongGroup).toBe('no error'); // rank 1 is the group's only member
    expect(b!.p2pLength).toMatch(/rank 0 sent 24 bytes but rank 1 expected 16 bytes/);
    expect(a!.timeout).toMatch(/DistTimeoutError: recv from rank 1 .* timed out after 300 ms/);
  }, 60_000);
});

describe('collectives on device tensors', () => {
  it('a pipelined all-reduce over a simulated async device overlaps copies with communication', async () => {
    const outs = await runJob({ n: 2, scenario: 'device-fake' });
    for (const o of outs) {
      expect(o.error?.message).toBeUndefined();
      expect(o.result!.failures).toEqual([]);
      expect(o.result!.checks).toBe(1);
    }
    const overlapped = outs.reduce((a, o) => a + (o.result!.info.overlapped as number), 0);
    expect(overlapped).toBeGreaterThan(0);
  }, 60_000);

  it('all-reduce and broadcast of webomni Tensors on the WebGPU device', async () => {
    const outs = await runJob({ n: 2, scenario: 'device-tensor' });
    for (const o of outs) {
      expect(o.error?.message, o.stderr).toBeUndefined();
      expect(o.result!.failures).toEqual([]);
      expect(o.result!.checks).toBe(4);
    }
  }, 90_000);
});

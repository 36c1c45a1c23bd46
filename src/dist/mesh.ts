// A named device mesh over the world, built like PyTorch's DeviceMesh: the
// ranks 0..N-1 laid out row-major in the mesh shape; the group of a dimension
// is the line of ranks that differ only in that coordinate. Flattened
// dimensions (e.g. ["dp", "sp"]) group the ranks that differ only in those.
import { DistError } from './errors.ts';
import type { ProcessGroup } from './group.ts';

export class DeviceMesh {
  readonly dims: string[];
  readonly shape: number[];
  /** This rank's coordinate along each dimension. */
  readonly coord: Record<string, number>;
  private readonly groups = new Map<string, ProcessGroup>();

  private constructor(
    readonly world: ProcessGroup,
    spec: Record<string, number>,
  ) {
    this.dims = Object.keys(spec);
    this.shape = this.dims.map((d) => spec[d]!);
    const total = this.shape.reduce((a, b) => a * b, 1);
    if (this.dims.length === 0) throw new DistError('a device mesh needs at least one dimension');
    for (const [d, s] of Object.entries(spec)) if (!Number.isInteger(s) || s < 1) throw new DistError(`mesh dimension "${d}" has invalid size ${s}`);
    if (total !== world.size) throw new DistError(`mesh ${JSON.stringify(spec)} has ${total} positions but the group has ${world.size} ranks`);
    const c = this.coordsOf(world.rank);
    this.coord = Object.fromEntries(this.dims.map((d, i) => [d, c[i]!]));
  }

  /** Creates the mesh and the groups of every dimension (and of `flatten` combinations) this rank belongs to. */
  static async create(world: ProcessGroup, spec: Record<string, number>, flatten: string[][] = []): Promise<DeviceMesh> {
    const m = new DeviceMesh(world, spec);
    for (const d of m.dims) await m.build([d]);
    for (const f of flatten) await m.build(f);
    return m;
  }

  /** Row-major coordinates of a group rank. */
  coordsOf(rank: number): number[] {
    const out = new Array<number>(this.shape.length);
    for (let i = this.shape.length - 1; i >= 0; i--) {
      out[i] = rank % this.shape[i]!;
      rank = Math.floor(rank / this.shape[i]!);
    }
    return out;
  }

  rankAt(coords: number[]): number {
    return coords.reduce((acc, c, i) => acc * this.shape[i]! + c, 0);
  }

  /** Group of one dimension ("dp") or of flattened ones ("dp,sp" or ["dp","sp"]). */
  group(dims: string | string[]): ProcessGroup {
    const key = this.key(dims);
    const g = this.groups.get(key);
    if (!g) throw new DistError(`mesh has no group for "${key}" (dimensions: ${this.dims.join(', ')}; flattened groups must be requested at create())`);
    return g;
  }

  /** Global ranks of this rank's line along `dims`. */
  lineRanks(dims: string[]): number[] {
    const idx = dims.map((d) => {
      const i = this.dims.indexOf(d);
      if (i < 0) throw new DistError(`mesh has no dimension "${d}" (has ${this.dims.join(', ')})`);
      return i;
    });
    const me = this.coordsOf(this.world.rank);
    const sizes = idx.map((i) => this.shape[i]!);
    const total = sizes.reduce((a, b) => a * b, 1);
    const ranks: number[] = [];
    for (let k = 0; k < total; k++) {
      const c = [...me];
      let r = k;
      for (let j = idx.length - 1; j >= 0; j--) {
        c[idx[j]!] = r % sizes[j]!;
        r = Math.floor(r / sizes[j]!);
      }
      ranks.push(this.world.globalRank(this.rankAt(c)));
    }
    return ranks;
  }

  private key(dims: string | string[]): string {
    return (typeof dims === 'string' ? dims.split(',') : dims).map((d) => d.trim()).join(',');
  }

  private async build(dims: string[]): Promise<void> {
    const key = this.key(dims);
    if (this.groups.has(key)) return;
    this.groups.set(key, await this.world.newGroup(this.lineRanks(dims), `mesh.${key}`));
  }
}

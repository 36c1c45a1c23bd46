// Which algorithm a large all-reduce, reduce-scatter or all-gather runs, from
// the message size and the group size.
// Every rank of a group computes the same answer from the same inputs, so the
// choice never needs to be agreed on the wire (a mismatch would still be
// caught: the steps of the two algorithms never pair up and the frames'
// signatures are checked, but the configuration must be the same everywhere).
export type AllReduceAlgo = 'auto' | 'ring' | 'scatter';

/**
 * Up to this many ranks the direct scatter/gather schedules beat the ring
 * (2 dependent transfers per chunk instead of 2(n−1); the same bytes on every
 * link); past it a rank would talk to too many peers at once.
 */
export const SCATTER_MAX_RANKS = 8;

export function allReduceAlgorithm(bytes: number, count: number, n: number, smallBytes: number, pref: AllReduceAlgo): 'direct' | 'ring' | 'scatter' {
  if (bytes <= smallBytes || count < n) return 'direct';
  if (pref === 'ring' || pref === 'scatter') return pref;
  return n <= SCATTER_MAX_RANKS ? 'scatter' : 'ring';
}

/**
 * Reduce-scatter and all-gather above the small-message size: the direct
 * schedule (each rank exchanges its blocks with every peer at once) up to
 * SCATTER_MAX_RANKS, the ring beyond; `pref` forces one (WEBOMNI_ALLREDUCE_ALGO).
 */
export function blockAlgorithm(n: number, pref: AllReduceAlgo): 'ring' | 'scatter' {
  if (pref === 'ring' || pref === 'scatter') return pref;
  return n <= SCATTER_MAX_RANKS ? 'scatter' : 'ring';
}

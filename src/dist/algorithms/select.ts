// Which all-reduce algorithm runs, from the message size and the group size.
// Every rank of a group computes the same answer from the same inputs, so the
// choice never needs to be agreed on the wire (a mismatch would still be
// caught: the steps of the two algorithms never pair up and the frames'
// signatures are checked, but the configuration must be the same everywhere).
export type AllReduceAlgo = 'auto' | 'ring' | 'scatter';

/**
 * Up to this many ranks the direct scatter/gather all-reduce beats the ring
 * (2 dependent transfers per chunk instead of 2(n−1); the same bytes on every
 * link); past it a rank would talk to too many peers at once.
 */
export const SCATTER_MAX_RANKS = 8;

export function allReduceAlgorithm(bytes: number, count: number, n: number, smallBytes: number, pref: AllReduceAlgo): 'direct' | 'ring' | 'scatter' {
  if (bytes <= smallBytes || count < n) return 'direct';
  if (pref === 'ring' || pref === 'scatter') return pref;
  return n <= SCATTER_MAX_RANKS ? 'scatter' : 'ring';
}

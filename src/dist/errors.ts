// Error types the distributed layer raises; each message names the group,
// the operation and the ranks involved.
export class DistError extends Error {
  override name = 'DistError';
}
/** Two ranks issued different collectives (or different sizes) at the same sequence number. */
export class CollectiveMismatchError extends DistError {
  override name = 'CollectiveMismatchError';
}
/** A wait exceeded its timeout. */
export class DistTimeoutError extends DistError {
  override name = 'DistTimeoutError';
}
/** A peer rank died, stopped answering, or left. */
export class PeerFailureError extends DistError {
  override name = 'PeerFailureError';
  constructor(readonly failedRank: number, message: string) {
    super(message);
  }
}

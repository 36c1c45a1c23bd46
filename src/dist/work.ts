// Handle of an asynchronous operation. Awaitable directly (`await g.allReduce(x)`)
// or through wait(); several may be in flight at once.
export class Work<T = void> implements PromiseLike<T> {
  private readonly promise: Promise<T>;
  private resolveFn!: (v: T) => void;
  private rejectFn!: (e: Error) => void;
  private state: 'pending' | 'done' | 'failed' = 'pending';
  private err: Error | null = null;

  constructor(readonly description: string) {
    this.promise = new Promise<T>((resolve, reject) => {
      this.resolveFn = resolve;
      this.rejectFn = reject;
    });
    // A failed handle nobody waits on must not crash the process; waiting still throws.
    this.promise.catch(() => {});
  }

  /** True once the operation finished (successfully or not). */
  get completed(): boolean {
    return this.state !== 'pending';
  }
  get error(): Error | null {
    return this.err;
  }

  wait(): Promise<T> {
    return this.promise;
  }

  then<A = T, B = never>(onOk?: ((v: T) => A | PromiseLike<A>) | null, onErr?: ((e: unknown) => B | PromiseLike<B>) | null): Promise<A | B> {
    return this.promise.then(onOk, onErr);
  }

  /** @internal */
  resolve(v: T): boolean {
    if (this.state !== 'pending') return false;
    this.state = 'done';
    this.resolveFn(v);
    return true;
  }

  /** @internal */
  reject(e: Error): boolean {
    if (this.state !== 'pending') return false;
    this.state = 'failed';
    this.err = e;
    this.rejectFn(e);
    return true;
  }
}

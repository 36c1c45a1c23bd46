// Progress output: a live bar on a terminal (step, loss, tokens/s, ETA), plain log
// lines otherwise (CI, pipes, files).
import cliProgress from 'cli-progress';

export interface ProgressState {
  step: number;
  loss?: number;
  tokensPerSecond?: number;
  lr?: number;
}

export class Progress {
  private bar: cliProgress.SingleBar | null = null;
  private lastLine = 0;

  constructor(
    readonly total: number,
    readonly startStep = 0,
    private readonly out: NodeJS.WriteStream = process.stderr,
    readonly plainEverySeconds = 10,
  ) {
    if (out.isTTY && !process.env.CI) {
      this.bar = new cliProgress.SingleBar(
        {
          format: ' {bar} {value}/{total} steps | loss {loss} | {tps} tok/s | lr {lr} | ETA {eta_formatted}',
          barsize: 24,
          hideCursor: true,
          etaBuffer: 50,
          stream: out,
        },
        cliProgress.Presets.shades_classic,
      );
      this.bar.start(total, startStep, { loss: '—', tps: '—', lr: '—' });
    }
  }

  update(s: ProgressState): void {
    const fields = {
      loss: s.loss === undefined ? '—' : s.loss.toFixed(4),
      tps: s.tokensPerSecond === undefined ? '—' : Math.round(s.tokensPerSecond).toString(),
      lr: s.lr === undefined ? '—' : s.lr.toExponential(2),
    };
    if (this.bar) {
      this.bar.update(s.step, fields);
      return;
    }
    const now = Date.now();
    if (now - this.lastLine >= this.plainEverySeconds * 1000 || s.step === this.total) {
      this.lastLine = now;
      this.out.write(`step ${s.step}/${this.total}  loss ${fields.loss}  ${fields.tps} tok/s  lr ${fields.lr}\n`);
    }
  }

  /** Print a line without breaking the bar. */
  log(line: string): void {
    if (this.bar) {
      this.out.write('\r\x1b[2K');
      this.out.write(line + '\n');
      this.bar.render();
    } else this.out.write(line + '\n');
  }

  stop(): void {
    this.bar?.stop();
    this.bar = null;
  }
}

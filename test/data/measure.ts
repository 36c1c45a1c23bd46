// Measurements for the data layer on the Brown corpus (not a test; run with
//   npx tsx test/data/measure.ts [vocabSize]
// ): BPE training time, tokens per character, encode throughput, packing throughput.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PackedLoader } from '../../src/data/index.ts';
import { prepareBrown } from '../../src/data/node.ts';
import { loadBrownDocuments } from '../../src/data/node.ts';
import { splitDocuments } from '../../src/data/documents.ts';

const vocabSize = Number(process.argv[2] ?? 4096);
const dir = mkdtempSync(join(tmpdir(), 'webomni-measure-'));
try {
  const t0 = performance.now();
  const p = prepareBrown({ cacheDir: dir, vocabSize, log: (m) => console.log(m) });
  const cold = (performance.now() - t0) / 1000;
  const t1 = performance.now();
  const p2 = prepareBrown({ cacheDir: dir, vocabSize });
  const warm = (performance.now() - t1) / 1000;
  const { train } = splitDocuments(loadBrownDocuments());
  const trainText = train.map((d) => d.text);
  const bytes = trainText.reduce((a, t) => a + Buffer.byteLength(t), 0);
  // Encode throughput: fresh tokenizer copy (cold cache) and a second pass (warm cache).
  const tok = p.tokenizer;
  const fresh = (await import('../../src/data/index.ts')).Tokenizer.fromJSON(tok.serialize());
  let t = performance.now();
  let n = 0;
  for (const s of trainText) n += fresh.encode(s).length;
  const coldS = (performance.now() - t) / 1000;
  t = performance.now();
  for (const s of trainText) fresh.encode(s);
  const warmS = (performance.now() - t) / 1000;
  t = performance.now();
  let dec = 0;
  const ids = trainText.map((s) => tok.encode(s));
  t = performance.now();
  for (const x of ids) dec += tok.decode(x).length;
  const decS = (performance.now() - t) / 1000;
  const loader = new PackedLoader(p.train, { tokensPerBatch: 8192, maxSeqLen: 2048, eosId: tok.eosId!, seed: 1 });
  t = performance.now();
  let packed = 0;
  for (const b of loader.epochBatches()) packed += b.ids.length;
  const packS = (performance.now() - t) / 1000;
  console.log(
    JSON.stringify(
      {
        vocabSize,
        docs: { train: p.train.docIds.length, val: p.val.docIds.length },
        chars: p.chars,
        trainBytes: bytes,
        tokens: { train: p.train.tokens.length, val: p.val.tokens.length },
        trainSeconds: +p.trainSeconds.toFixed(2),
        prepareColdSeconds: +cold.toFixed(2),
        prepareCachedSeconds: +warm.toFixed(3),
        cachedHit: p2.cached,
        tokensPerChar: +(n / p.chars.train).toFixed(4),
        charsPerToken: +(p.chars.train / n).toFixed(3),
        valTokensPerChar: +(p.val.tokens.length / p.chars.val).toFixed(4),
        encodeMBpsColdCache: +(bytes / 1e6 / coldS).toFixed(2),
        encodeMBpsWarmCache: +(bytes / 1e6 / warmS).toFixed(2),
        decodeMBps: +(dec / 1e6 / decS).toFixed(2),
        packTokensPerSec: Math.round(packed / packS),
      },
      null,
      1,
    ),
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}

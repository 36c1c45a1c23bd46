export { Module, ModuleList } from './module.ts';
export { Linear, type LinearOptions } from './linear.ts';
export { Embedding } from './embedding.ts';
export { RMSNorm, LayerNorm, makeNorm, type NormKind } from './norm.ts';
export { Attention, type AttentionOptions, type SequenceLayout, type KVCache } from './attention.ts';
export { MLP, type MlpKind } from './mlp.ts';
export { TransformerBlock, type BlockOptions, type FeedForward } from './block.ts';
export { MoE, MoEExperts, MoEStatsTracker, moeLayer, type MoEOptions, type MoeRouting, type MoeLayerOutput, type MoEStats } from './moe.ts';

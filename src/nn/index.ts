export { Module, ModuleList } from './module.ts';
export { Linear, type LinearOptions } from './linear.ts';

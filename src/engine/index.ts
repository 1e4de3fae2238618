/** The engine boundary: the only way the rest of Candela reaches native code. */
export { configureKernels, Engine, kernelInfo, memoryInfo } from './engine.ts';
export type { ChatMessage, EngineOptions, GenerateInput, GenerateOptions, KernelInfo, LoadOptions, MemoryInfo, ModelInfo, ModelRole, SamplingParams, SchedulerStats } from './engine.ts';
export { Generation, TIME_LIMIT } from './generation.ts';
export type { GenerationResult, TokenChunk } from './generation.ts';
export { EngineError, ENGINE_ERROR_CODES, toEngineError } from './errors.ts';
export type { EngineErrorCode } from './errors.ts';
export { VectorIndex, type IndexHit } from './vector-index.ts';

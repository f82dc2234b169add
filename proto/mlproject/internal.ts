// Internals exposed for tests only (not part of the public API in index.ts).
export { floatRepr, strRepr } from "./pystr.js";
export { resolvePlainTag } from "./yaml11.js";
export { localPathOrNull, posixAbspath, posixNormpath, splitextExt, urlSplit } from "./pathutil.js";
export { parseEntryPoint, parseParameter, toParamMap } from "./params.js";
export { parseProject } from "./load.js";

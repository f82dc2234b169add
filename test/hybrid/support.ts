/** Shared by the hybrid suite's set-up and tests. */
import { tmpdir } from "node:os";
import { join } from "node:path";

/** A test file's run dir is this plus its worker's PID (short: it holds Unix sockets, at most 107 bytes). */
export const HYBRID_RUN_DIR_PREFIX = join(tmpdir(), "parallels-hybrid-");

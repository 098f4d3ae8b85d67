/**
 * Typed errors of binary introspection.
 *
 * Every failure of the parsers is one of these, each with a stable `code`; routes map them all to 400 (a file the
 * client sent that Granary cannot accept), except that a caller may choose 413 for `LIMIT_EXCEEDED`. Anything else
 * escaping `inspect()` is a bug (the fuzz test in test/introspect/hostile.test.ts checks that).
 */

export const INTROSPECT_ERROR_CODES = {
  /** A structure points outside the file, a count or size is impossible, a string is unterminated… */
  MALFORMED_BINARY: 'MALFORMED_BINARY',
  /** Well-formed, but a configured limit (entries, decompressed bytes, sections…) would be passed. */
  LIMIT_EXCEEDED: 'LIMIT_EXCEEDED',
  /** Not a format introspection knows (or a variant it deliberately refuses, e.g. a big-endian memflow plugin). */
  UNSUPPORTED_FORMAT: 'UNSUPPORTED_FORMAT',
  /** A valid executable that exports no `MEMFLOW_CONNECTOR_*` / `MEMFLOW_OS_*` descriptor. */
  NO_PLUGINS: 'NO_PLUGINS',
  /** A valid file or bundle without any eBPF object where one was required. */
  NO_EBPF_OBJECTS: 'NO_EBPF_OBJECTS',
} as const;

export type IntrospectErrorCode = (typeof INTROSPECT_ERROR_CODES)[keyof typeof INTROSPECT_ERROR_CODES];

/** Base class of every introspection error. */
export class IntrospectError extends Error {
  readonly code: IntrospectErrorCode;
  constructor(code: IntrospectErrorCode, message: string, opts?: { cause?: unknown }) {
    super(message, opts?.cause === undefined ? undefined : { cause: opts.cause });
    this.name = new.target.name;
    this.code = code;
  }
}

/** The bytes contradict the format. `offset` is where (absolute in the inspected buffer) when known. */
export class MalformedBinaryError extends IntrospectError {
  readonly offset: number | undefined;
  constructor(message: string, offset?: number, opts?: { cause?: unknown }) {
    super(INTROSPECT_ERROR_CODES.MALFORMED_BINARY, offset === undefined ? message : `${message} (at offset 0x${offset.toString(16)})`, opts);
    this.offset = offset;
  }
}

/** A limit from `IntrospectLimits` would be passed; `limit` names it. */
export class LimitExceededError extends IntrospectError {
  readonly limit: string;
  readonly max: number;
  constructor(limit: string, max: number, what: string) {
    super(INTROSPECT_ERROR_CODES.LIMIT_EXCEEDED, `${what} exceeds the limit ${limit}=${max}`);
    this.limit = limit;
    this.max = max;
  }
}

export class UnsupportedFormatError extends IntrospectError {
  constructor(message: string) {
    super(INTROSPECT_ERROR_CODES.UNSUPPORTED_FORMAT, message);
  }
}

export class NoPluginsError extends IntrospectError {
  constructor(format: string) {
    super(
      INTROSPECT_ERROR_CODES.NO_PLUGINS,
      `the ${format} file exports no memflow plugin descriptor (no MEMFLOW_CONNECTOR_* or MEMFLOW_OS_* symbol)`,
    );
  }
}

export class NoEbpfObjectsError extends IntrospectError {
  constructor(what: string) {
    super(INTROSPECT_ERROR_CODES.NO_EBPF_OBJECTS, `${what} contains no eBPF object (ELF with e_machine EM_BPF)`);
  }
}

export const isIntrospectError = (e: unknown): e is IntrospectError => e instanceof IntrospectError;

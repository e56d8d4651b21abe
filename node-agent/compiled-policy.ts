// What `apparmor_parser -S` hands the kernel, read back: the binary policy stream the kernel's
// policy_unpack.c reads. The agent judges a profile by these bytes (the parser's own result, after
// includes, variables and every spelling the grammar allows are resolved) and then loads exactly these
// bytes, so what was judged is what the kernel gets. Pure.
//
// The stream is a sequence of typed elements (security/apparmor/policy_unpack.c, enum aa_code): an
// element may be preceded by a NAME element that names it; structs and lists nest. Only the few
// fields Lockstep judges are interpreted; every other element (DFAs are opaque blobs) is skipped by
// its length.

const CODE = {
  u8: 0,
  u16: 1,
  u32: 2,
  u64: 3,
  name: 4,
  string: 5,
  blob: 6,
  struct: 7,
  structEnd: 8,
  list: 9,
  listEnd: 10,
  array: 11,
  arrayEnd: 12,
} as const;

/** The kernel's packed profile modes (policy_unpack.c, PACKED_MODE_*). */
const PACKED_MODES = ["enforce", "complain", "kill", "unconfined", "prompt"] as const;
export type CompiledMode = (typeof PACKED_MODES)[number] | `unknown(${number})`;

/** PACKED_FLAG_HAT: the profile is a hat (`^name`), which a process can change into. */
const PACKED_FLAG_HAT = 1;

/**
 * The stream header's `version` (policy_unpack.c): the policy ABI in its low bits (K_ABI_MASK), which the
 * kernel accepts from v5 to v9, and flags above them. FORCE_COMPLAIN_FLAG is how `apparmor_parser
 * --Complain` writes complain mode from ABI v7 on: in the header, leaving every profile's own mode as
 * written; the kernel then loads every profile of the stream in complain mode, whatever its own mode.
 * Up to v5 the parser writes the mode into each profile instead.
 */
const ABI_MASK = 0x3ff;
const FORCE_COMPLAIN_FLAG = 0x800;
const SUPPORTED_ABI = { min: 5, max: 9 } as const;

export interface CompiledProfile {
  /** The name as the kernel lists it; children are `parent//child`. */
  name: string;
  /**
   * The policy namespace the kernel loads it into (`profile :ns:name`), or undefined for the current one.
   * Another namespace is created on load and holds its own profiles. The kernel loads a whole stream
   * into one namespace: the first one a header names, for every profile in it.
   */
  namespace: string | undefined;
  /** The attachment the kernel matches executables against (`attach`), if any. */
  attachment: string | undefined;
  /**
   * Whether the kernel confines a process that execs a matching file (on the host too): the profile
   * carries an exec-match DFA (an `aadfa` blob between the name and the flags: an attachment, a glob
   * in its name, xattrs), or its name is a path, which the kernel compares with the executable's path
   * when there is no DFA (apparmor's domain.c, __attach_match).
   */
  matchesExecutables: boolean;
  mode: CompiledMode;
  hat: boolean;
  /** Hats and child profiles the parser nested in this one instead of emitting them flattened. */
  children: CompiledProfile[];
}

type Value =
  | { code: "scalar"; value: number }
  | { code: "string"; value: string }
  | { code: "blob" }
  | { code: "struct" | "list"; items: Element[] }
  | { code: "array"; items: Element[] };
interface Element {
  name: string | undefined;
  value: Value;
}

class Reader {
  offset = 0;
  private readonly bytes: Uint8Array;
  constructor(bytes: Uint8Array) {
    this.bytes = bytes;
  }

  get done(): boolean {
    return this.offset >= this.bytes.length;
  }

  peek(): number {
    return this.need(1) ?? 0;
  }

  private need(n: number): number | undefined {
    if (this.offset + n > this.bytes.length)
      throw new Error(`truncated policy: ${n} byte(s) needed at offset ${this.offset}`);
    return this.bytes[this.offset];
  }

  uint(bytes: 1 | 2 | 4 | 8): number {
    this.need(bytes);
    let value = 0;
    for (let i = bytes - 1; i >= 0; i--) value = value * 256 + (this.bytes[this.offset + i] ?? 0);
    this.offset += bytes;
    return value;
  }

  text(length: number): string {
    this.need(length);
    const raw = this.bytes.subarray(this.offset, this.offset + length);
    this.offset += length;
    // Strings carry their terminating NUL.
    const end = raw.indexOf(0);
    return new TextDecoder().decode(end === -1 ? raw : raw.subarray(0, end));
  }

  skip(length: number): void {
    this.need(length);
    this.offset += length;
  }
}

function readElement(reader: Reader): Element {
  let name: string | undefined;
  if (reader.peek() === CODE.name) {
    reader.uint(1);
    name = reader.text(reader.uint(2));
  }
  return { name, value: readValue(reader) };
}

function readValue(reader: Reader): Value {
  const at = reader.offset;
  const code = reader.uint(1);
  switch (code) {
    case CODE.u8:
      return { code: "scalar", value: reader.uint(1) };
    case CODE.u16:
      return { code: "scalar", value: reader.uint(2) };
    case CODE.u32:
      return { code: "scalar", value: reader.uint(4) };
    case CODE.u64:
      return { code: "scalar", value: reader.uint(8) };
    case CODE.string:
      return { code: "string", value: reader.text(reader.uint(2)) };
    case CODE.blob:
      reader.skip(reader.uint(4));
      return { code: "blob" };
    case CODE.struct:
      return { code: "struct", items: readUntil(reader, CODE.structEnd) };
    case CODE.list:
      return { code: "list", items: readUntil(reader, CODE.listEnd) };
    case CODE.array: {
      const count = reader.uint(2);
      const items = Array.from({ length: count }, () => readElement(reader));
      if (reader.uint(1) !== CODE.arrayEnd) throw new Error(`array at offset ${at} is not closed`);
      return { code: "array", items };
    }
    default:
      throw new Error(`unknown element code ${code} at offset ${at}`);
  }
}

function readUntil(reader: Reader, end: number): Element[] {
  const items: Element[] = [];
  while (reader.peek() !== end) items.push(readElement(reader));
  reader.uint(1);
  return items;
}

function scalars(element: Element | undefined): number[] {
  if (element?.value.code !== "struct") return [];
  return element.value.items.flatMap((i) => (i.value.code === "scalar" ? [i.value.value] : []));
}

/** What the stream's header says about the profiles after it. */
interface Header {
  /** The header's version element: ABI and flags. */
  version: number;
  namespace: string | undefined;
}

function toProfile(items: readonly Element[], header: Header): CompiledProfile {
  const named = (name: string) => items.find((i) => i.name === name);
  const first = items[0];
  if (first?.name !== undefined || first?.value.code !== "string")
    throw new Error("a profile without a name");
  const name = first.value.value;
  const attach = named("attach")?.value;
  const [flags = 0, ownMode = 0] = scalars(named("flags"));
  const hats = named("hats")?.value;
  const mode = header.version & FORCE_COMPLAIN_FLAG ? 1 : ownMode;
  return {
    name,
    namespace: header.namespace,
    attachment: attach?.code === "string" ? attach.value : undefined,
    matchesExecutables:
      name.startsWith("/") ||
      items
        .slice(
          0,
          Math.max(
            0,
            items.findIndex((i) => i.name === "flags"),
          ),
        )
        .some((i) => i.name === "aadfa" || i.name === "xmatch"),
    mode: PACKED_MODES[mode] ?? `unknown(${mode})`,
    hat: (flags & PACKED_FLAG_HAT) !== 0,
    children:
      hats?.code === "list"
        ? hats.items.flatMap((h) => (h.value.code === "struct" ? [toProfile(h.value.items, header)] : []))
        : [],
  };
}

/**
 * Every profile in a compiled policy, in stream order, children listed after their parent. Throws on
 * bytes that are not a policy stream: the caller treats that as a parser it cannot trust.
 */
export function readCompiledPolicy(bytes: Uint8Array): CompiledProfile[] {
  const reader = new Reader(bytes);
  const elements: Element[] = [];
  while (!reader.done) elements.push(readElement(reader));
  // As in the kernel's aa_unpack: the first namespace a header names holds for every profile of the
  // stream, and each header's version for the profiles after it, until the next one.
  const namespace = elements.find((e) => e.name === "namespace" && e.value.code === "string")?.value;
  const profiles: CompiledProfile[] = [];
  const flatten = (p: CompiledProfile): CompiledProfile[] => [p, ...p.children.flatMap(flatten)];
  let version: number | undefined;
  for (const element of elements) {
    if (element.name === "version" && element.value.code === "scalar") {
      version = element.value.value;
      const abi = version & ABI_MASK;
      if (abi < SUPPORTED_ABI.min || abi > SUPPORTED_ABI.max)
        throw new Error(
          `policy ABI v${abi} (header version 0x${version.toString(16)}): the kernel reads v${SUPPORTED_ABI.min} to v${SUPPORTED_ABI.max}`,
        );
    } else if (element.name === "profile" && element.value.code === "struct") {
      if (version === undefined) throw new Error("a profile before the stream's version header");
      const header = { version, namespace: namespace?.code === "string" ? namespace.value : undefined };
      profiles.push(...flatten(toProfile(element.value.items, header)));
    }
  }
  return profiles;
}

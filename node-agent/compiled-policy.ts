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

export interface CompiledProfile {
  /** The name as the kernel lists it; children are `parent//child`. */
  name: string;
  /**
   * The policy namespace the kernel loads it into (`profile :ns:name`, given in the stream's header), or
   * undefined for the current one. Another namespace is created on load and holds its own profiles.
   */
  namespace: string | undefined;
  /** The attachment the kernel matches executables against (`attach`), if any. */
  attachment: string | undefined;
  /**
   * Whether the profile carries an exec-match DFA (the kernel reads one from an `aadfa` blob between the
   * name and the flags): an attachment, or a profile named by a path. The kernel then confines any
   * process that execs a matching file, on the host too.
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

function toProfile(items: readonly Element[], namespace: string | undefined): CompiledProfile {
  const named = (name: string) => items.find((i) => i.name === name);
  const first = items[0];
  if (first?.name !== undefined || first?.value.code !== "string")
    throw new Error("a profile without a name");
  const attach = named("attach")?.value;
  const [flags = 0, mode = 0] = scalars(named("flags"));
  const hats = named("hats")?.value;
  return {
    name: first.value.value,
    namespace,
    attachment: attach?.code === "string" ? attach.value : undefined,
    matchesExecutables: items
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
        ? hats.items.flatMap((h) => (h.value.code === "struct" ? [toProfile(h.value.items, namespace)] : []))
        : [],
  };
}

/**
 * Every profile in a compiled policy, in stream order, children listed after their parent. Throws on
 * bytes that are not a policy stream: the caller treats that as a parser it cannot trust.
 */
export function readCompiledPolicy(bytes: Uint8Array): CompiledProfile[] {
  const reader = new Reader(bytes);
  const profiles: CompiledProfile[] = [];
  const flatten = (p: CompiledProfile): CompiledProfile[] => [p, ...p.children.flatMap(flatten)];
  // Each profile follows its own header: `version`, then `namespace` when it has one.
  let namespace: string | undefined;
  while (!reader.done) {
    const element = readElement(reader);
    if (element.name === "version") namespace = undefined;
    else if (element.name === "namespace" && element.value.code === "string") namespace = element.value.value;
    else if (element.name === "profile" && element.value.code === "struct")
      profiles.push(...flatten(toProfile(element.value.items, namespace)));
  }
  return profiles;
}

// The one YAML writer of every manifest Lockstep ships: the same object tree becomes deploy/'s plain YAML
// (every setting a value) and the Helm chart's templates (some settings Helm expressions), with the
// comments that say why a permission or a limit is what it is carried into both.
//
// Block style as the `yaml` package writes it by default (two-space indent, sequences indented under
// their key), so the files generated before this writer existed (the admission configuration) keep
// their bytes. Scalars are quoted by the `yaml` package, which knows YAML's rules.
import { stringify } from "yaml";

/** A Helm template expression standing where a value goes: `{{ expr }}` in the chart. */
export class HelmValue {
  /** The pipeline inside `{{ }}`, e.g. `.Values.controller.replicas`. */
  readonly expr: string;
  /** string: quoted; number/boolean: as is; block: a map or a list, written with toYaml. */
  readonly kind: "string" | "number" | "boolean" | "block";
  constructor(expr: string, kind: HelmValue["kind"]) {
    this.expr = expr;
    this.kind = kind;
  }
}

/** A part that exists only when a Helm condition holds (`otherwise` when it does not). */
export class HelmIf {
  readonly condition: string;
  readonly present: unknown;
  readonly otherwise: unknown;
  constructor(condition: string, present: unknown, otherwise?: unknown) {
    this.condition = condition;
    this.present = present;
    this.otherwise = otherwise;
  }
}

/** A value, or the Helm expression that gives it in the chart. */
export type Setting<T> = T | HelmValue;

/** Marks a part left out: a list item, a map entry or a document whose condition does not hold. */
export const OMIT: unique symbol = Symbol("omit");

interface Note {
  /** Above the item (a list item, a document). */
  above?: string;
  /** Above one key of a map. */
  keys?: Record<string, string>;
}
const notes = new WeakMap<object, Note>();

/** `value`, with `text` written as a comment above it (above its `- ` as a list item, or above a document). */
export function noted<T extends object>(text: string, value: T): T {
  notes.set(value, { ...notes.get(value), above: text });
  return value;
}

/** `map`, with a comment above each key named in `keys`. */
export function notedKeys<T extends object>(keys: Partial<Record<keyof T & string, string>>, map: T): T {
  notes.set(map, {
    ...notes.get(map),
    keys: { ...notes.get(map)?.keys, ...(keys as Record<string, string>) },
  });
  return map;
}

/** `then` when the condition holds, else `otherwise`, or the Helm condition that chooses. */
export function choose<T>(condition: Setting<boolean>, then: T, otherwise: T): T | HelmIf {
  if (condition instanceof HelmValue) return new HelmIf(condition.expr, then, otherwise);
  return condition ? then : otherwise;
}

/** `value` when the boolean setting holds, else nothing (OMIT), or the Helm condition. */
export function onlyIf<T>(setting: Setting<boolean>, value: T): T | HelmIf | typeof OMIT {
  if (setting instanceof HelmValue) return new HelmIf(setting.expr, value);
  return setting ? value : OMIT;
}

/** A string made of literal parts and settings: one literal, or one Helm expression that prints them all. */
export function joined(...parts: Setting<string>[]): Setting<string> {
  if (!parts.some((p) => p instanceof HelmValue)) return parts.join("");
  const operands = parts.map((p) => (p instanceof HelmValue ? `(${p.expr})` : JSON.stringify(p)));
  return new HelmValue(`print ${operands.join(" ")}`, "string");
}

/** A map or list setting that is left out (its key with it) when empty. */
export function unlessEmpty<T extends object>(setting: Setting<T>): T | HelmValue | typeof OMIT {
  if (setting instanceof HelmValue) return setting;
  return Object.keys(setting).length === 0 ? OMIT : setting;
}

const pad = (n: number) => " ".repeat(n);
const comment = (text: string, indent: number) =>
  text.split("\n").map((line) => `${pad(indent)}# ${line}`.trimEnd());

function scalar(value: unknown): string {
  if (value instanceof HelmValue)
    return value.kind === "string" ? `{{ ${value.expr} | quote }}` : `{{ ${value.expr} }}`;
  return stringify(value, { lineWidth: 0 }).replace(/\n$/, "");
}

const isBlock = (value: unknown): value is object =>
  typeof value === "object" && value !== null && !(value instanceof HelmValue || value instanceof HelmIf);
const isEmpty = (value: object) =>
  Array.isArray(value) ? value.length === 0 : Object.keys(value).length === 0;

/** The lines of `key: value` in a map whose keys sit at `indent`. */
function entry(key: string, value: unknown, indent: number): string[] {
  const head = `${pad(indent)}${scalar(key)}:`;
  if (value instanceof HelmValue && value.kind === "block") {
    // Left out whole, key and all, when the value is empty: `nodeSelector: {}` is not what deploy/ says.
    return [
      `${pad(indent)}{{- with ${value.expr} }}`,
      head,
      `${pad(indent + 2)}{{- toYaml . | nindent ${indent + 2} }}`,
      `${pad(indent)}{{- end }}`,
    ];
  }
  if (value instanceof HelmIf) {
    const branch = (v: unknown) => {
      if (!isBlock(v)) throw new Error(`${key}: a Helm condition chooses between maps or lists only`);
      return block(v, indent + 2);
    };
    return [
      head,
      `${pad(indent + 2)}{{- if ${value.condition} }}`,
      ...branch(value.present),
      ...(value.otherwise === undefined ? [] : [`${pad(indent + 2)}{{- else }}`, ...branch(value.otherwise)]),
      `${pad(indent + 2)}{{- end }}`,
    ];
  }
  if (isBlock(value) && !isEmpty(value)) return [head, ...block(value, indent + 2)];
  return scalarLines(head, value, indent);
}

/** `head` and a scalar after it; a block scalar (`|-`) continues on lines indented under the head. */
function scalarLines(head: string, value: unknown, indent: number): string[] {
  const [first, ...rest] = scalar(value).split("\n");
  return [`${head} ${first}`, ...rest.map((line) => (line === "" ? "" : `${pad(indent + 2)}${line}`))];
}

/** The lines of a map or a list whose first level sits at `indent`. */
function block(value: object, indent: number): string[] {
  if (Array.isArray(value)) return value.flatMap((item) => listItem(item, indent));
  const keyNotes = notes.get(value)?.keys ?? {};
  return Object.entries(value).flatMap(([key, v]) => {
    if (v === OMIT) return [];
    if (key.startsWith(CONDITIONAL_KEY) && v instanceof HelmIf)
      return conditional(v, indent, (entries) => block(entries as object, indent));
    const above = keyNotes[key] === undefined ? [] : comment(keyNotes[key], indent);
    return [...above, ...entry(key, v, indent)];
  });
}

/** A map entry or a list item that exists only when a condition holds. */
function conditional(item: HelmIf, indent: number, write: (v: unknown) => string[]): string[] {
  return [
    `${pad(indent)}{{- if ${item.condition} }}`,
    ...write(item.present),
    ...(item.otherwise === undefined ? [] : [`${pad(indent)}{{- else }}`, ...write(item.otherwise)]),
    `${pad(indent)}{{- end }}`,
  ];
}

function listItem(item: unknown, indent: number): string[] {
  if (item === OMIT) return [];
  if (item instanceof HelmIf) return conditional(item, indent, (v) => listItem(v, indent));
  const above =
    isBlock(item) && notes.get(item)?.above !== undefined
      ? comment(notes.get(item)?.above ?? "", indent)
      : [];
  if (isBlock(item) && !isEmpty(item)) {
    const [first = "", ...rest] = block(item, indent + 2);
    return [...above, `${pad(indent)}- ${first.slice(indent + 2)}`, ...rest];
  }
  return [...above, ...scalarLines(`${pad(indent)}-`, item, indent)];
}

const CONDITIONAL_KEY = "\u0000if ";

/** Map entries that exist only when a condition holds: spread them into a map (`...entriesIf(...)`). */
export function entriesIf(
  condition: Setting<boolean>,
  entries: Record<string, unknown>,
): Record<string, unknown> {
  if (!(condition instanceof HelmValue)) return condition ? entries : {};
  return { [`${CONDITIONAL_KEY}${condition.expr}`]: new HelmIf(condition.expr, entries) };
}

/** One document: its comment, then its body. */
function document(doc: object): string {
  const above = notes.get(doc)?.above;
  return [...(above === undefined ? [] : comment(above, 0)), ...block(doc, 0)].join("\n") + "\n";
}

/** Documents of one file, `---` between them; a document under a Helm condition is wrapped in it. */
export function documents(docs: readonly unknown[]): string {
  return docs
    .filter((d) => d !== OMIT)
    .map((d) => {
      if (d instanceof HelmIf)
        return `{{- if ${d.condition} }}\n---\n${document(d.present as object)}{{- end }}\n`;
      return document(d as object);
    })
    .join("---\n");
}

/** Whether a setting has the value `when`: a boolean, or the Helm condition that tests it. */
export function is<K extends string>(setting: Setting<K>, when: K): Setting<boolean> {
  if (setting instanceof HelmValue)
    return new HelmValue(`eq ${setting.expr} ${JSON.stringify(when)}`, "boolean");
  return setting === when;
}

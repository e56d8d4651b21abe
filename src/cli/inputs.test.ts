import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  documentLabel,
  filesUnder,
  parseDocuments,
  pathKeys,
  readFileDocuments,
  readInputs,
  UserError,
} from "./inputs.ts";

const work = mkdtempSync(join(tmpdir(), "lockstep-inputs-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));
const write = (path: string, text: string) => {
  const full = join(work, path);
  mkdirSync(join(full, ".."), { recursive: true });
  writeFileSync(full, text);
  return full;
};

describe("parseDocuments", () => {
  it("splits a multi-document file, leaves out empty documents and knows each value's line", () => {
    const docs = parseDocuments(
      "---\n# nothing\n---\nkind: A\nspec:\n  syscalls:\n    - names: [read, ptrace]\n---\n[1]\n",
      "f.yaml",
    );
    expect(docs.map((d) => [d.index, d.count, d.value])).toEqual([
      [1, 2, { kind: "A", spec: { syscalls: [{ names: ["read", "ptrace"] }] } }],
      [2, 2, [1]],
    ]);
    expect(docs[0]?.lineOf("spec.syscalls[0].names[1]")).toBe(7);
    expect(docs[0]?.lineOf("spec.nothing[3]")).toBeUndefined();
    expect(documentLabel(docs[0] as (typeof docs)[0])).toBe("f.yaml (document 1)");
  });

  it("names the file, the line and the document of a syntax error", () => {
    expect(() => parseDocuments("a: 1\n---\nb: [\n", "f.yaml")).toThrow(
      /^f\.yaml:\d+ \(document 2\): not valid YAML or JSON/,
    );
  });

  it("refuses an alias bomb with the file's name, not the parser's stack", () => {
    const bomb = `a: &a [x, x, x, x, x, x, x, x, x, x]\n${Array.from(
      { length: 8 },
      (_, i) =>
        `${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [${Array(10)
          .fill(`*${String.fromCharCode(97 + i)}`)
          .join(", ")}]`,
    ).join("\n")}\n`;
    expect(() => parseDocuments(bomb, "bomb.yaml")).toThrow(UserError);
    expect(() => parseDocuments(bomb, "bomb.yaml")).toThrow(/^bomb\.yaml: cannot be read as data/);
  });

  it("turns a profile path into YAML keys", () => {
    expect(pathKeys("spec.syscalls[12].names[0]")).toEqual(["spec", "syscalls", 12, "names", 0]);
    expect(pathKeys("defaultAction")).toEqual(["defaultAction"]);
  });
});

describe("readInputs", () => {
  const dir = join(work, "tree");
  write("tree/b.yaml", "kind: B\n");
  write("tree/a.json", '{"kind": "A"}');
  write("tree/notes.txt", "not read");
  write("tree/deep/c.YML", "kind: C\n---\nkind: D\n");
  write("tree/deep/empty.yaml", "");
  write("tree/.git/x.yaml", "kind: Git\n");
  write("tree/node_modules/y.yaml", "kind: Dependency\n");
  write("tree/broken.yaml", "kind: [\n");
  symlinkSync(dir, join(dir, "deep", "loop"));
  symlinkSync(join(work, "missing"), join(dir, "dangling.yaml"));

  it("searches a directory for YAML and JSON once each, in a stable order, past loops and dangling links", () => {
    expect(filesUnder(dir).map((f) => f.slice(dir.length + 1))).toEqual([
      "a.json",
      "b.yaml",
      "broken.yaml",
      "deep/c.YML",
      "deep/empty.yaml",
    ]);
  });

  it("reads what it can and lists the rest: a broken file is a problem, an empty one found in a directory is skipped", () => {
    const { documents, problems, skipped } = readInputs([dir]);
    expect(documents.map((d) => (d.value as { kind: string }).kind)).toEqual(["A", "B", "C", "D"]);
    expect(problems.map((p) => p.message)).toEqual([
      expect.stringMatching(/broken\.yaml:\d+: not valid YAML/),
    ]);
    expect(skipped).toEqual([{ file: join(dir, "deep/empty.yaml"), message: "empty" }]);
  });

  it("reads stdin once for every -, and says what is wrong with a path without Node's codes", () => {
    let reads = 0;
    const stdin = () => {
      reads += 1;
      return "kind: FromStdin\n";
    };
    const { documents, problems } = readInputs(
      ["-", "-", join(work, "nope.yaml"), write("empty.yaml", "")],
      stdin,
    );
    expect(reads).toBe(1);
    expect(documents.map((d) => d.file)).toEqual(["<stdin>", "<stdin>"]);
    expect(problems.map((p) => p.message)).toEqual([
      `${join(work, "nope.yaml")}: no such file`,
      `${join(work, "empty.yaml")}: empty, expected a profile`,
    ]);
  });

  it("says a directory is one where a command reads one file", () => {
    expect(() => readFileDocuments(dir)).toThrow(`${dir}: is a directory, and this command reads one file`);
    expect(readFileDocuments("-", () => "a: 1\n").map((d) => d.file)).toEqual(["<stdin>"]);
  });
});

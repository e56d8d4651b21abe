// What the CLI reads: files, directories (searched for YAML and JSON files), multi-document YAML, and
// stdin (`-`), split into documents that each know their file, their index and their lines. Problems a
// user can cause (a directory named where a file is needed, a file that is not YAML, an alias bomb)
// become messages that name the file and the document, never Node's or the parser's raw text.
import { type Dirent, readdirSync, readFileSync, realpathSync, statSync } from "node:fs";
import { join } from "node:path";
import { type Document, LineCounter, parseAllDocuments } from "yaml";

/** A mistake in the user's input: printed without a stack trace, exit code 2. */
export class UserError extends Error {}

/** The operand that stands for standard input, as in most Unix tools. */
export const STDIN_OPERAND = "-";
/** How standard input is named in messages. */
export const STDIN_NAME = "<stdin>";
/** File name endings a directory is searched for. */
export const PROFILE_FILE_EXTENSIONS = [".yaml", ".yml", ".json"] as const;
/** Directories a search does not enter: version control and dependencies hold no profiles of the user's. */
const SKIPPED_DIRECTORIES = new Set([".git", "node_modules"]);
/** A larger file is refused: no profile comes near it (the CRD limits a profile to far less). */
export const MAX_INPUT_BYTES = 16 * 1024 * 1024;

/** One YAML or JSON document of an input. */
export interface SourceDocument {
  /** The file as the user named it (or found under a directory they named); `<stdin>` for `-`. */
  file: string;
  /** 1-based position of the document in its file. */
  index: number;
  /** How many documents the file has (empty ones not counted). */
  count: number;
  /** The document as plain data. */
  value: unknown;
  /** The line a value at a path (`spec.syscalls[2].names[0]`) starts on, 1-based, when the path is in it. */
  lineOf(path: string): number | undefined;
}

/** `file` for a single-document file, `file (document N)` where the file has several. */
export function documentLabel(doc: Pick<SourceDocument, "file" | "index" | "count">): string {
  return doc.count > 1 ? `${doc.file} (document ${doc.index})` : doc.file;
}

/** `file (Kind "name")`, or `file (document N, Kind "name")` where the file has several documents. */
export function objectLabel(
  doc: Pick<SourceDocument, "file" | "index" | "count">,
  kind: string,
  name: string,
): string {
  return `${doc.file} (${doc.count > 1 ? `document ${doc.index}, ` : ""}${kind} ${JSON.stringify(name)})`;
}

/** A file (or document) that could not be read, with the reason, for reports that go on past it. */
export interface InputProblem {
  file: string;
  message: string;
}

/** `spec.syscalls[2].names[0]` as YAML path keys: ["spec", "syscalls", 2, "names", 0]. */
export function pathKeys(path: string): (string | number)[] {
  const keys: (string | number)[] = [];
  for (const match of path.matchAll(/([^.[\]]+)|\[(\d+)\]/g))
    keys.push(match[2] !== undefined ? Number(match[2]) : (match[1] as string));
  return keys;
}

/**
 * The documents of one file's text. Empty documents are left out; a syntax error or a value the parser
 * refuses to expand (too many aliases) is a UserError naming the file, the document and the line.
 */
export function parseDocuments(text: string, file: string): SourceDocument[] {
  const lineCounter = new LineCounter();
  const parsed = parseAllDocuments(text, { lineCounter });
  const docs: Document.Parsed[] = Array.isArray(parsed) ? parsed : [];
  const values: { doc: Document.Parsed; value: unknown }[] = [];
  for (const [i, doc] of docs.entries()) {
    const where = docs.length > 1 ? ` (document ${i + 1})` : "";
    const problem = doc.errors[0];
    if (problem) {
      const line = problem.linePos?.[0].line;
      throw new UserError(
        `${file}${line === undefined ? "" : `:${line}`}${where}: not valid YAML or JSON: ${problem.message.split("\n")[0]}`,
      );
    }
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: 100 });
    } catch (error) {
      throw new UserError(
        `${file}${where}: cannot be read as data: ${(error as Error).message.split("\n")[0]}`,
      );
    }
    if (value !== null && value !== undefined) values.push({ doc, value });
  }
  return values.map(({ doc, value }, i) => ({
    file,
    index: i + 1,
    count: values.length,
    value,
    lineOf(path: string) {
      const node = doc.getIn(pathKeys(path), true) as { range?: [number, number, number] } | undefined;
      const offset = node?.range?.[0] ?? (path === "" ? doc.contents?.range?.[0] : undefined);
      return offset === undefined ? undefined : lineCounter.linePos(offset).line;
    },
  }));
}

/** Reads standard input once: `-` may be named more than once, but stdin can be read only once. */
function stdinReader(read: () => string): () => string {
  let text: string | undefined;
  return () => {
    text ??= read();
    return text;
  };
}

/** Node's code for a failed read, in words a user acts on. */
function readFailure(file: string, error: unknown): UserError {
  const code = (error as NodeJS.ErrnoException).code;
  const reason: Record<string, string> = {
    ENOENT: "no such file",
    EACCES: "permission denied",
    EISDIR: "is a directory, and this command reads one file",
    ELOOP: "too many symbolic links",
    ENOTDIR: "a part of the path is not a directory",
  };
  return new UserError(`${file}: ${(code && reason[code]) ?? `cannot be read (${code ?? "error"})`}`);
}

/** The text of one file named where one file is needed (`-` for stdin). */
export function readTextFile(file: string, readStdin: () => string = () => readFileSync(0, "utf8")): string {
  if (file === STDIN_OPERAND) return readStdin();
  try {
    if (statSync(file).size > MAX_INPUT_BYTES)
      throw new UserError(
        `${file}: larger than ${MAX_INPUT_BYTES / 1024 / 1024} MiB; no profile is that large`,
      );
    return readFileSync(file, "utf8");
  } catch (error) {
    if (error instanceof UserError) throw error;
    throw readFailure(file, error);
  }
}

/** The YAML and JSON files under a directory, in a stable order, each directory entered once. */
export function filesUnder(directory: string): string[] {
  const found: string[] = [];
  const entered = new Set<string>();
  const walk = (dir: string) => {
    const real = realpathSync(dir);
    if (entered.has(real)) return;
    entered.add(real);
    let entries: Dirent[];
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch (error) {
      throw readFailure(dir, error);
    }
    for (const entry of entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
      const path = join(dir, entry.name);
      let isDirectory = entry.isDirectory();
      let isFile = entry.isFile();
      if (entry.isSymbolicLink()) {
        try {
          const target = statSync(path);
          isDirectory = target.isDirectory();
          isFile = target.isFile();
        } catch {
          continue; // a dangling link names nothing to read
        }
      }
      if (isDirectory && !SKIPPED_DIRECTORIES.has(entry.name)) walk(path);
      else if (isFile && PROFILE_FILE_EXTENSIONS.some((ext) => entry.name.toLowerCase().endsWith(ext)))
        found.push(path);
    }
  };
  walk(directory);
  return found;
}

export interface ReadInputs {
  documents: SourceDocument[];
  /** Files that could not be read or parsed; the other files' documents are still in `documents`. */
  problems: InputProblem[];
  /** Files found under a directory and left out, with the reason (empty, too large). */
  skipped: InputProblem[];
}

/**
 * Every document of every operand: a file, a directory (its .yaml, .yml and .json files, recursively;
 * .git and node_modules left out) or `-` for stdin. A file that cannot be read or parsed is a problem
 * and the rest are still read, so a report can cover everything it could read.
 */
export function readInputs(
  operands: readonly string[],
  readStdin: () => string = () => readFileSync(0, "utf8"),
): ReadInputs {
  const stdin = stdinReader(readStdin);
  const documents: SourceDocument[] = [];
  const problems: InputProblem[] = [];
  const skipped: InputProblem[] = [];
  const readFile = (file: string, name = file, found = false) => {
    try {
      if (found && statSync(file).size > MAX_INPUT_BYTES) {
        skipped.push({ file, message: `larger than ${MAX_INPUT_BYTES / 1024 / 1024} MiB` });
        return;
      }
      const docs = parseDocuments(readTextFile(file, stdin), name);
      if (docs.length === 0) {
        if (found) skipped.push({ file, message: "empty" });
        else problems.push({ file: name, message: `${name}: empty, expected a profile` });
      }
      documents.push(...docs);
    } catch (error) {
      if (!(error instanceof UserError)) throw error;
      problems.push({ file: name, message: error.message });
    }
  };
  for (const operand of operands) {
    if (operand === STDIN_OPERAND) {
      readFile(operand, STDIN_NAME);
      continue;
    }
    let isDirectory = false;
    try {
      isDirectory = statSync(operand).isDirectory();
    } catch (error) {
      problems.push({ file: operand, message: readFailure(operand, error).message });
      continue;
    }
    if (!isDirectory) {
      readFile(operand);
      continue;
    }
    let files: string[];
    try {
      files = filesUnder(operand);
    } catch (error) {
      if (!(error instanceof UserError)) throw error;
      problems.push({ file: operand, message: error.message });
      continue;
    }
    if (files.length === 0)
      problems.push({
        file: operand,
        message: `${operand}: a directory with no ${PROFILE_FILE_EXTENSIONS.join(", ")} file in it`,
      });
    for (const file of files) readFile(file, file, true);
  }
  return { documents, problems, skipped };
}

/** Every document of one file (or `-`), for commands that read exactly one; a problem throws. */
export function readFileDocuments(file: string, readStdin?: () => string): SourceDocument[] {
  const name = file === STDIN_OPERAND ? STDIN_NAME : file;
  const docs = parseDocuments(readTextFile(file, readStdin), name);
  if (docs.length === 0) throw new UserError(`${name}: empty file, expected a profile`);
  return docs;
}

// The one folder of the node the agent writes to: <kubelet-root>/seccomp/lockstep/, holding the
// profile files and the agent's ownership record. Every write is atomic (temporary file in the same
// folder, fsync, rename, folder fsync: a reader sees the old file or the new one, never half of one),
// and every path is checked to stay inside the folder whatever name it is given (DESIGN invariants 3
// and 4). Which entries the agent may replace or remove is the planner's decision, from the record.
import { randomBytes } from "node:crypto";
import { type BigIntStats, constants, type Dirent } from "node:fs";
import { lstat, mkdir, open, readdir, rename, rm, unlink } from "node:fs/promises";
import { basename, join, resolve, sep } from "node:path";
import { isValidProfileObjectName } from "../src/api/labels.ts";
import { SECCOMP_FILE_SUFFIX, seccompProfileDir, seccompProfileFileName } from "../src/api/paths.ts";
import {
  OWNERSHIP_RECORD_FILE,
  type OwnershipRecord,
  parseOwnershipRecord,
  type StoredRecord,
  serializeOwnershipRecord,
} from "./ownership-record.ts";
import {
  EMPTY_REFUSAL_MEMO,
  parseRefusalMemo,
  REFUSAL_MEMO_FILE,
  type RefusalMemo,
  serializeRefusalMemo,
} from "./refusal-memo.ts";

const TEMP_PREFIX = ".tmp-";
/** Where an unreadable ownership record is moved to (setRecordAside), for an operator to look at. */
export const UNREADABLE_RECORD_PREFIX = `${OWNERSHIP_RECORD_FILE}.unreadable-`;
const TEMP_FILE = /^\.tmp-[0-9a-f]{16}$/;

function isTemporaryFileName(name: string): boolean {
  return TEMP_FILE.test(name);
}

/** What the folder holds; see SeccompDir.observe. */
export interface SeccompDirState {
  /** Profile name -> content of every readable regular `<profile>.json`. */
  files: ReadonlyMap<string, string>;
  /** Entry name -> why the agent leaves it alone. */
  unusable: ReadonlyMap<string, string>;
}

function entryKind(entry: Dirent): string {
  if (entry.isFile()) return "a file";
  if (entry.isDirectory()) return "a directory";
  if (entry.isSymbolicLink()) return "a symbolic link";
  if (entry.isFIFO()) return "a FIFO";
  if (entry.isSocket()) return "a socket";
  return "a device";
}

/**
 * What identifies one version of a file's content without reading it: the inode and the change time,
 * which the kernel sets on every write, rename into place, truncate or metadata change and which no
 * caller can set (utimes sets mtime, never ctime), plus the size and mtime for file systems that keep
 * coarse ctimes.
 */
function contentIdentity(info: BigIntStats): string {
  return `${info.dev}:${info.ino}:${info.size}:${info.mtimeNs}:${info.ctimeNs}`;
}

async function readRegularFile(file: string): Promise<{ content: string; identity: string }> {
  const handle = await open(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  try {
    // Taken before reading: a write during the read changes ctime, so the next look reads again.
    const info = await handle.stat({ bigint: true });
    if (!info.isFile()) throw Object.assign(new Error("not a regular file"), { code: "ENOTREG" });
    return { content: await handle.readFile("utf8"), identity: contentIdentity(info) };
  } finally {
    await handle.close();
  }
}

/** The file name of a profile, or an error for a name that could leave the folder. */
export function seccompFileName(profileName: string): string {
  // Object names are DNS subdomains ([a-z0-9.-]); anything else never reaches the file system.
  if (!isValidProfileObjectName(profileName) || profileName === "." || profileName === "..")
    throw new Error(`refusing to write a file for invalid profile name ${JSON.stringify(profileName)}`);
  return seccompProfileFileName(profileName);
}

/** The profile name a file in the folder belongs to, or undefined for files that are not ours. */
export function profileNameOfFile(fileName: string): string | undefined {
  if (!fileName.endsWith(SECCOMP_FILE_SUFFIX) || fileName.startsWith(TEMP_PREFIX)) return undefined;
  const name = fileName.slice(0, -SECCOMP_FILE_SUFFIX.length);
  return isValidProfileObjectName(name) ? name : undefined;
}

export class SeccompDir {
  readonly path: string;
  /**
   * File name -> the content last read and the identity it was read under. A sync looks at every file
   * of the folder; an lstat that shows the same identity spares opening and reading the file again
   * (most of an agent's CPU per rollout once the folder holds many profiles, measured in ADR 0013).
   */
  private readonly lastRead = new Map<string, { identity: string; content: string }>();

  constructor(kubeletRoot: string) {
    this.path = seccompProfileDir(kubeletRoot);
  }

  private fileFor(profileName: string): string {
    const file = resolve(this.path, seccompFileName(profileName));
    if (!file.startsWith(this.path + sep) || basename(file) !== seccompFileName(profileName))
      throw new Error(`refusing to write outside ${this.path}: ${JSON.stringify(profileName)}`);
    return file;
  }

  /** Creates the folder if needed and refuses to work through a symbolic link. */
  async ensure(): Promise<void> {
    await mkdir(this.path, { recursive: true, mode: 0o755 });
    const info = await lstat(this.path);
    if (!info.isDirectory()) throw new Error(`${this.path} is not a directory (a symbolic link?)`);
  }

  /**
   * What the folder holds, entry by entry: every regular `<profile>.json` file it can read, and every
   * entry it will not touch (a directory, a symbolic link, a FIFO, a socket, a file it cannot read),
   * with why. One odd entry never stops the others from being read. Nothing is followed: entries are
   * judged by lstat, and files are opened with O_NOFOLLOW | O_NONBLOCK (a FIFO swapped in after the
   * listing must not block the agent) and checked with fstat.
   */
  async observe(): Promise<SeccompDirState> {
    const files = new Map<string, string>();
    const unusable = new Map<string, string>();
    const entries = await readdir(this.path, { withFileTypes: true });
    const listed = new Set(entries.map((e) => e.name));
    for (const name of this.lastRead.keys()) if (!listed.has(name)) this.lastRead.delete(name);
    for (const entry of entries) {
      if (
        entry.name === OWNERSHIP_RECORD_FILE ||
        entry.name === REFUSAL_MEMO_FILE ||
        entry.name.startsWith(UNREADABLE_RECORD_PREFIX)
      )
        continue;
      // The agent's own temporary files, mid-write in this sync or left by a crash (removed at start).
      if (isTemporaryFileName(entry.name) && entry.isFile()) continue;
      const name = profileNameOfFile(entry.name);
      if (name === undefined) {
        unusable.set(entry.name, `not a profile file name (${entryKind(entry)})`);
        continue;
      }
      if (!entry.isFile()) {
        unusable.set(entry.name, entryKind(entry));
        continue;
      }
      try {
        files.set(name, await this.readProfileFile(entry.name));
      } catch (error) {
        this.lastRead.delete(entry.name);
        unusable.set(entry.name, `unreadable: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
      }
    }
    return { files, unusable };
  }

  /** A profile file's content: from the last read while lstat shows the same identity, else read anew. */
  private async readProfileFile(fileName: string): Promise<string> {
    const file = join(this.path, fileName);
    const known = this.lastRead.get(fileName);
    if (known) {
      const info = await lstat(file, { bigint: true });
      if (info.isFile() && contentIdentity(info) === known.identity) return known.content;
    }
    const read = await readRegularFile(file);
    this.lastRead.set(fileName, read);
    return read.content;
  }

  /**
   * Left behind by a crash between write and rename; never a file a kubelet reads. Only regular files
   * with exactly the agent's temporary name pattern go; anything else with that prefix is left alone.
   */
  async removeTemporaryFiles(): Promise<number> {
    let removed = 0;
    for (const entry of await readdir(this.path, { withFileTypes: true })) {
      if (!isTemporaryFileName(entry.name) || !entry.isFile()) continue;
      try {
        await unlink(join(this.path, entry.name));
        removed += 1;
      } catch {
        // Gone already, or not ours to remove after all: the next start tries again.
      }
    }
    return removed;
  }

  /**
   * The ownership record, `absent` when there is none yet (a first start, or an agent from before the
   * record existed), or `unreadable` with why: not a regular file (a symbolic link, a directory), a
   * read error, or content that is not a valid record (garbage, truncated). Never followed or guessed.
   */
  async readRecord(): Promise<StoredRecord> {
    const file = join(this.path, OWNERSHIP_RECORD_FILE);
    let text: string;
    try {
      ({ content: text } = await readRegularFile(file));
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === "ENOENT") return { state: "absent" };
      return { state: "unreadable", problem: `cannot be read as a regular file (${code ?? String(error)})` };
    }
    const parsed = parseOwnershipRecord(text);
    return parsed.ok
      ? { state: "ok", record: parsed.value }
      : { state: "unreadable", problem: `is not a valid ownership record (${parsed.message.slice(0, 300)})` };
  }

  /**
   * Moves an unreadable record out of the way, whatever the entry is (rename moves a symbolic link or
   * a directory itself, never what it points to), under a name of its own that no later start reads
   * as a record, so an operator can look at it. Returns that name.
   */
  async setRecordAside(now: Date): Promise<string> {
    const aside = `${UNREADABLE_RECORD_PREFIX}${now.toISOString().replace(/[:.]/g, "-")}`;
    await rename(join(this.path, OWNERSHIP_RECORD_FILE), join(this.path, aside));
    await this.syncDirectory();
    return aside;
  }

  async writeRecord(record: OwnershipRecord): Promise<void> {
    await this.writeAtomically(join(this.path, OWNERSHIP_RECORD_FILE), serializeOwnershipRecord(record));
  }

  /**
   * The refusal memo (refusal-memo.ts). Only a cache of verdicts: whatever is wrong with it (missing,
   * corrupt, not a regular file) means starting empty, with the problem to log, never a failed start.
   */
  async readRefusalMemo(): Promise<{ memo: RefusalMemo; problem?: string }> {
    const file = join(this.path, REFUSAL_MEMO_FILE);
    try {
      const parsed = parseRefusalMemo((await readRegularFile(file)).content);
      return parsed.ok
        ? { memo: parsed.value }
        : { memo: EMPTY_REFUSAL_MEMO, problem: `${file} is not a valid refusal memo (${parsed.message})` };
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === "ENOENT") return { memo: EMPTY_REFUSAL_MEMO };
      return {
        memo: EMPTY_REFUSAL_MEMO,
        problem: `${file}: cannot read the refusal memo (${code ?? String(error)})`,
      };
    }
  }

  async writeRefusalMemo(memo: RefusalMemo): Promise<void> {
    await this.writeAtomically(join(this.path, REFUSAL_MEMO_FILE), serializeRefusalMemo(memo));
  }

  async write(profileName: string, content: string): Promise<void> {
    await this.writeAtomically(this.fileFor(profileName), content);
  }

  private async writeAtomically(target: string, content: string): Promise<void> {
    // Not derived from the profile name: "<name>.json" may already be close to NAME_MAX (255).
    const temp = join(this.path, `${TEMP_PREFIX}${randomBytes(8).toString("hex")}`);
    // O_EXCL | O_NOFOLLOW: never write through a link someone planted under the temporary name.
    const handle = await open(
      temp,
      constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
      0o644,
    );
    try {
      await handle.writeFile(content, "utf8");
      await handle.chmod(0o644);
      await handle.sync();
    } catch (error) {
      await handle.close();
      await rm(temp, { force: true });
      throw error;
    }
    await handle.close();
    try {
      await rename(temp, target);
    } catch (error) {
      await rm(temp, { force: true });
      throw error;
    }
    await this.syncDirectory();
  }

  /** Removes a profile file the agent wrote; an entry that is no longer a regular file stays. */
  async remove(profileName: string): Promise<void> {
    const file = this.fileFor(profileName);
    try {
      if (!(await lstat(file)).isFile())
        throw new Error(`${file} is no longer a regular file; leaving it alone`);
      await unlink(file);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    }
    await this.syncDirectory();
  }

  /** Makes the rename itself durable: without it a power cut can undo a completed rename. */
  private async syncDirectory(): Promise<void> {
    const dir = await open(this.path, constants.O_RDONLY | constants.O_DIRECTORY);
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
  }
}

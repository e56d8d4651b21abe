// The one folder of the node the agent writes to: <kubelet-root>/seccomp/lockstep/. Every write is
// atomic (temporary file in the same folder, fsync, rename, folder fsync: a reader sees the old file
// or the new one, never half of one), and every path is checked to stay inside the folder whatever
// name it is given (DESIGN invariants 3 and 4).
import { randomBytes } from "node:crypto";
import { constants } from "node:fs";
import { lstat, mkdir, open, readdir, readFile, rename, rm, unlink } from "node:fs/promises";
import { basename, join, resolve, sep } from "node:path";
import { isValidProfileObjectName } from "../src/api/labels.ts";

const TEMP_PREFIX = ".tmp-";
const SUFFIX = ".json";

/** The file name of a profile, or an error for a name that could leave the folder. */
export function seccompFileName(profileName: string): string {
  // Object names are DNS subdomains ([a-z0-9.-]); anything else never reaches the file system.
  if (!isValidProfileObjectName(profileName) || profileName === "." || profileName === "..")
    throw new Error(`refusing to write a file for invalid profile name ${JSON.stringify(profileName)}`);
  return `${profileName}${SUFFIX}`;
}

/** The profile name a file in the folder belongs to, or undefined for files that are not ours. */
export function profileNameOfFile(fileName: string): string | undefined {
  if (!fileName.endsWith(SUFFIX) || fileName.startsWith(TEMP_PREFIX)) return undefined;
  const name = fileName.slice(0, -SUFFIX.length);
  return isValidProfileObjectName(name) ? name : undefined;
}

export class SeccompDir {
  readonly path: string;

  constructor(kubeletRoot: string) {
    this.path = resolve(kubeletRoot, "seccomp", "lockstep");
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

  /** Profile name -> file content, for every profile file in the folder. */
  async readAll(): Promise<Map<string, string>> {
    const files = new Map<string, string>();
    for (const entry of await readdir(this.path, { withFileTypes: true })) {
      const name = profileNameOfFile(entry.name);
      if (name === undefined || !entry.isFile()) continue;
      files.set(name, await readFile(join(this.path, entry.name), "utf8"));
    }
    return files;
  }

  /** Left behind by a crash between write and rename; never a file a kubelet reads. */
  async removeTemporaryFiles(): Promise<number> {
    let removed = 0;
    for (const entry of await readdir(this.path)) {
      if (!entry.startsWith(TEMP_PREFIX)) continue;
      await rm(join(this.path, entry), { force: true });
      removed += 1;
    }
    return removed;
  }

  async write(profileName: string, content: string): Promise<void> {
    const target = this.fileFor(profileName);
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

  async remove(profileName: string): Promise<void> {
    try {
      await unlink(this.fileFor(profileName));
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

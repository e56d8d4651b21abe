// The AppArmorProfile spec a recording proposes, in Lockstep's structured form, merged with earlier
// recordings' specs. Pure.
import {
  type AppArmorProfileSpec,
  AppArmorProfileSpecSchema,
  type NetworkFamily,
  type NetworkProtocol,
  ProfilePathSchema,
} from "../../api/apparmor.ts";
import { LIMITS } from "../../api/limits.ts";
import { byKernelOrder, type Capability } from "./capabilities.ts";
import { type FileAccess, fileRules } from "./files.ts";
import { networkRules } from "./network.ts";

export interface RecordedActivity {
  files: ReadonlyMap<string, ReadonlySet<FileAccess>>;
  families: Iterable<NetworkFamily>;
  protocols: Iterable<NetworkProtocol>;
  /** Proven capabilities only. */
  capabilities: readonly Capability[];
}

export interface RecordedAppArmor {
  spec: AppArmorProfileSpec;
  /** Paths the structured form cannot hold (a space, a comma, a brace...): left out and reported. */
  leftOut: string[];
}

/** What an earlier recording's spec allowed, as activity to merge with this one's. */
function activityOf(spec: AppArmorProfileSpec): RecordedActivity {
  const files = new Map<string, Set<FileAccess>>();
  const note = (paths: readonly string[] | undefined, ...kinds: FileAccess[]) => {
    for (const path of paths ?? []) files.set(path, new Set([...(files.get(path) ?? []), ...kinds]));
  };
  note(spec.executables, "exec");
  note(spec.paths?.readOnly, "read");
  note(spec.paths?.readWrite, "read", "write");
  note(spec.paths?.writeOnly, "write");
  return {
    files,
    families: spec.network?.families ?? [],
    protocols: spec.network?.protocols ?? [],
    capabilities: spec.capabilities ?? [],
  };
}

export function recordedAppArmor(
  activity: RecordedActivity,
  earlier: readonly AppArmorProfileSpec[] = [],
): RecordedAppArmor {
  const all = [activity, ...earlier.map(activityOf)];
  const files = new Map<string, Set<FileAccess>>();
  const leftOut: string[] = [];
  for (const { files: accesses } of all)
    for (const [path, kinds] of accesses) {
      if (!ProfilePathSchema.safeParse(path).success) {
        leftOut.push(path);
        continue;
      }
      files.set(path, new Set([...(files.get(path) ?? []), ...kinds]));
    }
  const { executables, paths } = fileRules(files, LIMITS.pathsPerList);
  const network = networkRules(
    all.flatMap((a) => [...a.families]),
    all.flatMap((a) => [...a.protocols]),
  );
  const capabilities = [...new Set(all.flatMap((a) => a.capabilities))].sort(byKernelOrder);
  const spec = AppArmorProfileSpecSchema.parse({
    ...(executables.length > 0 ? { executables } : {}),
    ...(Object.keys(paths).length > 0 ? { paths } : {}),
    ...(network ? { network } : {}),
    ...(capabilities.length > 0 ? { capabilities } : {}),
  });
  return { spec, leftOut: [...new Set(leftOut)].sort() };
}

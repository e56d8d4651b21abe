// The executor: carries a sync's plan out on the disk and in the kernel, and returns the ownership
// record as it now stands. It decides nothing the planner did not: what it claims before acting and
// releases after is record-keeping.ts's, what apparmor_parser lets through is the judge's. A step that
// fails becomes an install failure (write, load) or a warning (remove, unload: tried again next sync).
import { appArmorKernelName } from "../src/api/labels.ts";
import { kubeErrorMessage } from "../src/kube/errors.ts";
import type { Logger } from "../src/kube/logger.ts";
import {
  type AppArmorPaths,
  judgeAndCompile,
  loadCompiledProfile,
  parserVersion,
  removeProfile,
} from "./apparmor.ts";
import { INSTALL_FAILURE_REASONS, type InstallFailure, refusalFailure } from "./failures.ts";
import type { OwnershipRecord } from "./ownership-record.ts";
import { PARSER_LIMITS } from "./parser-runner.ts";
import type { SyncPlan } from "./planner.ts";
import { PolicyJudge } from "./policy-judge.ts";
import { claimBeforeActing, forgetInRecord, sameRecord } from "./record-keeping.ts";
import type { SeccompDir } from "./seccomp-dir.ts";

export interface Executor {
  dir: SeccompDir;
  appArmor: AppArmorPaths;
  /** Set on a node with AppArmor. */
  judge: PolicyJudge | undefined;
  log: Logger;
}

/** Carries `plan` out; failures are appended to `failures`. */
export async function carryOut(
  x: Executor,
  plan: SyncPlan,
  before: OwnershipRecord,
  failures: InstallFailure[],
): Promise<OwnershipRecord> {
  const { dir, log } = x;
  const loads = await judgedLoads(x, plan, failures);
  let record = claimBeforeActing(
    before,
    plan,
    loads.map(({ item }) => item.profile.name),
  );
  if (!sameRecord(before, record)) await dir.writeRecord(record);
  const claimed = record;
  record = structuredClone(record);

  for (const { profile, content } of plan.writeSeccomp) {
    try {
      await dir.write(profile.name, content);
      log.info({ kind: "SeccompProfile", name: profile.name, version: profile.version }, "wrote profile");
    } catch (error) {
      failures.push({
        profile,
        reason: INSTALL_FAILURE_REASONS.writeFailed,
        message: `writing the profile file: ${kubeErrorMessage(error)}`,
      });
    }
  }
  for (const { item, compiled } of loads) {
    const { profile } = item;
    try {
      await loadCompiledProfile(x.appArmor, compiled);
      record.appArmor[profile.name] = profile.version;
      log.info({ kind: "AppArmorProfile", name: profile.name, version: profile.version }, "loaded profile");
    } catch (error) {
      failures.push({
        profile,
        reason: INSTALL_FAILURE_REASONS.loadFailed,
        message: `apparmor_parser: ${kubeErrorMessage(error)}`,
      });
    }
  }
  for (const name of plan.removeSeccomp) {
    try {
      await dir.remove(name);
      record.seccomp = record.seccomp.filter((n) => n !== name);
      log.info({ kind: "SeccompProfile", name }, "removed profile file");
    } catch (error) {
      log.warn(
        { kind: "SeccompProfile", name, err: kubeErrorMessage(error) },
        "could not remove profile file",
      );
    }
  }
  for (const name of plan.unloadAppArmor) {
    try {
      await removeProfile(x.appArmor, appArmorKernelName(name));
      delete record.appArmor[name];
      log.info({ kind: "AppArmorProfile", name }, "unloaded profile");
    } catch (error) {
      log.warn({ kind: "AppArmorProfile", name, err: kubeErrorMessage(error) }, "could not unload profile");
    }
  }
  record = forgetInRecord(record, plan);
  for (const { kind, name } of plan.keptInUse)
    log.debug({ kind, name }, "kept: a pod bound to this node still uses it");
  for (const { kind, name } of plan.keptForRoom)
    log.debug({ kind, name }, "kept: no room for its NoLongerHere mark yet");
  if (!sameRecord(claimed, record)) await dir.writeRecord(record);
  return record;
}

/**
 * The AppArmor loads of the plan that apparmor_parser has passed, with their compiled bytes. Refusals
 * become failures; a policy still being judged is left out (not loaded, not claimed) and a verdict
 * that comes later starts another sync.
 */
async function judgedLoads(x: Executor, plan: SyncPlan, failures: InstallFailure[]) {
  if (x.judge === undefined || plan.loadAppArmor.length === 0) return [];
  const sorted = await x.judge.sort(
    plan.loadAppArmor.map((load) => ({
      ...load,
      policy: { name: appArmorKernelName(load.profile.name), mode: load.mode, text: load.text },
    })),
  );
  for (const refused of sorted.refused) failures.push(refusalFailure(refused.item.profile, refused));
  for (const { profile } of sorted.pending)
    x.log.info(
      { kind: "AppArmorProfile", name: profile.name },
      "apparmor_parser is still judging the policy",
    );
  return sorted.load;
}

export interface JudgeSetup {
  dir: SeccompDir;
  appArmor: AppArmorPaths;
  agentVersion: string;
  log: Logger;
  /** A verdict came in beside the syncs: another sync should run. */
  onVerdict: () => void;
}

/** The judge, with the refusals remembered from earlier runs and the node's parser version. */
export async function startPolicyJudge(s: JudgeSetup): Promise<PolicyJudge> {
  const { dir, appArmor, log } = s;
  const stored = await dir.readRefusalMemo();
  if (stored.problem) log.error({ problem: stored.problem }, "starting with an empty refusal memo");
  let version: string;
  try {
    version = await parserVersion(appArmor);
  } catch (error) {
    // Every judgement will fail the same way and say so; nothing remembered matches this key.
    version = `unknown (${kubeErrorMessage(error)})`;
    log.error({ err: version }, "cannot read apparmor_parser's version");
  }
  return new PolicyJudge({
    judge: (policy, options) => judgeAndCompile(appArmor, policy.text, policy, options),
    identity: { parserVersion: version, agentVersion: s.agentVersion, limits: PARSER_LIMITS },
    memo: stored.memo,
    saveMemo: (memo) => dir.writeRefusalMemo(memo),
    onVerdict: s.onVerdict,
    onSaveError: (error) =>
      log.error({ err: kubeErrorMessage(error) }, "could not save the refusal memo; it holds for this run"),
  });
}

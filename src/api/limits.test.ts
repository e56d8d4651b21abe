import { describe, expect, it } from "vitest";
import {
  largestAppArmorSpec,
  largestSeccompSpec,
  longestArg,
  nodeSelector,
} from "../../test/harness/large-profiles.ts";
import { AppArmorProfileSpecSchema } from "./apparmor.ts";
import { LIMITS, MAX_PROFILE_SPEC_BYTES } from "./limits.ts";
import { SeccompProfileSpecSchema } from "./seccomp.ts";

describe("profile size limits", () => {
  it("keep the largest seccomp spec they allow under MAX_PROFILE_SPEC_BYTES", () => {
    const spec = largestSeccompSpec();
    expect(SeccompProfileSpecSchema.safeParse(spec).success).toBe(true);
    expect(JSON.stringify(spec).length).toBeLessThanOrEqual(MAX_PROFILE_SPEC_BYTES);
  });

  it("keep the largest AppArmor specs they allow under MAX_PROFILE_SPEC_BYTES", () => {
    const structured = largestAppArmorSpec();
    expect(AppArmorProfileSpecSchema.safeParse(structured).success).toBe(true);
    expect(JSON.stringify(structured).length).toBeLessThanOrEqual(MAX_PROFILE_SPEC_BYTES);
    const raw = { rawPolicy: "#".repeat(LIMITS.rawPolicyBytes), mode: "complain", nodeSelector };
    expect(AppArmorProfileSpecSchema.safeParse(raw).success).toBe(true);
    expect(JSON.stringify(raw).length).toBeLessThanOrEqual(MAX_PROFILE_SPEC_BYTES);
  });

  it("refuse one syscall name, argument or path character more, naming the field and the limit", () => {
    const names = SeccompProfileSpecSchema.safeParse(largestSeccompSpec(LIMITS.syscallNamesTotal + 1));
    expect(names.error?.issues).toContainEqual(
      expect.objectContaining({
        path: ["syscalls"],
        message: expect.stringContaining(`at most ${LIMITS.syscallNamesTotal} syscall names`),
      }),
    );
    const spec = largestSeccompSpec();
    spec.syscalls[0]?.args.push(longestArg);
    expect(SeccompProfileSpecSchema.safeParse(spec).error?.issues).toContainEqual(
      expect.objectContaining({
        message: expect.stringContaining(`at most ${LIMITS.syscallArgsTotal} argument conditions`),
      }),
    );
    const paths = largestAppArmorSpec();
    paths.executables[0] += "x".repeat(
      LIMITS.policyPathBytes - 4 * LIMITS.pathsPerList * (paths.executables[0]?.length ?? 0) + 1,
    );
    expect(AppArmorProfileSpecSchema.safeParse(paths).error?.issues).toContainEqual(
      expect.objectContaining({
        path: ["paths"],
        message: expect.stringContaining(`at most ${LIMITS.policyPathBytes} characters of paths`),
      }),
    );
  });
});
